"""Resuming an interrupted `fit` (`--ckpt_path last`), and integer `--trainer.limit_*_batches`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lightning_pose.callbacks.resume import CHECKPOINT_KEY, find_last_checkpoint, read_run_identity
from lightning_pose.cli import main, run_lightning
from lightning_pose.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")
TASK = "lightning_pose.tasks.simple_baseline.SimpleBaselineTask"

#: layered over tiny_demo.yaml: 2 epochs of 2 batches, a monitored best checkpoint and an LR step between the epochs
RESUME_CONFIG = {
    "trainer": {
        "max_epochs": 2,
        "limit_val_batches": 1,
        "callbacks": [
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {"monitor": "val/PCK@0.2", "mode": "max", "save_last": True},
            },
            {"class_path": "kill_switch.KillAtEpochStart"},
        ],
    },
    "model": {
        "init_args": {
            "scheduler": {
                "class_path": "torch.optim.lr_scheduler.MultiStepLR",
                "init_args": {"milestones": [1], "gamma": 0.1},
            }
        }
    },
}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, demo_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    return tmp_path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DISABLE_GIT="true",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    )
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        env[name] = str(tmp_path / "wandb-home")  # nothing outside the temporary folder
    env.pop("LIGHTNING_POSE_TEST_KILL_AT_EPOCH", None)
    # each run gets its own W&B service, as a user's separate commands do: inheriting this test process's service
    # (set by earlier in-process W&B tests) would keep the killed run registered there ("run ID ... is in use")
    env.pop("WANDB_SERVICE", None)
    env.update(extra)
    return env


def _last_epoch_metrics(output: str) -> str:
    lines = re.findall(r"^epoch (\d+) \(\d+ s\): (.*)$", output, flags=re.M)
    assert lines, output[-2000:]
    return lines[-1][1]


def _user_checkpoint_state(ckpt: dict) -> dict:
    (state,) = [v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint")]
    return state


@pytest.mark.slow
def test_kill_and_resume_ends_where_an_uninterrupted_run_ends(tmp_path, demo_cache):
    from lightning_pose.data.datamodules import DemoDataModule

    # generate the demo data once, before two processes need it
    DemoDataModule(num_train=12, num_val=6, image_size=(128, 128), input_size=(64, 64), num_workers=0).prepare_data()
    cfg = tmp_path / "resume.yaml"
    cfg.write_text(yaml.safe_dump(RESUME_CONFIG))
    fit = [sys.executable, "-m", "lightning_pose", "fit", "--config", TINY, "--config", str(cfg)]
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    straight_dir.mkdir()
    resumed_dir.mkdir()

    straight = subprocess.Popen(
        fit, cwd=straight_dir, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        killed = subprocess.run(
            fit,
            cwd=resumed_dir,
            env=_env(tmp_path, LIGHTNING_POSE_TEST_KILL_AT_EPOCH="1"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
        resumed = subprocess.run(
            fit + ["--ckpt_path", "last"],
            cwd=resumed_dir,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=600,
        )
        straight_out, _ = straight.communicate(timeout=600)
    finally:
        if straight.poll() is None:
            straight.kill()
            straight.communicate()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert straight.returncode == 0, straight_out[-3000:]

    # one run folder, the same W&B run continued offline (two segments with the same id), one saved config
    (run_dir,) = [p for p in (resumed_dir / "runs" / "lp-tests").iterdir() if p.is_dir()]
    run_id = run_dir.name
    segments = sorted((resumed_dir / "runs" / "wandb").glob("offline-run-*"))
    assert len(segments) == 2 and all(s.name.endswith(f"-{run_id}") for s in segments), segments
    assert all((s / f"run-{run_id}.wandb").is_file() for s in segments)
    assert sorted(p.name for p in run_dir.glob("config*.yaml")) == ["config.yaml"]
    assert f"resuming W&B run {run_id}" in resumed.stdout + resumed.stderr

    (straight_run,) = [p for p in (straight_dir / "runs" / "lp-tests").iterdir() if p.is_dir()]
    s = torch.load(straight_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    r = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # the same end point: steps, epoch counter, LR schedule (stepped once at the milestone, across the kill)
    assert r["global_step"] == s["global_step"] == 4
    assert r["epoch"] == s["epoch"]
    assert r["lr_schedulers"][0]["last_epoch"] == s["lr_schedulers"][0]["last_epoch"] == 2
    assert r["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4, rel=1e-12)
    assert s["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4, rel=1e-12)
    # ModelCheckpoint state restored and continued in the same folder: same best score and best file
    rs, ss = _user_checkpoint_state(r), _user_checkpoint_state(s)
    assert torch.equal(rs["best_model_score"], ss["best_model_score"])
    assert Path(rs["best_model_path"]).parent == run_dir / "checkpoints"
    assert Path(rs["best_model_path"]).name == Path(ss["best_model_path"]).name
    # identical data order, augmentation and arithmetic: bit-identical weights and the same final metrics
    assert r["state_dict"].keys() == s["state_dict"].keys()
    assert all(torch.equal(r["state_dict"][k], s["state_dict"][k]) for k in s["state_dict"])
    assert _last_epoch_metrics(resumed.stdout + resumed.stderr) == _last_epoch_metrics(straight_out)
    assert r[CHECKPOINT_KEY]["run"]["run_id"] == run_id


def test_nothing_to_resume_is_one_line_error_and_exit_2(tmp_path, demo_cache):
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_pose", "fit", "--config", TINY, "--ckpt_path", "last"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lightning-pose: error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "--ckpt_path last: nothing to resume" in errors[0]
    assert str(tmp_path / "runs" / "lp-tests") in errors[0]
    assert not list(tmp_path.rglob("*.ckpt"))  # nothing was trained


def _fake_checkpoint(path: Path, **run: str | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, CHECKPOINT_KEY: {"format": 1, "run": run}}, path)
    return path


def test_last_is_the_newest_run_with_this_name_and_task(tmp_path):
    root = tmp_path / "runs" / "proj"
    old = _fake_checkpoint(
        root / "aaa" / "checkpoints" / "last.ckpt", run_id="aaa", project="proj", name="demo", task=TASK
    )
    new = _fake_checkpoint(
        root / "bbb" / "checkpoints" / "last.ckpt", run_id="bbb", project="proj", name="demo", task=TASK
    )
    other = _fake_checkpoint(
        root / "ccc" / "checkpoints" / "last.ckpt", run_id="ccc", project="proj", name="other", task=TASK
    )
    os.utime(old, (1_000, 1_000))
    os.utime(new, (2_000, 2_000))
    os.utime(other, (3_000, 3_000))
    folders = [p / "checkpoints" for p in root.iterdir()]
    assert find_last_checkpoint(folders, name="demo", task=TASK) == new
    assert find_last_checkpoint(folders, name="other", task=TASK) == other
    assert find_last_checkpoint(folders, name="demo", task="lightning_pose.tasks.cpm.CPMTask") is None
    assert find_last_checkpoint(folders, name=None, task=TASK) is None
    assert read_run_identity(new).run_id == "bbb"


def test_identity_of_a_checkpoint_without_record_comes_from_its_folder(tmp_path):
    path = tmp_path / "runs" / "proj" / "r123" / "checkpoints" / "epoch=0-step=2.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, path)
    identity = read_run_identity(path)
    assert (identity.run_id, identity.project, identity.recorded) == ("r123", "proj", False)
    loose = tmp_path / "loose.ckpt"
    torch.save({"state_dict": {}}, loose)
    assert read_run_identity(loose) is None


def test_unreadable_checkpoint_is_one_line_naming_the_file(tmp_path):
    path = _fake_checkpoint(tmp_path / "cut.ckpt", run_id="x")
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a kill during the write
    with pytest.raises(CheckpointError) as exc:
        read_run_identity(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_missing_checkpoint_file_is_one_line_error(in_tmp, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", TINY, "--trainer.logger=false", "--ckpt_path", "no/such.ckpt"])
    assert exc.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lightning-pose: error:")]
    assert err == [f"lightning-pose: error: {Path('no/such.ckpt')}: checkpoint file not found (--ckpt_path)"]


@pytest.mark.parametrize("limit", ["1", "0.5"])
def test_limit_train_batches_integer_is_batches_fraction_is_share(in_tmp, limit):
    cli = run_lightning(
        [
            "fit",
            "--config",
            TINY,
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            f"--trainer.limit_train_batches={limit}",
            "--trainer.limit_val_batches=1",
        ]
    )
    full = len(cli.datamodule.train_dataloader())
    assert full == 4  # 17 persons in the 12 tiny demo images, batches of 4, last partial batch dropped
    expected = 1 if limit == "1" else 2
    assert cli.trainer.num_training_batches == expected
    assert cli.trainer.global_step == expected  # exactly that many optimizer steps ran
    assert cli.trainer.num_val_batches == [1]


def test_integer_limits_and_val_check_interval_stay_integers(in_tmp):
    cli = run_lightning(
        [
            "--config",
            TINY,
            "--trainer.logger=false",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=1",
            "--trainer.limit_test_batches=1",
            "--trainer.limit_predict_batches=2",
            "--trainer.val_check_interval=1",
        ],
        run=False,
    )
    t = cli.trainer
    values = (
        t.limit_train_batches,
        t.limit_val_batches,
        t.limit_test_batches,
        t.limit_predict_batches,
        t.val_check_interval,
    )
    assert values == (3, 1, 1, 2, 1) and all(type(v) is int for v in values)
    cli = run_lightning(["--config", TINY, "--trainer.logger=false", "--trainer.limit_val_batches=1.0"], run=False)
    assert cli.trainer.limit_val_batches == 1.0 and type(cli.trainer.limit_val_batches) is float


def test_wandb_logger_continues_a_run_id_before_the_run_exists(tmp_path):
    from lightning_pose.callbacks.wandb_logger import PoseWandbLogger

    logger = PoseWandbLogger(project="p", save_dir=str(tmp_path), mode="disabled")
    logger.continue_run("abc123")
    assert logger.version == "abc123"
    assert logger._wandb_init["id"] == "abc123" and logger._wandb_init["resume"] == "allow"
    strict = PoseWandbLogger(project="p", save_dir=str(tmp_path), mode="disabled", resume="must")
    strict.continue_run("abc123")
    assert strict._wandb_init["resume"] == "must"  # a configured W&B resume mode is kept


def test_resumed_config_is_compared_without_ckpt_path(tmp_path):
    from lightning_pose.callbacks.wandb_callbacks import _same_config

    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump({"trainer": {"max_epochs": 2}, "ckpt_path": None}))
    assert _same_config(saved, yaml.safe_dump({"trainer": {"max_epochs": 2}, "ckpt_path": "last"}))
    assert not _same_config(saved, yaml.safe_dump({"trainer": {"max_epochs": 5}, "ckpt_path": "last"}))


def test_set_epoch_keys_the_in_process_augmentation_stream():
    from lightning_pose.data.datasets.seeding import WorkerSeeder

    class Recorder:
        def __init__(self) -> None:
            self.seeds: list[int] = []

        def reseed(self, seed: int) -> None:
            self.seeds.append(seed)

    torch.manual_seed(0)
    plain, keyed, rec_plain, rec_keyed = WorkerSeeder(3), WorkerSeeder(3), Recorder(), Recorder()
    plain(rec_plain)
    keyed(rec_keyed)
    assert rec_plain.seeds == rec_keyed.seeds  # epoch 0: the seeds of a seeder never told the epoch
    keyed(rec_keyed)
    assert len(rec_keyed.seeds) == 1  # same process seed, same epoch: the stream continues
    keyed.set_epoch(2)
    keyed(rec_keyed)
    fresh, rec_fresh = WorkerSeeder(3), Recorder()
    fresh.set_epoch(2)
    fresh(rec_fresh)
    # a new process (a resumed run) told epoch 2 starts the stream an uninterrupted run uses in epoch 2
    assert rec_keyed.seeds[-1] == rec_fresh.seeds[-1] != rec_keyed.seeds[0]

"""W&B sweep definitions: valid for W&B's own engine, scheduled as expected, and the agent's command runs our CLI.

Sweeps need a W&B server, so (as ECOSYSTEM.md recommends) the schedule is checked with the `sweeps` package (the
engine W&B runs server-side) and the agent's argv is built with wandb's own command expansion, then executed
in-process with a tiny budget.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sweeps = pytest.importorskip("sweeps")
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args  # noqa: E402

from lightning_pose.cli import main  # noqa: E402
from wandb_records import find_run_file, wait_complete  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "sweeps" / name).read_text())


def agent_argv(cfg: dict, run) -> list[str]:
    """The argv a `wandb agent` would execute for `run` (same macro expansion as wandb's agent)."""
    values = create_sweep_command_args({"args": run.config})
    values.update(env=["/usr/bin/env"], interpreter=["python"], program=[cfg.get("program", "")])
    out: list[str] = []
    for token in map(str, create_sweep_command(list(cfg["command"]))):
        if token.startswith("${") and token.endswith("}"):
            out += values.get(token[2:-1]) or []
        else:
            out.append(token)
    return out


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_sweep_files_are_valid_for_the_wandb_engine(path):
    cfg = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(cfg) == []
    # every config file a sweep points at exists and every swept key is a CLI path
    cmd = cfg["command"]
    assert cmd[:3] == ["${env}", "lightning-pose", "fit"]
    for token in cmd:
        if str(token).startswith("configs/"):
            assert (ROOT / token).is_file(), token
    for value in cfg["parameters"].get("config", {}).get("values", []):
        assert (ROOT / value).is_file(), value


def test_grid_sweep_schedules_every_method_and_seed():
    cfg = load("compare_methods_demo.yaml")
    runs = [r for r in sweeps.next_runs(cfg, [], validate=True, n=100) if r is not None]
    combos = {(r.config["config"]["value"], r.config["seed_everything"]["value"]) for r in runs}
    assert len(combos) == len(cfg["parameters"]["config"]["values"]) * 2


def test_bayes_sweep_proposes_values_in_range_after_finished_runs():
    cfg = load("quickstart_lr.yaml")
    first = sweeps.next_run(cfg, [], validate=True)
    lr = first.config["model.init_args.optimizer.init_args.lr"]["value"]
    assert 1e-4 <= lr <= 1e-2
    done = []
    for i, lr_value in enumerate((3e-4, 1e-3, 3e-3)):
        done.append(sweeps.SweepRun(
            name=f"r{i}", state=sweeps.RunState.finished,
            config={"model.init_args.optimizer.init_args.lr": {"value": lr_value},
                    "data.init_args.batch_size": {"value": 32}, "model.init_args.sigma": {"value": 2.0}},
            summary_metrics={"val/PCK@0.2": 0.5 + i / 10}, history=[{"val/PCK@0.2": 0.5 + i / 10}],
        ))
    nxt = sweeps.next_run(cfg, done, validate=True)
    assert 1e-4 <= nxt.config["model.init_args.optimizer.init_args.lr"]["value"] <= 1e-2
    assert nxt.config["data.init_args.batch_size"]["value"] in (16, 32, 64)


def test_agent_command_runs_our_cli_and_logs_swept_values(tmp_path, monkeypatch, demo_cache):
    cfg = load("quickstart_lr.yaml")
    run = sweeps.next_run(cfg, [], validate=True)
    argv = agent_argv(cfg, run)
    assert argv[:5] == ["/usr/bin/env", "lightning-pose", "fit", "--config", "configs/quickstart.yaml"]
    lr = run.config["model.init_args.optimizer.init_args.lr"]["value"]
    assert f"--model.init_args.optimizer.init_args.lr={lr}" in argv
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    monkeypatch.setenv("WANDB_MODE", "offline")
    save_dir = tmp_path / "runs"
    tiny = ["--trainer.max_epochs=1", "--trainer.check_val_every_n_epoch=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
            "--trainer.callbacks=[]", f"--trainer.logger.init_args.save_dir={save_dir}",
            "--data.init_args.num_train=12", "--data.init_args.num_val=6", "--data.init_args.num_workers=0",
            "--data.init_args.image_size=[128,128]", "--data.init_args.input_size=[64,64]",
            "--model.init_args.backbone=resnet18", "--model.init_args.deconv_channels=[16,16]"]
    # the agent's own arguments come last in its argv; ours only shrink the budget, so they go before them
    main(argv[2:5] + tiny + argv[5:])
    summary = wait_complete(find_run_file(save_dir / "wandb"))
    cfg_logged = summary["config"]
    assert cfg_logged["optimizer_config"]["init_args"]["lr"] == pytest.approx(lr)
    assert cfg_logged["cli"]["data"]["init_args"]["batch_size"] == run.config["data.init_args.batch_size"]["value"]
    assert cfg_logged["sigma"] == pytest.approx(run.config["model.init_args.sigma"]["value"])
    assert "val/PCK@0.2" in summary["summary"]  # the sweep's metric is logged

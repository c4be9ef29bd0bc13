"""The `lightning-pose` command: links, --print_config, --results, saved configs, dispatch, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lightning_pose.cli import main, run_lightning

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, demo_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    return tmp_path


def test_links_put_keypoint_set_and_input_size_into_the_model(in_tmp):
    cli = run_lightning(["--config", TINY, "--data.init_args.input_size=[96,128]", "--trainer.logger=false"], run=False)
    assert cli.model.keypoint_set is cli.datamodule.keypoint_set
    assert cli.model.num_keypoints == 17
    assert cli.model.input_size == (96, 128)
    # the codec geometry follows: stride 8 (two deconvs on a stride-32 backbone)
    assert tuple(cli.model.codec.heatmap_size) == (12, 16)


def test_custom_keypoint_set_is_linked_too(in_tmp, shared_data):
    custom = {
        "name": "coco_renamed",
        "keypoints": [f"k{i}" for i in range(17)],
        "flip_pairs": [[1, 2], [3, 4]],
        "sigmas": [0.05] * 17,
    }
    coco = shared_data / "coco"
    cli = run_lightning(
        [
            "--config",
            TINY,
            "--trainer.logger=false",
            "--data=COCODataModule",
            f"--data.init_args.root={coco}",
            f"--data.init_args.train_ann={coco / 'test_coco.json'}",
            f"--data.init_args.train_images={coco}",
            f"--data.init_args.val_ann={coco / 'test_coco.json'}",
            f"--data.init_args.val_images={coco}",
            f"--data.init_args.keypoint_set={json.dumps(custom)}",
            "--data.init_args.input_size=[64,64]",
        ],
        run=False,
    )
    assert cli.model.keypoint_set.name == "coco_renamed"
    assert cli.model.flip_indices[:5] == [0, 2, 1, 4, 3]
    assert cli.model.keypoint_set.sigmas == tuple([0.05] * 17)


def test_print_config_resolves_and_exits_zero(in_tmp, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", TINY, "--print_config"])
    assert exc.value.code == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["class_path"].endswith(".SimpleBaselineTask")
    assert cfg["data"]["class_path"].endswith(".DemoDataModule")
    # linked targets are not part of the user-facing config: stated once, in the datamodule
    assert "keypoint_set" not in cfg["model"]["init_args"]
    assert "input_size" not in cfg["model"]["init_args"]


def test_fit_then_validate_with_results_json(in_tmp):
    assert main(["fit", "--config", TINY, "--trainer.logger=false"]) is None
    ckpts = sorted(in_tmp.rglob("*.ckpt"))
    assert ckpts, "fit saved no checkpoint"
    out = in_tmp / "res" / "val.json"
    configs_after_fit = sorted(in_tmp.rglob("config*.yaml"))
    main(["validate", "--config", TINY, "--trainer.logger=false", f"--ckpt_path={ckpts[-1]}", f"--results={out}"])
    # a job without a logger and without a run folder writes no config into the current directory
    assert sorted(in_tmp.rglob("config*.yaml")) == configs_after_fit
    results = json.loads(out.read_text())
    for key in ("val/PCK@0.2", "val/PCK@0.05", "val/AP", "val/AP50", "val/loss"):
        assert key in results, key
        assert results[key] is None or 0.0 <= results[key] <= 1.0 or key == "val/loss"
    # flat: every value a number (or null for undefined)
    assert all(v is None or isinstance(v, float) for v in results.values())


def test_resolved_config_saved_per_run_never_overwritten(in_tmp, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    main(["fit", "--config", TINY])
    main(["fit", "--config", TINY])
    saved = sorted(in_tmp.glob("runs/lp-tests/*/config.yaml"))
    assert len(saved) == 2, saved  # one per run, in the run's own folder
    cfg = yaml.safe_load(saved[0].read_text())
    assert cfg["data"]["class_path"].endswith("DemoDataModule")
    assert cfg["trainer"]["max_epochs"] == 1


def test_dispatch_help_and_unknown_data_subcommand(capsys):
    assert main(["--help"]) is None
    assert "lightning-pose evaluate" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["data", "frobnicate"])
    assert exc.value.code == 2


def test_evaluate_dispatch_reaches_the_evaluator(shared_data, tmp_path):
    gt = shared_data / "mpii" / "mpii_gt_val.mat"
    out = tmp_path / "pckh.json"
    # the GT itself (1-based, same frame) as the prediction: every part is 100
    import scipy.io

    m = scipy.io.loadmat(gt)
    preds = m["pos_gt_src"].transpose(2, 0, 1)  # (N, 16, 2)
    pred_file = tmp_path / "pred.mat"
    scipy.io.savemat(pred_file, {"preds": preds})
    assert main(["evaluate", "mpii", "--gt", str(gt), "--pred", str(pred_file), "--json", str(out)]) is None
    table = json.loads(out.read_text())
    assert table["Mean"] == pytest.approx(100.0)


def test_console_script_exit_status(tmp_path, demo_cache):
    """The installed entry point returns 0 after a successful command and non-zero on a usage error."""
    env = dict(os.environ, WANDB_MODE="disabled")
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_pose",
            "fit",
            "--config",
            TINY,
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run(
        [sys.executable, "-m", "lightning_pose", "fit", "--config", TINY, "--model.init_args.nope=1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0
    assert "nope" in bad.stderr


def test_predict_writes_coco_results_in_image_frame(in_tmp):
    out = in_tmp / "pred.json"
    assert main(["predict", "--config", TINY, "--trainer.logger=false", f"--results={out}"]) is None
    preds = json.loads(out.read_text())
    from lightning_pose.data.datamodules import DemoDataModule

    dm = DemoDataModule(num_train=12, num_val=6, image_size=(128, 128), input_size=(64, 64), num_workers=0)
    gt = dm.ground_truth("test")
    persons = [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert len(preds) == len(persons)  # one prediction per evaluated person crop
    for p in preds:
        assert p["category_id"] == 1 and len(p["keypoints"]) == 17 * 3 and 0.0 <= p["score"] <= 1.0
        xs, ys = p["keypoints"][0::3], p["keypoints"][1::3]
        # image frame (not the 64x64 input frame): every prediction lies in its person's crop, i.e. within
        # 1.25/2 x the aspect-fixed (square) box side of the box centre
        ann = next(a for a in persons if a["id"] == p["ann_id"])
        x0, y0, bw, bh = ann["bbox"]
        half = 0.625 * max(bw, bh) + 1.0
        assert all(abs(x - (x0 + bw / 2)) <= half for x in xs) and all(abs(y - (y0 + bh / 2)) <= half for y in ys)

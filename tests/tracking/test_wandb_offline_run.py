"""A real offline W&B run of `lightning-pose fit`: what lands in the run file is what dashboards will show."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lightning_pose.cli import main
from wandb_records import find_run_file, wait_complete

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory, demo_cache):
    tmp_path = tmp_path_factory.mktemp("wandb_offline")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setattr(sys, "argv", ["lightning-pose"])
        mp.setenv("WANDB_MODE", "offline")
        _fit()
    return wait_complete(find_run_file(tmp_path / "runs" / "wandb"))


def _fit() -> None:
    main(["fit", "--config", TINY, "--trainer.logger.init_args.log_model=true",
          "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
          "--trainer.callbacks.monitor=val/PCK@0.2", "--trainer.callbacks.mode=max"])


def test_run_is_grouped_and_tagged_for_method_comparison(offline_run):
    run = offline_run["run"]
    assert run["project"] == "lp-tests"
    assert run["group"] == "simple_baseline"
    assert run["job_type"] == "fit"
    assert {"demo", "resnet18"} <= set(run["tags"])
    cfg = offline_run["config"]
    assert cfg["method"] == "simple_baseline" and cfg["dataset"] == "demo"
    assert cfg["num_keypoints"] == 17
    assert cfg["optimizer_config"]["init_args"]["lr"] == pytest.approx(0.001)
    # the full resolved CLI config is there too
    assert cfg["cli"]["model"]["class_path"].endswith("SimpleBaselineTask")
    assert cfg["cli"]["data"]["init_args"]["num_train"] == 12


def test_history_summary_images_and_model_artifact(offline_run):
    keys = set().union(*(row.keys() for row in offline_run["history"]))
    assert "train/loss" in keys and "val/loss" in keys
    assert {"val/PCK@0.2", "val/AP", "val/PCK@0.05/left_wrist"} <= keys
    # drawn "ground truth | prediction" panels: one image row of 8 panels
    images = [row for row in offline_run["history"] if "val/examples/count" in row]
    assert images and images[0]["val/examples/count"] == 8
    assert images[0]["val/examples/_type"] == "images/separated"
    pck = [row["val/PCK@0.2"] for row in offline_run["history"] if "val/PCK@0.2" in row]
    assert all(0.0 <= v <= 1.0 for v in pck)
    summary = offline_run["summary"]
    assert summary["val/PCK@0.2"] == {"max": pytest.approx(max(pck))}
    assert any(a["type"] == "model" and "latest" in a["aliases"] for a in offline_run["artifacts"])

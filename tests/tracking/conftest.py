"""Real offline W&B runs written by tiny fits, shared by the tracking/compare/dashboard tests of this folder.

One session fixture runs (in-process, through the CLI, ``WANDB_MODE=offline``, everything under one tmp folder):
a 2-epoch SimpleBaseline fit (checkpoint artifact logged), a 1-epoch DeepPose fit and a ``validate`` job with
``--results``. About 40 s on 2 loaded cores.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lightning_pose.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")
TINY_DEEPPOSE = str(Path(__file__).resolve().parent / "tiny_deeppose.yaml")


@dataclass
class OfflineRuns:
    root: Path  # the tmp working folder
    save_dir: Path  # <root>/runs: wandb/ and <project>/<run id>/ below it
    results: Path  # --results JSON of the validate job


@pytest.fixture(scope="session")
def offline_runs(tmp_path_factory, demo_cache) -> OfflineRuns:
    root = tmp_path_factory.mktemp("offline_runs")
    save_dir = root / "runs"
    results = root / "validate_results.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(sys, "argv", ["lightning-pose"])
        mp.setenv("WANDB_MODE", "offline")
        main(
            [
                "fit",
                "--config",
                TINY,
                "--trainer.max_epochs=2",
                "--trainer.logger.init_args.log_model=true",
                "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
                "--trainer.callbacks.monitor=val/PCK@0.2",
                "--trainer.callbacks.mode=max",
            ]
        )
        main(["fit", "--config", TINY_DEEPPOSE])
        main(["validate", "--config", TINY, "--results", str(results)])
    return OfflineRuns(root=root, save_dir=save_dir, results=results)

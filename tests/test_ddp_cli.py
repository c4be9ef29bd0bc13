"""Multi-process DDP through the real console script (gloo on CPU): fit runs, and validation on 2 processes gives
exactly the single-process metrics (DistributedSampler padding de-duplicated by sample id).

`strategy=ddp` re-executes the launching command for rank 1, so it is run as a subprocess, never inside pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "lightning_pose", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_ddp_fit_and_validation_equal_single_process(tmp_path, demo_cache):
    common = ["--config", TINY, "--trainer.logger=false", "--data.init_args.num_val=5"]
    fit = _run(
        ["fit", *common, "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.default_root_dir=ckpt"], tmp_path
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    ckpts = sorted(tmp_path.rglob("*.ckpt"))
    assert ckpts, "DDP fit saved no checkpoint"
    val = [
        "validate",
        *common,
        f"--ckpt_path={ckpts[-1]}",
        "--trainer.limit_val_batches=1.0",
        "--data.init_args.val_batch_size=2",
    ]
    one = _run([*val, "--trainer.devices=1", "--results=one.json"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _run([*val, "--trainer.devices=2", "--trainer.strategy=ddp", "--results=two.json"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    r1 = json.loads((tmp_path / "one.json").read_text())
    r2 = json.loads((tmp_path / "two.json").read_text())
    exact = [k for k in r1 if k.startswith("val/") and k != "val/loss"]
    assert {"val/AP", "val/PCK@0.2", "val/PCK@0.05"} <= set(exact)
    for key in exact:
        assert r2[key] == pytest.approx(r1[key], abs=1e-12), key

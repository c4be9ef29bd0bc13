"""Console of a normal run: no recurring tips or library deprecation noise, epoch lines on their own line, a final
summary, a compact validate table, `--version`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_pose.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")


@pytest.mark.slow
def test_fit_console_is_quiet_and_ends_with_a_summary(tmp_path, demo_cache):
    env = dict(
        os.environ, WANDB_MODE="offline", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    env.pop("WANDB_SILENT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_pose.cli",
            "fit",
            "--config",
            TINY,
            "--trainer.enable_progress_bar=true",
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            "--trainer.callbacks.monitor=val/PCK@0.2",
            "--trainer.callbacks.mode=max",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    for noise in ("💡 Tip", "litlogger", "litmodels", "LeafSpec", "anonymous setting", "Validate metric"):
        assert noise not in text, noise
    lines = proc.stdout.replace("\r", "\n").splitlines()
    epoch = [ln for ln in lines if "epoch 0 (" in ln]
    assert epoch and all(ln.startswith("epoch 0 (") for ln in epoch), epoch  # not glued to the progress bar
    summary = "\n".join(lines[lines.index(next(ln for ln in lines if ln.startswith("fit finished"))) :])
    assert "best val/AP = " in summary and "at epoch 0" in summary  # the demo headline: COCO AP
    assert "best checkpoint: " in summary and summary.count(".ckpt") >= 1
    assert "run folder: " in summary and "wandb sync " in summary and "offline-run-" in summary


def test_validate_prints_a_compact_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    main(["validate", "--config", TINY, "--trainer.logger=false"])
    out = capsys.readouterr().out
    table = out[out.index("val results:") :].splitlines()[1:]
    names = [ln.split()[0] for ln in table if ln.startswith("  ")]
    assert names[:5] == ["val/PCK@0.2", "val/PCK@0.05", "val/AP", "val/swap_rate", "val/loss"] and len(names) <= 9
    assert "Validate metric" not in out and "/left_wrist" not in out

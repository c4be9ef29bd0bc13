"""Callbacks every CLI run gets: constant-predictor baseline, left/right swap rate, validation of the last epoch,
and the warning for a monitored metric that was never computed."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from lightning_pose.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_shortened_run_still_validates_and_logs_the_baseline(in_tmp, capsys):
    out = in_tmp / "metrics.json"
    # validation every 2 epochs, but only 1 epoch: the last epoch must validate anyway
    assert (
        main(
            [
                "fit",
                "--config",
                TINY,
                "--trainer.logger=false",
                "--trainer.check_val_every_n_epoch=2",
                f"--results={out}",
            ]
        )
        is None
    )
    results = json.loads(out.read_text())
    for key in (
        "val/AP",
        "val/PCK@0.05",
        "val/baseline/AP",
        "val/baseline/PCK@0.05",
        "val/baseline/PCK@0.2",
        "val/swap_rate",
    ):
        assert key in results and results[key] is not None, key
    assert 0.0 <= results["val/swap_rate"] <= 1.0
    # the baseline is the mean training pose: it finds some joints at the coarse threshold, few at the fine one
    assert 0.0 < results["val/baseline/PCK@0.05"] < results["val/baseline/PCK@0.2"] <= 1.0
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "constant-predictor baseline" in text and "val/baseline/PCK@0.05=" in text


def test_monitored_metric_never_computed_warns(in_tmp):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(
            [
                "fit",
                "--config",
                TINY,
                "--trainer.logger=false",
                "--trainer.limit_val_batches=0",
                "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
                "--trainer.callbacks.monitor=val/AP",
                "--trainer.callbacks.mode=max",
            ]
        )
    messages = [str(w.message) for w in caught]
    assert any("monitors 'val/AP'" in m and "never computed" in m for m in messages), messages

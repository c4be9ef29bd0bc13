"""Argument order (`--config` first) and `None` values from W&B sweep agents."""

from __future__ import annotations

import sys

import pytest

from lightning_pose.cli import main
from lightning_pose.cli_args import ArgOrderError, prepare_cli_args

CONFIG = "tests/configs/tiny_demo.yaml"


def test_none_from_the_agent_becomes_null():
    assert prepare_cli_args(["fit", "--config", CONFIG, "--model.init_args.scheduler=None"]) == [
        "fit",
        "--config",
        CONFIG,
        "--model.init_args.scheduler=null",
    ]
    assert prepare_cli_args(["fit", "--config", CONFIG, "--data.init_args.val_batch_size", "None"])[-1] == "null"


def test_override_before_a_config_that_sets_it_is_refused(monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[2])
    with pytest.raises(ArgOrderError, match=r"tiny_demo.yaml: --config comes after --seed_everything"):
        prepare_cli_args(["fit", "--seed_everything=3", "--config", CONFIG])
    with pytest.raises(ArgOrderError, match="model.init_args.backbone"):
        prepare_cli_args(["fit", "--model.init_args.backbone=resnet34", f"--config={CONFIG}"])


def test_override_the_config_does_not_set_only_warns(monkeypatch, capsys):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[2])
    args = ["fit", "--model.init_args.sigma=3.0", "--config", CONFIG]
    assert prepare_cli_args(args) == args
    assert "--model.init_args.sigma given before --config" in capsys.readouterr().err
    assert prepare_cli_args(["fit", "--config", CONFIG, "--seed_everything=3"])[-1] == "--seed_everything=3"
    assert capsys.readouterr().err == ""


def test_cli_reports_the_order_problem_as_one_line(monkeypatch, capsys):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[2])
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--seed_everything=3", "--config", CONFIG])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lightning-pose: error: tests/configs/tiny_demo.yaml")


def test_null_value_parses_in_the_real_cli(monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[2])
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    from lightning_pose.cli import run_lightning

    cli = run_lightning(
        ["--config", CONFIG, "--model.init_args.scheduler=None", "--data.init_args.val_batch_size=None"], run=False
    )
    assert cli.model.scheduler_factory is None and cli.datamodule.val_batch_size == 4


def test_version(capsys):
    main(["--version"])
    out = capsys.readouterr().out
    assert out.startswith("lightning-pose 0.1.0 (torch ") and "wandb" in out

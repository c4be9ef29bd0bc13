"""W&B sweep definitions: valid for W&B's own engine, scheduled as expected, and the agent's command runs our CLI.

W&B sweeps need a server, so the schedule is checked with the `sweeps` package (the engine W&B runs server-side)
and the agent's argv is built with wandb's own command expansion, then executed with a tiny budget through
`lightning-pose sweep --local` (subprocess runs, metric from --results, comparison at the end).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

sweeps = pytest.importorskip("sweeps")

from wandb_records import wait_complete  # noqa: E402

from lightning_pose.cli import main  # noqa: E402
from lightning_pose.cli_args import prepare_cli_args  # noqa: E402
from lightning_pose.compare.sweep import agent_command  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "sweeps" / name).read_text())


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_sweep_files_are_valid_for_the_wandb_engine(path):
    cfg = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(cfg) == []
    # every config file a sweep points at exists and every swept key is a CLI path
    cmd = cfg["command"]
    assert cmd[:3] == ["${env}", "lightning-pose", "fit"] and cmd[-1] == "${args}"
    if "config" in cfg["parameters"]:
        # the swept config file must come first in ${args} (the agent writes parameters in order)
        assert list(cfg["parameters"])[0] == "config" and "--config" not in cmd
    else:
        assert cmd[3] == "--config" and cmd.index("${args}") > 4, "--config FILE must come before ${args}"
    for token in cmd:
        if str(token).startswith("configs/"):
            assert (ROOT / token).is_file(), token
    for value in cfg["parameters"].get("config", {}).get("values", []):
        assert (ROOT / value).is_file(), value


def test_grid_sweep_schedules_every_method_and_seed(monkeypatch):
    cfg = load("compare_methods_demo.yaml")
    runs = [r for r in sweeps.next_runs(cfg, [], validate=True, n=100) if r is not None]
    combos = {(r.config["config"]["value"], r.config["seed_everything"]["value"]) for r in runs}
    assert len(combos) == len(cfg["parameters"]["config"]["values"]) * 2
    # every run's argv puts the config file before the other overrides, so the CLI's order check accepts it
    monkeypatch.chdir(ROOT)
    for run in runs:
        argv = agent_command(cfg, run.config)
        assert argv[3].startswith("--config=configs/") and argv[4].startswith("--seed_everything=")
        assert prepare_cli_args(argv[2:]) == argv[2:]


def test_bayes_sweep_proposes_values_in_range_after_finished_runs():
    cfg = load("quickstart_lr.yaml")
    first = sweeps.next_run(cfg, [], validate=True)
    lr = first.config["model.init_args.optimizer.init_args.lr"]["value"]
    assert 1e-4 <= lr <= 1e-2
    done = []
    for i, lr_value in enumerate((3e-4, 1e-3, 3e-3)):
        done.append(
            sweeps.SweepRun(
                name=f"r{i}",
                state=sweeps.RunState.finished,
                config={
                    "model.init_args.optimizer.init_args.lr": {"value": lr_value},
                    "data.init_args.batch_size": {"value": 32},
                    "model.init_args.sigma": {"value": 2.0},
                },
                summary_metrics={"val/PCK@0.2": 0.5 + i / 10},
                history=[{"val/PCK@0.2": 0.5 + i / 10}],
            )
        )
    nxt = sweeps.next_run(cfg, done, validate=True)
    assert 1e-4 <= nxt.config["model.init_args.optimizer.init_args.lr"]["value"] <= 1e-2
    assert nxt.config["data.init_args.batch_size"]["value"] in (16, 32, 64)


def test_none_values_from_the_agent_parse(monkeypatch):
    cfg = {
        "method": "grid",
        "parameters": {"model.init_args.scheduler": {"values": [None]}},
        "command": ["${env}", "lightning-pose", "fit", "--config", "tests/configs/tiny_demo.yaml", "${args}"],
    }
    assert sweeps.schema_violations_from_proposed_config(cfg) == []
    (run,) = [r for r in sweeps.next_runs(cfg, [], validate=True, n=5) if r is not None]
    argv = agent_command(cfg, run.config)
    assert argv[-1] == "--model.init_args.scheduler=None"  # what the agent writes for a null value
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    from lightning_pose.cli import run_lightning

    cli = run_lightning(argv[3:], run=False)
    assert cli.model.scheduler_factory is None


TINY = [
    "--trainer.max_epochs=1",
    "--trainer.check_val_every_n_epoch=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=2",
    "--trainer.callbacks=[]",
    "--data.init_args.num_train=12",
    "--data.init_args.num_val=6",
    "--data.init_args.num_workers=0",
    "--data.init_args.image_size=[128,128]",
    "--data.init_args.input_size=[64,64]",
    "--model.init_args.network.init_args.backbone=resnet18",
    "--model.init_args.network.init_args.deconv_channels=[16,16]",
    "--trainer.enable_progress_bar=false",
]


@pytest.mark.slow
def test_local_sweep_runs_the_engine_proposals_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "sweep"
    main(["sweep", "sweeps/quickstart_lr.yaml", "--local", "--count", "2", "--out", str(out), "--", *TINY])
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["state"] for r in rows] == ["finished", "finished"]
    lrs = [float(r["model.init_args.optimizer.init_args.lr"]) for r in rows]
    assert all(1e-4 <= lr <= 1e-2 for lr in lrs) and lrs[0] != lrs[1]
    for i, row in enumerate(rows):
        results = json.loads((out / f"run{i:03d}_results.json").read_text())
        assert float(row["val/PCK@0.2"]) == pytest.approx(results["val/PCK@0.2"])
    runs = sorted((out / "runs" / "wandb").rglob("run-*.wandb"))
    assert len(runs) == 2
    logged = {}
    for r in runs:
        s = wait_complete(r)
        cfg = s["config"]
        logged[round(cfg["lr"], 12)] = (cfg["cli"]["data"]["init_args"]["batch_size"], cfg["sigma"], s["summary"])
    # each run trained with the values the engine proposed, and logged the sweep's metric
    for row in rows:
        batch, sigma, summary = logged[round(float(row["model.init_args.optimizer.init_args.lr"]), 12)]
        assert batch == int(row["data.init_args.batch_size"]) and sigma == pytest.approx(
            float(row["model.init_args.sigma"])
        )
        assert summary["val/PCK@0.2"] == pytest.approx(float(row["val/PCK@0.2"]), abs=1e-6)
    table = list(csv.DictReader((out / "comparison.csv").open()))
    assert len(table) == 2 and (out / "comparison.md").is_file()

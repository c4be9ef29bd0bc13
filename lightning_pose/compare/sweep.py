"""``lightning-pose sweep SWEEP.yaml --local --count N [--out DIR] [-- EXTRA CLI ARGS]``: a W&B sweep without a server.

W&B's own sweeps engine (the ``sweeps`` package, what the W&B server runs) validates the file and proposes each run's
parameters (grid, random or bayes, using the metric of the finished runs); each run executes the sweep's ``command``
exactly as ``wandb agent`` would build it (W&B's macro expansion), with ``lightning-pose`` run as
``python -m lightning_pose.cli`` in a subprocess, W&B offline, ``EXTRA CLI ARGS`` appended (e.g. a smaller budget)
plus ``--results`` (the metric is read from that JSON file) and the run folder. At the end the comparison of all
runs is written (``comparison.md``/``.csv`` + plots, see ``lightning-pose compare``) and ``sweep.md``/``sweep.csv``
list each run's parameters and metric.

Runs are sequential, so ``early_terminate`` (hyperband) has nothing to stop locally and is ignored. With an account,
use W&B itself: ``wandb sweep FILE`` then ``wandb agent --count N ENTITY/PROJECT/ID``; on a multi-GPU machine start
one agent per GPU (``CUDA_VISIBLE_DEVICES=0 wandb agent ID &``, ``CUDA_VISIBLE_DEVICES=1 wandb agent ID &``...), each
run then trains on the one GPU it sees (``trainer.devices: 1``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "load_sweep", "agent_command", "run_local_sweep", "SweepFileError"]


class SweepFileError(ValueError):
    """A sweep file that W&B's engine would reject (the message names the file and the problem)."""


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and validate a sweep file against the schema of the installed ``sweeps`` engine."""
    import yaml

    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SweepFileError(f"{path}: cannot read the sweep file ({exc})") from exc
    if not isinstance(cfg, dict):
        raise SweepFileError(f"{path}: a sweep file is a YAML mapping")
    import warnings

    with warnings.catch_warnings():  # sweeps 0.2 uses pydantic-v1 config names
        warnings.simplefilter("ignore", UserWarning)
        import sweeps

    problems = sweeps.schema_violations_from_proposed_config(cfg)
    if problems:
        raise SweepFileError(f"{path}: not a valid W&B sweep: {problems[0]}")
    if "command" not in cfg:
        raise SweepFileError(
            f"{path}: no `command:` (expected e.g. [${{env}}, lightning-pose, fit, --config, FILE, ${{args}}])"
        )
    return cfg


def agent_command(cfg: dict[str, Any], run_config: dict[str, Any]) -> list[str]:
    """The argv ``wandb agent`` would execute for a run with ``run_config`` (``{param: {"value": v}}``)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    values = create_sweep_command_args({"args": run_config})
    values.update(env=["/usr/bin/env"], interpreter=["python"], program=[cfg.get("program", "")])
    out: list[str] = []
    for token in map(str, create_sweep_command(list(cfg["command"]))):
        if token.startswith("${") and token.endswith("}"):
            out += values.get(token[2:-1]) or []
        else:
            out.append(token)
    return out


def _local_argv(argv: list[str]) -> list[str]:
    """Replace ``/usr/bin/env lightning-pose`` by this interpreter running the same CLI module."""
    args = list(argv)
    if args and args[0] == "/usr/bin/env":
        args = args[1:]
    if not args or args[0] not in ("lightning-pose", "lightning_pose"):
        raise SweepFileError(f"the sweep command must run lightning-pose, got {' '.join(argv)!r}")
    return [sys.executable, "-m", "lightning_pose.cli"] + args[1:]


def _metric(results: Path, name: str) -> float | None:
    try:
        data = json.loads(results.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    value = data.get(name)
    return float(value) if isinstance(value, (int, float)) else None


def run_local_sweep(
    sweep_file: str | Path, count: int, out: str | Path, extra: list[str] | None = None, log=print
) -> list[dict[str, Any]]:
    """Run up to ``count`` runs of the sweep offline; returns ``[{"run", "params", "metric", "state", "results"}]``."""
    cfg = load_sweep(sweep_file)
    import sweeps

    metric = (cfg.get("metric") or {}).get("name")
    out_dir = Path(out).expanduser().resolve()
    save_dir = out_dir / "runs"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if env.get("WANDB_MODE") != "disabled":
        env["WANDB_MODE"] = "offline"  # a local sweep never talks to a server
    done: list[Any] = []
    summary: list[dict[str, Any]] = []
    for i in range(int(count)):
        proposal = sweeps.next_run(cfg, done, validate=True)
        if proposal is None:  # grid exhausted
            break
        params = {k: v["value"] for k, v in proposal.config.items()}
        results = out_dir / f"run{i:03d}_results.json"
        if results.exists():
            raise SweepFileError(f"{results}: exists already; use a new --out folder")
        argv = _local_argv(agent_command(cfg, proposal.config))
        argv += list(extra or []) + [f"--trainer.logger.init_args.save_dir={save_dir}", "--results", str(results)]
        log(f"[sweep run {i}] " + " ".join(f"{k}={v}" for k, v in params.items()))
        proc = subprocess.run(argv, env=env, cwd=os.getcwd())
        value = _metric(results, metric) if metric else None
        state = (
            sweeps.RunState.finished
            if proc.returncode == 0 and (value is not None or not metric)
            else sweeps.RunState.failed
        )
        metrics = {metric: value} if metric and value is not None else {}
        done.append(
            sweeps.SweepRun(
                name=f"local-{i}",
                state=state,
                config=proposal.config,
                summary_metrics=metrics,
                history=[metrics] if metrics else [],
            )
        )
        summary.append(
            {
                "run": i,
                "params": params,
                "metric": value,
                "state": state.value,
                "results": str(results),
                "returncode": proc.returncode,
            }
        )
        log(f"[sweep run {i}] {state.value}: {metric}={value}")
    _write_summary(summary, metric, out_dir)
    if any(s["state"] == "finished" for s in summary):
        from lightning_pose.compare.cli import compare

        has_runs = save_dir.is_dir() and any(save_dir.rglob("run-*.wandb"))
        inputs = [str(save_dir)] if has_runs else [s["results"] for s in summary if s["state"] == "finished"]
        compare(inputs, out_dir, by="run")
    return summary


def _write_summary(summary: list[dict[str, Any]], metric: str | None, out_dir: Path) -> None:
    from lightning_pose.compare.table import write_text_atomic

    keys: list[str] = []
    for s in summary:
        keys += [k for k in s["params"] if k not in keys]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "state", metric or "metric"] + keys)
    lines = [
        "# Local sweep",
        "",
        "| run | state | " + (metric or "metric") + " | " + " | ".join(keys) + " |",
        "|" + "|".join(["---"] * (3 + len(keys))) + "|",
    ]
    for s in summary:
        vals = [s["params"].get(k, "") for k in keys]
        writer.writerow([s["run"], s["state"], "" if s["metric"] is None else s["metric"]] + vals)
        shown = "-" if s["metric"] is None else f"{s['metric']:.4f}"
        lines.append(f"| {s['run']} | {s['state']} | {shown} | " + " | ".join(str(v) for v in vals) + " |")
    write_text_atomic(out_dir / "sweep.csv", buf.getvalue())
    write_text_atomic(out_dir / "sweep.md", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="lightning-pose sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_file", help="a W&B sweep YAML (see sweeps/)")
    parser.add_argument("--local", action="store_true", help="run offline here with W&B's sweeps engine")
    parser.add_argument("--count", type=int, default=1, help="number of runs (as `wandb agent --count`)")
    parser.add_argument("--out", default="sweep-local", help="output folder (runs/, per-run results, tables)")
    args = parser.parse_args(argv)
    try:
        if not args.local:
            load_sweep(args.sweep_file)
            print(
                f"{args.sweep_file} is a valid W&B sweep. With a W&B account:\n"
                f"  wandb sweep {args.sweep_file}\n  wandb agent --count {args.count} ENTITY/PROJECT/SWEEP_ID\n"
                "  (one agent per GPU: CUDA_VISIBLE_DEVICES=<i> wandb agent ... &)\n"
                f"Without an account: lightning-pose sweep {args.sweep_file} --local --count {args.count}"
            )
            return 0
        if args.count < 1:
            parser.error("--count must be at least 1")
        summary = run_local_sweep(args.sweep_file, args.count, args.out, extra)
    except SweepFileError as exc:
        print(f"lightning-pose sweep: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if (out / "sweep.md").is_file():
        print((out / "sweep.md").read_text())
    print(f"tables and plots in {out}")
    return 0 if any(s["state"] == "finished" for s in summary) else 1

"""Runs to compare, from offline W&B run folders, ``--results`` JSON files or a W&B project (public API).

A :class:`RunRecord` holds what the comparison needs, in plain units:

* ``metrics``: last value of every scalar metric (``val/PCK@0.2``, ``test/AP`` ..., fractions in [0, 1]);
* ``best``: best value over the validation epochs (``best/<key>`` in the summary), ``best_epoch``;
* ``params`` (count), ``gflops`` (one forward pass of one crop, 1e9 FLOPs), ``images_per_s`` (measured inference
  throughput, machine-dependent), ``fit_s`` (training wall time, seconds);
* ``per_joint``: ``{metric: {joint: value}}`` (e.g. ``{"PCK@0.2": {"left_wrist": 0.8}}``) of the last evaluation;
* ``curve``: learning curve rows ``{"epoch": e, "val/PCK@0.2": v, ...}`` from the history.

Run folders are read with :mod:`lightning_pose.compare.wandb_file` (W&B's record schema); nothing is uploaded.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lightning_pose.compare.wandb_file import RunFileError, WandbRunFile, read_run_file

__all__ = [
    "RunRecord",
    "load_runs",
    "find_run_files",
    "record_from_run_file",
    "record_from_results",
    "records_from_project",
    "CompareInputError",
]


class CompareInputError(ValueError):
    """A comparison input that cannot be used (the message names the path and the problem)."""


@dataclass
class RunRecord:
    """One run, ready for tables and plots (see the module docstring for units)."""

    source: str
    run_id: str
    name: str
    method: str = "?"
    dataset: str = "?"
    backbone: str = ""
    input_size: str = ""
    job_type: str = ""
    seed: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    params: float | None = None
    gflops: float | None = None
    images_per_s: float | None = None
    fit_s: float | None = None
    per_joint: dict[str, dict[str, float]] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    finished: bool = True


def find_run_files(path: Path) -> list[Path]:
    """``run-*.wandb`` files under ``path`` (a run file, a run folder, a ``wandb/`` folder or a save_dir)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("run-*.wandb") if p.is_file())


def _number(v: Any) -> float | None:
    if isinstance(v, dict):  # summaries written as {"max": v} by older versions
        for key in ("last", "max", "min", "mean"):
            if key in v:
                return _number(v[key])
        return None
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and math.isfinite(float(v)):
        return float(v)
    return None


def _scalar_metrics(summary: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in summary.items():
        if not (key.startswith("val/") or key.startswith("test/")):
            continue
        v = _number(value)
        if v is not None:
            out[key] = v
    return out


def _size(v: Any) -> str:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return f"{int(v[0])}x{int(v[1])}"
    return "" if v is None else str(v)


def _read_table(run: WandbRunFile, entry: Any) -> tuple[list[str], list[list]] | None:
    """A logged ``wandb.Table`` from the run folder (``files/<path>``), or None when absent."""
    if not isinstance(entry, dict) or not entry.get("path"):
        return None
    file = run.run_dir / "files" / str(entry["path"])
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return list(data.get("columns", [])), list(data.get("data", []))


def _per_joint_from_table(table: tuple[list[str], list[list]] | None) -> dict[str, dict[str, float]]:
    if not table:
        return {}
    columns, rows = table
    if not columns or columns[0] != "joint":
        return {}
    out: dict[str, dict[str, float]] = {c: {} for c in columns[1:]}
    for row in rows:
        for c, v in zip(columns[1:], row[1:]):
            n = _number(v)
            if n is not None:
                out[c][str(row[0])] = n
    return {k: v for k, v in out.items() if v}


def _curve(history: Iterable[dict[str, Any]]) -> list[dict[str, float]]:
    rows = []
    for row in history:
        metrics = {k: v for k, v in row.items() if k.startswith("val/") and _number(v) is not None}
        if not metrics:
            continue
        entry = {k: float(v) for k, v in metrics.items()}
        if _number(row.get("epoch")) is not None:
            entry["epoch"] = float(row["epoch"])
        if _number(row.get("trainer/global_step")) is not None:
            entry["step"] = float(row["trainer/global_step"])
        rows.append(entry)
    return rows


def record_from_run_file(path: Path) -> RunRecord:
    """A :class:`RunRecord` from one offline run file."""
    try:
        run = read_run_file(path)
    except RunFileError as exc:
        raise CompareInputError(str(exc)) from exc
    cfg, summary = run.config, run.summary
    cli = cfg.get("cli") if isinstance(cfg.get("cli"), dict) else {}
    split = "test" if run.job_type == "test" else "val"
    per_joint = _per_joint_from_table(_read_table(run, summary.get(f"{split}/per_joint")))
    best = {
        k[len("best/") :]: float(v)
        for k, v in summary.items()
        if k.startswith("best/") and k not in ("best/epoch", "best/metric") and _number(v) is not None
    }
    return RunRecord(
        source=str(path),
        run_id=run.run_id,
        name=run.name or run.run_id,
        method=str(cfg.get("method") or run.group or "?"),
        dataset=str(cfg.get("dataset") or "?"),
        backbone=str(cfg.get("backbone") or ""),
        input_size=_size(cfg.get("input_size")),
        job_type=run.job_type,
        seed=cli.get("seed_everything"),
        metrics=_scalar_metrics(summary),
        best=best,
        best_epoch=int(summary["best/epoch"]) if _number(summary.get("best/epoch")) is not None else None,
        params=_number(summary.get("cost/params", cfg.get("params"))),
        gflops=_number(summary.get("cost/gflops", cfg.get("gflops"))),
        images_per_s=_number(summary.get("cost/images_per_s")),
        fit_s=_number(summary.get("time/fit_s")),
        per_joint=per_joint,
        curve=_curve(run.history),
        finished=run.finished,
    )


_PER_JOINT = re.compile(r"^(?P<split>val|test)/(?P<metric>[^/]+)/(?P<joint>[^/]+)$")


def record_from_results(path: Path) -> RunRecord:
    """A :class:`RunRecord` from a ``--results`` JSON file (flat ``{"val/PCK@0.2": 0.8, ...}``); the run is named
    after the file and has no config (method ``?`` unless the file holds ``method``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareInputError(f"{path}: not a readable results JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise CompareInputError(f"{path}: a results file holds one JSON object of metrics, got {type(data).__name__}")
    metrics, per_joint = {}, {}
    for key, value in data.items():
        v = _number(value)
        if v is None:
            continue
        m = _PER_JOINT.match(key)
        if m and not m.group("metric").endswith("excluded_instances") and m.group("joint") != "excluded_instances":
            per_joint.setdefault(m.group("metric"), {})[m.group("joint")] = v
        elif key.startswith(("val/", "test/")):
            metrics[key] = v
    if not metrics:
        raise CompareInputError(f"{path}: no val/ or test/ metrics in this results file")
    return RunRecord(
        source=str(path),
        run_id=path.stem,
        name=path.stem,
        method=str(data.get("method", "?")),
        dataset=str(data.get("dataset", "?")),
        metrics=metrics,
        per_joint=per_joint,
        job_type="test" if any(k.startswith("test/") for k in metrics) else "validate",
    )


def records_from_project(project: str, filters: dict | None = None) -> list[RunRecord]:
    """Runs of ``ENTITY/PROJECT`` through W&B's public API (needs an account; reads summaries and config)."""
    import wandb

    try:
        api_runs = wandb.Api().runs(project, filters=filters or {})
    except Exception as exc:
        raise CompareInputError(f"W&B project {project}: cannot list runs ({type(exc).__name__}: {exc})") from exc
    out = []
    for r in api_runs:
        cfg = {k: v for k, v in r.config.items() if not k.startswith("_")}
        summary = dict(r.summary)
        cli = cfg.get("cli") if isinstance(cfg.get("cli"), dict) else {}
        best = {
            k[len("best/") :]: float(v)
            for k, v in summary.items()
            if k.startswith("best/") and k not in ("best/epoch", "best/metric") and _number(v) is not None
        }
        out.append(
            RunRecord(
                source=f"{project}/{r.id}",
                run_id=r.id,
                name=r.name,
                method=str(cfg.get("method") or r.group or "?"),
                dataset=str(cfg.get("dataset") or "?"),
                backbone=str(cfg.get("backbone") or ""),
                input_size=_size(cfg.get("input_size")),
                job_type=r.job_type or "",
                seed=cli.get("seed_everything"),
                metrics=_scalar_metrics(summary),
                best=best,
                params=_number(summary.get("cost/params")),
                gflops=_number(summary.get("cost/gflops")),
                images_per_s=_number(summary.get("cost/images_per_s")),
                fit_s=_number(summary.get("time/fit_s")),
                finished=r.state == "finished",
                best_epoch=int(summary["best/epoch"]) if _number(summary.get("best/epoch")) is not None else None,
            )
        )
    return out


def load_runs(paths: Iterable[str | Path], project: str | None = None) -> list[RunRecord]:
    """Every run found in ``paths`` (run files/folders, save dirs, results JSON) and in ``project`` if given."""
    records: list[RunRecord] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise CompareInputError(f"{path}: no such file or folder")
        if path.is_file() and path.suffix == ".json":
            records.append(record_from_results(path))
            continue
        files = find_run_files(path)
        if not files:
            raise CompareInputError(f"{path}: no W&B run files (run-*.wandb) under this folder")
        records.extend(record_from_run_file(f) for f in files)
    if project:
        records.extend(records_from_project(project))
    # runs of one config share its configured name (sweeps): tell them apart by id in tables and plots
    counts: dict[str, int] = {}
    for r in records:
        counts[r.name] = counts.get(r.name, 0) + 1
    for r in records:
        if counts[r.name] > 1:
            r.name = f"{r.name} ({r.run_id})"
    return records

"""Per-joint results and the PCK-vs-threshold curve as W&B tables and charts (one table per run, not K scalars).

Input: the flat metric dict of one finished evaluation epoch (``PoseTask.final_metrics[split]``), keys as logged,
e.g. ``val/PCK@0.05/left_wrist`` (per joint) and ``val/PCK@0.2`` (mean). Thresholds are fractions of the
normaliser of each metric (bbox size for PCK, head size for PCKh).
"""

from __future__ import annotations

import re
from typing import Any

from lightning_pose.skeletons import KeypointSet

__all__ = ["per_joint_table", "threshold_curve", "log_result_tables", "is_per_joint_key"]

_PER_JOINT_KEY = re.compile(r"^(?:val|test)/[^/]+@[^/]+/[^/]+$")
_THRESHOLD_KEY = re.compile(r"^(?P<split>[^/]+)/(?P<metric>PCKh?)@(?P<thr>[0-9.]+)$")


def is_per_joint_key(key: str) -> bool:
    """Whether a logged key is a per-joint value: ``<split>/<metric>@<threshold>/<joint>`` (``val/PCK@0.05/nose``)."""
    return bool(_PER_JOINT_KEY.match(key))


def per_joint_table(values: dict[str, float], keypoint_set: KeypointSet, split: str) -> tuple[list[str], list[list]]:
    """Columns ``["joint", "<metric>@<t>", ...]`` and one row per keypoint (``None`` where a value is missing)."""
    metrics: list[str] = []
    for key in values:
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == split and parts[2] in keypoint_set.keypoints and parts[1] not in metrics:
            metrics.append(parts[1])
    metrics.sort(key=_metric_sort_key)
    rows = [[joint] + [_maybe(values.get(f"{split}/{m}/{joint}")) for m in metrics] for joint in keypoint_set.keypoints]
    return ["joint"] + metrics, rows


def threshold_curve(values: dict[str, float], split: str) -> list[tuple[str, float, float]]:
    """``(metric, threshold, value)`` for every mean ``PCK@t`` / ``PCKh@t`` of ``split``, sorted by threshold."""
    out = []
    for key, value in values.items():
        m = _THRESHOLD_KEY.match(key)
        if m and m.group("split") == split:
            out.append((m.group("metric"), float(m.group("thr")), float(value)))
    return sorted(out, key=lambda r: (r[0], r[1]))


def log_result_tables(run: Any, values: dict[str, float], keypoint_set: KeypointSet, split: str) -> list[str]:
    """Log ``<split>/per_joint`` (table + bar chart of the largest-threshold column) and ``<split>/pck_curve``
    (table + line chart) to the W&B ``run``. Returns the logged keys."""
    import wandb

    logged: dict[str, Any] = {}
    columns, rows = per_joint_table(values, keypoint_set, split)
    if len(columns) > 1:
        table = wandb.Table(columns=columns, data=rows)
        logged[f"{split}/per_joint"] = table
        bar_metric = columns[-1]
        logged[f"{split}/per_joint_{bar_metric}"] = wandb.plot.bar(
            table, "joint", bar_metric, title=f"{split} {bar_metric} per joint"
        )
    curve = threshold_curve(values, split)
    if curve:
        table = wandb.Table(columns=["metric", "threshold", "value"], data=[list(r) for r in curve])
        logged[f"{split}/pck_curve"] = table
        logged[f"{split}/pck_curve_plot"] = wandb.plot.line(
            table, "threshold", "value", stroke="metric", title=f"{split} PCK vs threshold"
        )
    if logged:
        run.log(logged)
    return sorted(logged)


def _metric_sort_key(name: str) -> tuple[str, float]:
    base, _, thr = name.partition("@")
    try:
        return base, float(thr)
    except ValueError:
        return base, 0.0


def _maybe(v: Any) -> float | None:
    return None if v is None else float(v)

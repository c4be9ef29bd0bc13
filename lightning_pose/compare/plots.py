"""PNG plots of a comparison (matplotlib, no display needed).

* ``accuracy_vs_gflops.png``: the first headline metric of each dataset against GFLOPs (one forward pass of one crop);
* ``per_joint.png``: per-joint values of the largest PCK/PCKh threshold, one bar group per joint;
* ``pck_curves.png``: mean PCK/PCKh against the threshold (fraction of the bbox/head size);
* ``learning_curves.png``: the first headline metric on the validation set against the epoch.

Every run (``by="run"``) or method (``by="method"``, runs averaged) is one series.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
from pathlib import Path

from lightning_pose.compare.runs import RunRecord
from lightning_pose.compare.table import headline_for, split_of

__all__ = ["write_plots"]

_THR = re.compile(r"^(?:val|test)/(PCKh?)@([0-9.]+)$")


def _label(r: RunRecord, by: str) -> str:
    return r.method if by == "method" else r.name


def _series(records: list[RunRecord], by: str) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = {}
    for r in records:
        out.setdefault(_label(r, by), []).append(r)
    return out


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_plots(records: list[RunRecord], out_dir: Path, by: str = "method") -> list[Path]:
    """Write the plots that have data; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    written: list[Path] = []
    datasets = sorted({r.dataset for r in records})

    # accuracy vs cost
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    any_point = False
    for ax, dataset in zip(axes[0], datasets):
        recs = [r for r in records if r.dataset == dataset]
        metric = headline_for(dataset, recs)[0]
        for label, members in _series(recs, by).items():
            pts = [(m.gflops, m.metrics.get(f"{split_of(m)}/{metric}")) for m in members]
            pts = [(x, y) for x, y in pts if x is not None and y is not None]
            if pts:
                any_point = True
                ax.scatter([statistics.fmean(p[0] for p in pts)], [statistics.fmean(p[1] for p in pts)], label=label)
        ax.set_xlabel("GFLOPs (one crop)")
        ax.set_ylabel(metric)
        ax.set_title(f"{dataset}: {metric} vs cost")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if any_point:
        written.append(_save(fig, out_dir / "accuracy_vs_gflops.png"))
    plt.close(fig)

    # per-joint bars (largest threshold present)
    with_joints = [r for r in records if r.per_joint]
    if with_joints:
        metric = max({m for r in with_joints for m in r.per_joint}, key=_threshold_key)
        series = {
            label: [m for m in members if metric in m.per_joint] for label, members in _series(with_joints, by).items()
        }
        series = {k: v for k, v in series.items() if v}
        joints: list[str] = []
        for members in series.values():
            for m in members:
                joints += [j for j in m.per_joint[metric] if j not in joints]
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(joints) * max(1, len(series))), 4))
        width = 0.8 / max(1, len(series))
        for i, (label, members) in enumerate(series.items()):
            ys = [
                statistics.fmean(m.per_joint[metric][j] for m in members if j in m.per_joint[metric])
                if any(j in m.per_joint[metric] for m in members)
                else 0.0
                for j in joints
            ]
            ax.bar([x + i * width for x in range(len(joints))], ys, width=width, label=label)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(joints))])
        ax.set_xticklabels(joints, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1)
        ax.set_title(f"{metric} per joint")
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / "per_joint.png"))
        plt.close(fig)

    # PCK curves
    fig, ax = plt.subplots(figsize=(5, 4))
    drawn = False
    for label, members in _series(records, by).items():
        curves: dict[str, dict[float, list[float]]] = {}
        for m in members:
            for key, value in m.metrics.items():
                match = _THR.match(key)
                if match:
                    curves.setdefault(match.group(1), {}).setdefault(float(match.group(2)), []).append(value)
        for metric, points in curves.items():
            if len(points) < 2:
                continue
            xs = sorted(points)
            ax.plot(xs, [statistics.fmean(points[x]) for x in xs], marker="o", label=f"{label} {metric}")
            drawn = True
    if drawn:
        ax.set_xlabel("threshold (fraction of the normaliser)")
        ax.set_ylabel("fraction of correct keypoints")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / "pck_curves.png"))
    plt.close(fig)

    # learning curves
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    drawn = False
    for ax, dataset in zip(axes[0], datasets):
        recs = [r for r in records if r.dataset == dataset and r.curve]
        if not recs:
            continue
        key = "val/" + headline_for(dataset, recs)[0]
        for r in recs:
            pts = [(row.get("epoch", i), row[key]) for i, row in enumerate(r.curve) if key in row]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=_label(r, "run"))
                drawn = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{dataset}: learning curves")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if drawn:
        written.append(_save(fig, out_dir / "learning_curves.png"))
    plt.close(fig)
    return written


def _threshold_key(metric: str) -> tuple[int, float]:
    base, _, thr = metric.partition("@")
    try:
        return (1 if base == "PCKh" else 0, float(thr))
    except ValueError:
        return (-1, 0.0)

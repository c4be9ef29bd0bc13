"""The comparison table: one row per run, or per method (mean and standard deviation over its runs, e.g. seeds).

Metrics are fractions in [0, 1] as logged (PCK, PCKh, AP); shown with 4 decimals. Cost columns: parameters in
millions, GFLOPs of one forward pass of one crop, measured inference images/s (machine-dependent), training time in
seconds. The headline metrics depend on the dataset (see :data:`HEADLINE`); each dataset gets its own markdown section.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lightning_pose.compare.runs import RunRecord

__all__ = ["HEADLINE", "Row", "build_rows", "markdown_table", "csv_table", "write_text_atomic", "split_of"]

#: headline metrics per dataset (without the split prefix), in column order
HEADLINE: dict[str, list[str]] = {
    "demo": ["PCK@0.2", "PCK@0.05", "AP"],
    "coco": ["AP", "AP50", "AP75", "AR"],
    "mpii": ["PCKh@0.5", "PCKh@0.1"],
    "aic": ["AIC_score", "AP"],
}
_DEFAULT_HEADLINE = ["AP", "PCKh@0.5", "AIC_score", "PCK@0.2"]


def split_of(record: RunRecord) -> str:
    """``test`` for test jobs (or when only test metrics exist), else ``val``."""
    if record.job_type == "test" or (record.metrics and all(k.startswith("test/") for k in record.metrics)):
        return "test"
    return "val"


def headline_for(dataset: str, records: list[RunRecord]) -> list[str]:
    names = HEADLINE.get(dataset)
    if names is None:
        present = {k.split("/", 1)[1] for r in records for k in r.metrics}
        names = [m for m in _DEFAULT_HEADLINE if m in present] or sorted(present)[:4]
    return names


@dataclass
class Row:
    """One table row: ``label`` (run name or method), identity columns, ``values[column] = (mean, std, n)``."""

    label: str
    dataset: str
    backbone: str
    input_size: str
    split: str
    runs: int
    values: dict[str, tuple[float | None, float | None]]


def _stat(values: list[float | None]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def _columns(dataset: str, records: list[RunRecord]) -> list[str]:
    return headline_for(dataset, records) + ["best", "params_M", "GFLOPs", "images_per_s", "fit_s"]


def _row_values(record: RunRecord, headline: list[str]) -> dict[str, float | None]:
    split = split_of(record)
    out: dict[str, float | None] = {m: record.metrics.get(f"{split}/{m}") for m in headline}
    primary = f"{split}/{headline[0]}" if headline else None
    out["best"] = record.best.get(primary) if primary else None
    out["params_M"] = record.params / 1e6 if record.params is not None else None
    out["GFLOPs"] = record.gflops
    out["images_per_s"] = record.images_per_s
    out["fit_s"] = record.fit_s
    return out


def build_rows(
    records: list[RunRecord], by: Literal["run", "method"] = "method"
) -> dict[str, tuple[list[str], list[Row]]]:
    """``{dataset: (columns, rows)}``; ``by="method"`` groups runs of the same method, backbone, input size and
    split (their seeds) into one row of means and standard deviations."""
    out: dict[str, tuple[list[str], list[Row]]] = {}
    for dataset in sorted({r.dataset for r in records}):
        recs = [r for r in records if r.dataset == dataset]
        columns = _columns(dataset, recs)
        headline = columns[: len(columns) - 5]
        groups: dict[tuple, list[RunRecord]] = {}
        for r in recs:
            key = (r.method, r.backbone, r.input_size, split_of(r)) if by == "method" else (r.name, r.run_id, r.source)
            groups.setdefault(key, []).append(r)
        rows = []
        for members in groups.values():
            per = [_row_values(m, headline) for m in members]
            first = members[0]
            rows.append(
                Row(
                    label=first.method if by == "method" else first.name,
                    dataset=dataset,
                    backbone=first.backbone,
                    input_size=first.input_size,
                    split=split_of(first),
                    runs=len(members),
                    values={c: _stat([p[c] for p in per]) for c in columns},
                )
            )
        primary = headline[0] if headline else None
        rows.sort(key=lambda row: -(row.values.get(primary, (None, None))[0] or -1.0) if primary else 0.0)
        out[dataset] = (columns, rows)
    return out


def _fmt(mean: float | None, std: float | None, column: str) -> str:
    if mean is None:
        return "-"
    digits = {"params_M": 2, "GFLOPs": 3, "images_per_s": 1, "fit_s": 1}.get(column, 4)
    text = f"{mean:.{digits}f}"
    if std is not None:
        text += f" ± {std:.{digits}f}"
    return text


def markdown_table(tables: dict[str, tuple[list[str], list[Row]]], by: str = "method") -> str:
    """Markdown: one section per dataset, one row per run/method (``mean ± std`` over the runs of a method)."""
    lines = [
        "# Method comparison",
        "",
        "Metrics are fractions in [0, 1] of the split shown (last evaluation; `best` = best validation epoch of "
        "the first metric). `params_M`: parameters in millions; `GFLOPs`: one forward pass of one crop; "
        "`images_per_s`: measured inference throughput (machine- and load-dependent); `fit_s`: training "
        "time in seconds.",
        "",
    ]
    for dataset, (columns, rows) in tables.items():
        lines += [f"## {dataset}", ""]
        head = [by, "backbone", "input", "split", "runs"] + columns
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] * len(head)) + "|")
        for row in rows:
            cells = [row.label, row.backbone or "-", row.input_size or "-", row.split, str(row.runs)]
            cells += [_fmt(*row.values.get(c, (None, None)), c) for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def csv_table(tables: dict[str, tuple[list[str], list[Row]]], by: str = "method") -> str:
    """CSV with one line per row of every dataset; metric columns are the union, ``<col>_std`` beside each."""
    metric_cols: list[str] = []
    for columns, _rows in tables.values():
        metric_cols += [c for c in columns if c not in metric_cols]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [by, "dataset", "backbone", "input_size", "split", "runs"] + [x for c in metric_cols for x in (c, f"{c}_std")]
    )
    for _dataset, (_columns, rows) in tables.items():
        for row in rows:
            cells: list[Any] = [row.label, row.dataset, row.backbone, row.input_size, row.split, row.runs]
            for c in metric_cols:
                mean, std = row.values.get(c, (None, None))
                cells += ["" if mean is None else repr(mean), "" if std is None else repr(std)]
            writer.writerow(cells)
    return buf.getvalue()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename (no half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

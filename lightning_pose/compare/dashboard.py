"""``lightning-pose dashboard --project ENTITY/PROJECT [--name NAME] [--dry-run FILE]``: a W&B comparison workspace.

Built with W&B's ``wandb-workspaces`` package (``pip install "lightning-human-pose[dashboard]"``): runs grouped by
``method``; one section per dataset with its headline metrics over the epochs and their best values (bars); an
accuracy-vs-cost section (best headline metric against GFLOPs and against measured images/s, per dataset); the
per-joint bar chart and the PCK-vs-threshold curve logged by each run; a parallel-coordinates panel of the usual sweep
parameters against the best metric; the validation images (crops, full images, worst cases).

``--dry-run FILE`` writes the workspace spec (the JSON W&B would store) without contacting W&B; otherwise the
workspace is saved to the project (needs an account) and its URL printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "build_workspace", "workspace_spec", "DATASET_METRICS", "SWEEP_PARAMETERS"]

#: headline metrics per dataset (validation keys as logged); the first one is the dataset's primary metric
DATASET_METRICS: dict[str, list[str]] = {
    "demo": ["val/PCK@0.2", "val/PCK@0.05", "val/AP"],
    "coco": ["val/AP", "val/AP50", "val/AR"],
    "mpii": ["val/PCKh@0.5", "val/PCKh@0.1"],
    "aic": ["val/AIC_score", "val/AP"],
}

#: config keys shown in the parallel-coordinates panel (root config keys written by the W&B logger)
SWEEP_PARAMETERS = ["lr", "batch_size", "sigma", "backbone", "gflops"]


def _modules() -> tuple[Any, Any]:
    import warnings

    try:
        with warnings.catch_warnings():  # pydantic-v1 style validators inside wandb-workspaces
            warnings.simplefilter("ignore", DeprecationWarning)
            import wandb_workspaces.reports.v2 as wr
            import wandb_workspaces.workspaces as ws
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise SystemExit(
            "lightning-pose dashboard needs wandb-workspaces: pip install 'lightning-human-pose[dashboard]'"
        ) from exc
    return ws, wr


def build_workspace(
    entity: str, project: str, name: str = "Method comparison", datasets: list[str] | None = None
) -> Any:
    """The ``wandb_workspaces`` Workspace object (not saved)."""
    ws, wr = _modules()
    datasets = list(datasets or DATASET_METRICS)
    unknown = [d for d in datasets if d not in DATASET_METRICS]
    if unknown:
        raise ValueError(f"--datasets: unknown dataset {unknown[0]!r} (known: {', '.join(DATASET_METRICS)})")
    sections = []
    for dataset in datasets:
        metrics = DATASET_METRICS[dataset]
        panels = [wr.LinePlot(title=f"{m} by epoch", x="epoch", y=[m]) for m in metrics]
        panels.append(wr.BarPlot(title=f"{dataset}: best {metrics[0]}", metrics=[f"best/{metrics[0]}"]))
        sections.append(ws.Section(name=f"{dataset}: headline metrics", panels=panels, is_open=True))
    cost = []
    for dataset in datasets:
        best = wr.SummaryMetric(f"best/{DATASET_METRICS[dataset][0]}")
        cost.append(
            wr.ScatterPlot(title=f"{dataset}: {DATASET_METRICS[dataset][0]} vs GFLOPs", x=wr.Config("gflops"), y=best)
        )
        cost.append(
            wr.ScatterPlot(
                title=f"{dataset}: {DATASET_METRICS[dataset][0]} vs images/s",
                x=wr.SummaryMetric("cost/images_per_s"),
                y=best,
            )
        )
    sections.append(ws.Section(name="Accuracy vs cost", panels=cost, is_open=True))
    per_joint = [
        wr.CustomChart(
            query={"summaryTable": {"tableKey": "val/per_joint_PCK@0.2_table"}},
            chart_name="wandb/bar/v0",
            chart_fields={"label": "joint", "value": "PCK@0.2"},
            chart_strings={"title": "PCK@0.2 per joint"},
        ),
        wr.CustomChart(
            query={"summaryTable": {"tableKey": "val/pck_curve_plot_table"}},
            chart_name="wandb/line/v0",
            chart_fields={"x": "threshold", "y": "value", "stroke": "metric"},
            chart_strings={"title": "PCK vs threshold"},
        ),
    ]
    sections.append(ws.Section(name="Per joint", panels=per_joint, is_open=True))
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p)) for p in SWEEP_PARAMETERS]
    columns += [
        wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(f"best/{DATASET_METRICS[d][0]}")) for d in datasets
    ]
    sections.append(
        ws.Section(
            name="Sweeps",
            panels=[wr.ParallelCoordinatesPlot(title="sweep parameters vs best metric", columns=columns)],
            is_open=True,
        )
    )
    sections.append(
        ws.Section(
            name="Validation images",
            panels=[
                wr.MediaBrowser(title="ground truth | prediction", media_keys=["val/examples"], num_columns=4),
                wr.MediaBrowser(title="full images", media_keys=["val/full_images"], num_columns=4),
                wr.MediaBrowser(title="worst cases", media_keys=["val/worst"], num_columns=4),
            ],
            is_open=False,
        )
    )
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=sections,
        runset_settings=ws.RunsetSettings(groupby=[ws.Config("method")]),
        auto_generate_panels=False,
    )


def workspace_spec(workspace: Any) -> dict[str, Any]:
    """The JSON-ready spec of a workspace, as W&B stores it (built offline)."""
    model = workspace._to_model()
    return json.loads(json.dumps(model.model_dump(by_alias=True, exclude_none=True), default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lightning-pose dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="ENTITY/PROJECT of the runs")
    parser.add_argument("--name", default="Method comparison", help="workspace (view) name")
    parser.add_argument(
        "--datasets",
        default=",".join(DATASET_METRICS),
        help=f"comma-separated datasets to give a section (default: {','.join(DATASET_METRICS)})",
    )
    parser.add_argument("--dry-run", metavar="FILE", help="write the workspace spec as JSON to FILE; no W&B contact")
    args = parser.parse_args(argv)
    entity, sep, project = args.project.partition("/")
    if not sep or not entity or not project or "/" in project:
        print(f"lightning-pose dashboard: error: --project {args.project!r}: expected ENTITY/PROJECT", file=sys.stderr)
        return 2
    try:
        workspace = build_workspace(entity, project, args.name, [d for d in args.datasets.split(",") if d])
    except ValueError as exc:
        print(f"lightning-pose dashboard: error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        from lightning_pose.compare.table import write_text_atomic

        out = Path(args.dry_run)
        write_text_atomic(out, json.dumps(workspace_spec(workspace), indent=1, sort_keys=True) + "\n")
        print(f"workspace spec written to {out} (nothing sent to W&B)")
        return 0
    from lightning_pose.wandb_mode import wandb_credentials_configured

    if not wandb_credentials_configured():
        print(
            "lightning-pose dashboard: error: no W&B account configured (WANDB_API_KEY or `wandb login`); "
            "use --dry-run FILE to write the spec only",
            file=sys.stderr,
        )
        return 2
    workspace.save()
    print(f"workspace saved: {workspace.url}")
    return 0

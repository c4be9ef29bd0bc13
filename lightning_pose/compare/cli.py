"""``lightning-pose compare RUN ... [--project ENTITY/PROJECT] --out DIR [--by run|method]``.

Reads offline W&B run folders (or a save dir / ``wandb/`` folder holding many), ``--results`` JSON files and, with
``--project``, the runs of a W&B project through the public API (needs an account); writes ``comparison.md``,
``comparison.csv`` and PNG plots into ``--out``. Works fully offline; does not import torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_pose.compare.runs import CompareInputError, load_runs

__all__ = ["main", "compare"]


def compare(
    paths: list[str], out: str | Path, by: str = "method", project: str | None = None, plots: bool = True
) -> dict[str, Path]:
    """Write the comparison of the runs in ``paths`` (and ``project``) into ``out``; returns the written files."""
    from lightning_pose.compare.table import build_rows, csv_table, markdown_table, write_text_atomic

    out_dir = Path(out).expanduser()
    records = load_runs(paths, project=project)
    if not records:
        raise CompareInputError("no runs to compare: give run folders, results JSON files or --project")
    inputs = {Path(r.source).resolve() for r in records if Path(r.source).exists()}
    targets = {"markdown": out_dir / "comparison.md", "csv": out_dir / "comparison.csv"}
    for path in targets.values():
        if path.resolve() in inputs:
            raise CompareInputError(f"{path}: --out would overwrite an input; choose another folder")
    tables = build_rows(records, by=by)  # type: ignore[arg-type]
    write_text_atomic(targets["markdown"], markdown_table(tables, by=by))
    write_text_atomic(targets["csv"], csv_table(tables, by=by))
    written = dict(targets)
    if plots:
        from lightning_pose.compare.plots import write_plots

        for p in write_plots(records, out_dir, by=by):
            written[p.stem] = p
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lightning-pose compare", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "runs",
        nargs="*",
        help="offline run folders, save dirs holding wandb/, run-*.wandb files, or --results JSON files",
    )
    parser.add_argument("--project", help="also read the runs of this W&B project (ENTITY/PROJECT; needs an account)")
    parser.add_argument("--out", required=True, help="output folder for comparison.md/.csv and the PNG plots")
    parser.add_argument(
        "--by",
        choices=("method", "run"),
        default="method",
        help="one row per method (mean ± std over its runs, e.g. seeds) or per run",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    args = parser.parse_args(argv)
    if not args.runs and not args.project:
        parser.error("give at least one run folder / results file, or --project")
    try:
        written = compare(args.runs, args.out, by=args.by, project=args.project, plots=not args.no_plots)
    except CompareInputError as exc:
        print(f"lightning-pose compare: error: {exc}", file=sys.stderr)
        return 2
    print(Path(written["markdown"]).read_text())
    print("written: " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""``lightning-pose data check {coco,mpii,aic,aic-raw} --ann FILE --images DIR [--json OUT] [--headboxes FILE]``.

Reads a dataset exactly the way training does (the same reader), but with ``check_images=True`` (every image
header is opened) and ``skip_invalid=True`` (to collect every problem instead of stopping at the first), then
prints a summary and every problem with its file and record, and optionally writes a JSON report.

``--json`` must not be one of the inputs (``--ann``, ``--images``, ``--headboxes``); an existing file is replaced
only with ``--overwrite``; the output folder is checked before the dataset is read, and the report is written
atomically (temporary file + rename).

Exit status: 0 clean, 1 problems found, 2 usage error (including a refused ``--json`` path) or an annotation file
that cannot be read at all. Torch-free.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence, TextIO

from lightning_pose.data.readers import DATASET_FORMATS, ReadResult, read_dataset
from lightning_pose.data.records import DataProblem, DatasetError
from lightning_pose.errors import OutputPathError
from lightning_pose.outputs import atomic_write_json, check_output_file

__all__ = ["main", "build_parser", "summarise", "run_check"]

EXIT_CLEAN = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lightning-pose data check",
        description="Validate a pose dataset (annotations and image files) the way training reads it.",
    )
    p.add_argument("format", choices=sorted(DATASET_FORMATS), help="annotation format")
    p.add_argument("--ann", required=True, type=Path, help="annotation file (JSON)")
    p.add_argument("--images", required=True, type=Path, help="image folder the annotation's file names are in")
    p.add_argument("--json", dest="json_out", type=Path, default=None, help="write the report as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--headboxes",
        type=Path,
        default=None,
        help="mpii only: gt_valid.mat-layout file with the head boxes (columns = JSON rows)",
    )
    p.add_argument(
        "--keypoint-set",
        default=None,
        help="coco only: keypoint set name of the file (default coco; e.g. aic for a COCO-style AIC file)",
    )
    return p


def summarise(result: ReadResult) -> dict[str, Any]:
    """Counts of the records a training run would use (after skipping invalid ones).

    Returns:
        ``images`` (image records, including images without persons), ``persons`` (non-crowd persons),
        ``crowd`` (crowd regions), ``keypoints`` (labelled, v > 0, of non-crowd persons),
        ``keypoints_per_joint`` (joint name -> labelled count), ``visible_keypoints`` (v == 2),
        ``persons_with_keypoints`` and ``head_boxes`` (persons with a head box).
    """
    names = result.keypoint_set.keypoints
    per_joint = {n: 0 for n in names}
    persons = crowd = labelled = visible = with_kps = heads = 0
    for rec in result.records:
        for p in rec.persons:
            if p.iscrowd:
                crowd += 1
                continue
            persons += 1
            v = p.keypoints[:, 2]
            n = int((v > 0).sum())
            labelled += n
            visible += int((v == 2).sum())
            with_kps += n > 0
            heads += p.head_box is not None
            for j in (v > 0).nonzero()[0]:
                per_joint[names[int(j)]] += 1
    return {
        "images": len(result.records),
        "persons": persons,
        "crowd": crowd,
        "persons_with_keypoints": with_kps,
        "keypoints": labelled,
        "visible_keypoints": visible,
        "keypoints_per_joint": per_joint,
        "head_boxes": heads,
    }


def run_check(
    fmt: str, ann: Path, images: Path, *, headboxes: Path | None = None, keypoint_set: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Read the dataset for checking and build the report.

    Returns:
        ``(report, warnings)``: the report dict (summary counts, ``problems`` as dicts with ``file``,
        ``record``, ``problem``, ``kind``, ``notes``) and the reader's warning messages other than the
        skip summary.

    Raises:
        DatasetError: the annotation (or head-box) file cannot be read at all.
    """
    kw: dict[str, Any] = {"check_images": True, "skip_invalid": True}
    if headboxes is not None:
        kw["headbox_file"] = headboxes
    if keypoint_set is not None:
        kw["keypoint_set"] = keypoint_set
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = read_dataset(fmt, ann, images, **kw)
    messages = [str(w.message) for w in caught if "lightning-pose data check" not in str(w.message)]
    problems: list[DataProblem] = list(result.problems) + list(result.advisories)
    report: dict[str, Any] = {
        "format": fmt,
        "annotation_file": str(ann),
        "image_dir": str(images),
        "keypoint_set": result.keypoint_set.name,
        **summarise(result),
        "num_problems": len(problems),
        "problems": [p.to_dict() for p in problems],
        "notes": list(result.notes) + messages,
    }
    return report, messages


def _print_report(report: dict[str, Any], out: TextIO) -> None:
    w = out.write
    w(f"dataset check: {report['format']} annotations {report['annotation_file']}, images {report['image_dir']}\n")
    w(f"  images: {report['images']}\n")
    w(
        f"  persons: {report['persons']} ({report['persons_with_keypoints']} with keypoints; "
        f"{report['crowd']} crowd regions not counted)\n"
    )
    w(f"  labelled keypoints: {report['keypoints']} ({report['visible_keypoints']} visible)\n")
    if report["head_boxes"]:
        w(f"  head boxes: {report['head_boxes']}\n")
    w("  per joint: " + ", ".join(f"{k} {v}" for k, v in report["keypoints_per_joint"].items()) + "\n")
    for note in report["notes"]:
        w(f"  note: {note}\n")
    problems = report["problems"]
    if not problems:
        w("OK: no problems found\n")
        return
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
    w(f"PROBLEMS: {len(problems)} (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")\n")
    for p in problems:
        w(f"  [{p['kind']}] {p['file']}: {p['record']}: {p['problem']}\n")
    w("Records with problems are skipped when training with skip_invalid: true; the counts above exclude them.\n")


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of ``lightning-pose data check``; ``argv`` starts after ``check`` (e.g. ``["coco", "--ann", ...]``).

    Returns:
        0 clean, 1 problems found, 2 usage error or unreadable annotation file.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:  # argparse: usage error (2) or --help (0)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    if args.headboxes is not None and args.format != "mpii":
        err.write("lightning-pose data check: --headboxes is only for the mpii format\n")
        return EXIT_USAGE
    if args.keypoint_set is not None and args.format != "coco":
        err.write("lightning-pose data check: --keypoint-set is only for the coco format\n")
        return EXIT_USAGE
    if args.json_out is not None:  # before reading the dataset (which can take long on a full download)
        try:
            check_output_file(
                args.json_out,
                inputs=[("--ann", args.ann), ("--images", args.images), ("--headboxes", args.headboxes)],
                overwrite=args.overwrite,
                option="--json",
            )
        except OutputPathError as e:
            err.write(f"lightning-pose data check: {e}\n")
            return EXIT_USAGE
    try:
        report, _ = run_check(
            args.format, args.ann, args.images, headboxes=args.headboxes, keypoint_set=args.keypoint_set
        )
    except DatasetError as e:
        lines = [str(p) for p in e.problems] or [str(e)]
        err.write("lightning-pose data check: cannot read the dataset:\n" + "\n".join(lines) + "\n")
        return EXIT_USAGE
    except ValueError as e:  # e.g. an unknown --keypoint-set
        err.write(f"lightning-pose data check: {e}\n")
        return EXIT_USAGE
    _print_report(report, out)
    if args.json_out is not None:
        try:
            atomic_write_json(args.json_out, report)
        except (OSError, OutputPathError) as e:
            err.write(f"lightning-pose data check: cannot write {args.json_out}: {e}\n")
            return EXIT_USAGE
        out.write(f"report written to {args.json_out}\n")
    return EXIT_PROBLEMS if report["problems"] else EXIT_CLEAN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

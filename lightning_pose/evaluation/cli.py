"""``lightning-pose evaluate {coco,mpii,aic}``: score a prediction file against a GT file. No torch import.

Examples::

    lightning-pose evaluate coco --gt person_keypoints_val2017.json --pred results.json --json scores.json
    lightning-pose evaluate mpii --gt gt_valid.mat --pred pred.mat
    lightning-pose evaluate mpii --gt valid.json --headboxes mpii_gt_val.mat --pred pred.h5 --zero-based-preds
    lightning-pose evaluate aic --gt keypoint_validation_annotations.json --pred preds.json
    lightning-pose evaluate aic --gt aic_val_coco_style.json --pred coco_results.json --protocol coco

Output: a table on stdout and, with ``--json OUT``, a flat json:
COCO ``AP AP50 AP75 APm APl AR AR50 AR75 ARm ARl`` (fractions); MPII ``Head Shoulder Elbow Wrist Hip Knee Ankle
UBody Mean Mean@0.1 AUC`` (percent); AIC official ``score`` (fraction), ``--protocol coco`` the 10 COCO keys.
An undefined score (NaN, e.g. a part without annotated joints) is written as ``null`` (strict JSON) and a note
says so. ``--json`` must not be one of the inputs and an existing file is replaced only with ``--overwrite``;
the file is written atomically, and its folder is checked before the evaluation runs.

Bad input prints one line naming the file, the record and the problem to stderr (``error: ...``) and returns exit
code 2; numbers that come out but may mislead (no predictions, predictions of another category, duplicates, the
AIC predictions for images outside the GT that the official protocol ignores) get one ``warning:``/``note:`` line
each on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser", "COCO_KEYS"]

COCO_KEYS: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


class _UsageError(ValueError):
    """A problem with the command-line input (reported with exit code 2)."""


def build_parser(prog: str = "lightning-pose evaluate") -> argparse.ArgumentParser:
    """The argument parser (exposed so the top-level ``lightning-pose`` CLI can embed it)."""
    parser = argparse.ArgumentParser(prog=prog, description="Evaluate keypoint predictions against ground truth.")
    sub = parser.add_subparsers(dest="dataset", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--gt", required=True, type=Path, help="ground-truth file")
        p.add_argument("--pred", required=True, type=Path, help="prediction file")
        p.add_argument("--json", type=Path, default=None, help="write the scores as a flat json here")
        p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")

    p = sub.add_parser("coco", help="COCO keypoint AP (pycocotools semantics)")
    common(p)
    p.add_argument(
        "--sigmas",
        nargs="+",
        default=None,
        help="OKS sigmas: K floats (space or comma separated) or a keypoint set name (coco, aic)",
    )
    p.add_argument(
        "--area-mode",
        choices=("segment", "bbox053"),
        default="segment",
        help="OKS scale: the GT 'area' field (COCO) or 0.53 * bbox w*h (xtcocotools use_area=False)",
    )

    p = sub.add_parser("mpii", help="MPII PCKh (official MATLAB semantics)")
    common(p)
    p.add_argument(
        "--headboxes",
        type=Path,
        default=None,
        help="for json GT: a .mat with headboxes_src (2x2xN) in the same person order",
    )
    p.add_argument(
        "--zero-based-preds",
        action="store_true",
        help="the prediction file holds 0-based pixels (1 is added to compare with the 1-based GT)",
    )
    p.add_argument(
        "--hrnet-compat",
        action="store_true",
        help="report HRNet's variants (Head = head top only, Mean@0.1 read at 0.11)",
    )
    p.add_argument(
        "--preds-layout",
        choices=("auto", "Nx16x2", "2x16xN"),
        default="auto",
        help="order of a .mat/.h5 'preds' array; auto decides with the GT's person count and refuses "
        "what stays ambiguous ((2, 16, 2) against a 2-person GT)",
    )

    p = sub.add_parser("aic", help="AI Challenger keypoint score")
    common(p)
    p.add_argument(
        "--protocol",
        choices=("official", "coco"),
        default="official",
        help="official AIC score (release format) or COCO-style AP with AIC sigmas, area 0.53*w*h",
    )
    return parser


def _parse_sigmas(tokens: Sequence[str] | None, num_keypoints: int, gt_path: Path) -> list[float] | None:
    if tokens is None:
        return None
    parts = [t for tok in tokens for t in tok.replace(",", " ").split()]
    if len(parts) == 1 and not _is_float(parts[0]):
        from lightning_pose.skeletons import get_keypoint_set

        try:
            kset = get_keypoint_set(parts[0])
            sig = list(kset.sigmas_array())
        except (ValueError, KeyError) as e:
            raise _UsageError(f"--sigmas: {e}") from e
    else:
        if not all(_is_float(x) for x in parts):
            raise _UsageError(f"--sigmas: expected numbers or a keypoint set name, got {' '.join(parts)!r}")
        sig = [float(x) for x in parts]
    if len(sig) != num_keypoints:
        raise _UsageError(f"--sigmas: {len(sig)} sigmas given but the GT has {num_keypoints} keypoints ({gt_path})")
    return sig


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _num_keypoints(gt: dict, gt_path: Path) -> int:
    from lightning_pose.evaluation.formats import category_num_keypoints

    k = category_num_keypoints(gt)
    if k is not None:
        return k
    raise _UsageError(f"{gt_path}: the GT categories list no keypoint names")


def _coco_stats(stats: dict) -> dict[str, float]:
    return {k: float(stats[k]) for k in COCO_KEYS}


def _evaluate_coco(args: argparse.Namespace) -> dict[str, float]:
    from lightning_pose.evaluation.coco import evaluate_coco_keypoints
    from lightning_pose.evaluation.formats import load_coco_gt, load_coco_results
    from lightning_pose.evaluation.input_checks import check_coco_pair

    gt = load_coco_gt(args.gt)
    results = load_coco_results(args.pred, gt=gt)
    sigmas = _parse_sigmas(args.sigmas, _num_keypoints(gt, args.gt), args.gt)
    args.messages += check_coco_pair(gt, results, args.gt, args.pred)
    stats = evaluate_coco_keypoints(gt, results, sigmas=sigmas, use_area=args.area_mode == "segment")
    return _coco_stats(stats)


def _evaluate_mpii(args: argparse.Namespace) -> dict[str, float]:
    import warnings

    from lightning_pose.evaluation.formats import load_mpii_gt, load_mpii_preds
    from lightning_pose.evaluation.pckh import mpii_pckh

    if Path(args.gt).suffix.lower() != ".mat" and args.headboxes is None:
        raise _UsageError(
            f"{args.gt}: MPII json GT has no head boxes; pass --headboxes FILE.mat "
            "(e.g. mpii_gt_val.mat with headboxes_src in the same person order)"
        )
    gt = load_mpii_gt(args.gt, headboxes=args.headboxes)
    preds = load_mpii_preds(
        args.pred, num_persons=gt.num_persons, zero_based=args.zero_based_preds, layout=args.preds_layout
    )
    res = mpii_pckh(preds, gt.joints, gt.visible, gt.head_sizes, hrnet_compat=args.hrnet_compat)
    if res.excluded_no_headbox:
        warnings.warn(f"{args.gt}: {res.excluded_no_headbox} person(s) without a head box were excluded", stacklevel=2)
    return dict(res.table)


def _evaluate_aic(args: argparse.Namespace) -> dict[str, float]:
    from lightning_pose.evaluation import formats as fm

    raw_gt = fm.load_json(args.gt)
    raw_pred = fm.load_json(args.pred)
    gt_is_release = isinstance(raw_gt, list)
    pred_is_release = (
        isinstance(raw_pred, list)
        and bool(raw_pred)
        and isinstance(raw_pred[0], dict)
        and "keypoint_annotations" in raw_pred[0]
    )
    if gt_is_release:
        gt_release = fm.load_aic_release(args.gt, kind="gt")
        gt_coco = fm.aic_release_to_coco(gt_release)
    else:
        gt_coco = fm.load_coco_gt(args.gt, num_keypoints=fm.AIC_NUM_KEYPOINTS)
        gt_release = None
    names = fm.coco_image_names(gt_coco)

    if args.protocol == "official":
        from lightning_pose.evaluation.aic import aic_official_score, coco_style_aic_to_release
        from lightning_pose.evaluation.input_checks import check_release_preds

        if gt_release is None:
            gt_release = coco_style_aic_to_release(gt_coco)
        # the official evaluator ignores predictions for images outside the GT: so do we, and say how many
        if pred_is_release or raw_pred == []:
            preds = fm.load_aic_release(args.pred, kind="pred")
            preds, ignored = fm.split_known_images(preds, set(names.values()))
        else:
            results = fm.load_coco_results(args.pred, num_keypoints=fm.AIC_NUM_KEYPOINTS)
            results, ignored = fm.split_known_images(results, set(names))
            preds = fm.coco_results_to_aic_release(results, gt_coco)
        args.messages += check_release_preds(preds, ignored, args.pred)
        return {"score": float(aic_official_score(gt_release, preds))}

    from lightning_pose.evaluation.coco import evaluate_coco_keypoints
    from lightning_pose.skeletons import AIC

    if pred_is_release:
        preds = fm.load_aic_release(args.pred, kind="pred", known_image_ids=set(names.values()))
        try:
            results = fm.aic_release_preds_to_coco(preds, gt_coco)
        except ValueError as e:
            raise _UsageError(f"{args.pred}: {e}") from e
    else:
        results = fm.load_coco_results(args.pred, gt=gt_coco, num_keypoints=fm.AIC_NUM_KEYPOINTS)
    from lightning_pose.evaluation.input_checks import check_coco_pair

    args.messages += check_coco_pair(gt_coco, results, args.gt, args.pred)
    stats = evaluate_coco_keypoints(gt_coco, results, sigmas=list(AIC.sigmas_array()), use_area=False)
    return _coco_stats(stats)


def format_table(title: str, scores: dict[str, float | None]) -> str:
    """A two-column text table of the scores (``None``/NaN shown as ``n/a``)."""
    width = max(len(k) for k in scores) if scores else 4
    lines = [title, "-" * (width + 12)]
    for k, v in scores.items():
        if v is None or not math.isfinite(v):
            lines.append(f"{k:<{width}}  {'n/a':>9}")
        else:
            lines.append(f"{k:<{width}}  {v:>9.4f}" if abs(v) < 10 else f"{k:<{width}}  {v:>9.2f}")
    return "\n".join(lines)


def _one_line(e: Exception) -> str:
    """The error as one line (``file: record: problem``), more problems listed on the following lines."""
    from lightning_pose.errors import DatasetError

    if isinstance(e, DatasetError) and e.problems:
        first, rest = str(e.problems[0]), [str(p) for p in e.problems[1:21]]
        if len(e.problems) == 1:
            return first
        more = f"\n  ... and {len(e.problems) - 21} more" if len(e.problems) > 21 else ""
        return f"{first} (and {len(e.problems) - 1} more problem(s):)\n  " + "\n  ".join(rest) + more
    return " ".join(str(e).split("\n"))


def _inputs(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    return [("--gt", args.gt), ("--pred", args.pred), ("--headboxes", getattr(args, "headboxes", None))]


def _strict_scores(scores: dict[str, float], json_path: Path) -> tuple[dict[str, float | None], list[str]]:
    """NaN/inf -> None (JSON null), with one note per undefined score."""
    out: dict[str, float | None] = {}
    notes = []
    for k, v in scores.items():
        if v is None or not math.isfinite(v):
            out[k] = None
            notes.append(k)
        else:
            out[k] = v
    messages = []
    if notes:
        messages.append(
            f"note: {', '.join(notes)} undefined (NaN: nothing to score, e.g. no annotated joint of that "
            f"part), written as null in {json_path}"
        )
    return out, messages


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-pose evaluate``; returns the exit code (0 ok, 2 bad input)."""
    import warnings

    from lightning_pose.errors import DatasetError, PoseUserError
    from lightning_pose.outputs import atomic_write_json, check_output_file

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage message
        return int(e.code) if isinstance(e.code, int) else 2
    args.messages = []
    runners = {"coco": _evaluate_coco, "mpii": _evaluate_mpii, "aic": _evaluate_aic}
    try:
        if args.json is not None:  # before the evaluation: never an input, never a user's file unasked, writable
            check_output_file(args.json, inputs=_inputs(args), overwrite=args.overwrite, option="--json")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores = runners[args.dataset](args)
    except (DatasetError, _UsageError, PoseUserError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError, IndexError, OSError, RecursionError) as e:
        print(f"error: evaluating {args.pred} against {args.gt}: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 2
    messages = list(args.messages) + [f"warning: {' '.join(str(w.message).split())}" for w in caught]
    unit = {"coco": "(fractions)", "mpii": "PCKh (percent)", "aic": "(fractions)"}[args.dataset]
    print(format_table(f"{args.dataset.upper()} {unit}: {args.pred}", scores))
    if args.json is not None:
        strict, notes = _strict_scores(scores, args.json)
        messages += notes
        try:
            atomic_write_json(args.json, strict)
        except (OSError, PoseUserError) as e:
            for m in messages:
                print(m, file=sys.stderr)
            print(f"error: cannot write {args.json}: {e}", file=sys.stderr)
            return 2
    for m in messages:
        print(m, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

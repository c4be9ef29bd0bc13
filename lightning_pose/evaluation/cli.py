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
Bad input prints a message naming the file and problem to stderr and returns exit code 2.
"""

from __future__ import annotations

import argparse
import json
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

    p = sub.add_parser("coco", help="COCO keypoint AP (pycocotools semantics)")
    common(p)
    p.add_argument("--sigmas", nargs="+", default=None,
                   help="OKS sigmas: K floats (space or comma separated) or a keypoint set name (coco, aic)")
    p.add_argument("--area-mode", choices=("segment", "bbox053"), default="segment",
                   help="OKS scale: the GT 'area' field (COCO) or 0.53 * bbox w*h (xtcocotools use_area=False)")

    p = sub.add_parser("mpii", help="MPII PCKh (official MATLAB semantics)")
    common(p)
    p.add_argument("--headboxes", type=Path, default=None,
                   help="for json GT: a .mat with headboxes_src (2x2xN) in the same person order")
    p.add_argument("--zero-based-preds", action="store_true",
                   help="the prediction file holds 0-based pixels (1 is added to compare with the 1-based GT)")
    p.add_argument("--hrnet-compat", action="store_true",
                   help="report HRNet's variants (Head = head top only, Mean@0.1 read at 0.11)")

    p = sub.add_parser("aic", help="AI Challenger keypoint score")
    common(p)
    p.add_argument("--protocol", choices=("official", "coco"), default="official",
                   help="official AIC score (release format) or COCO-style AP with AIC sigmas, area 0.53*w*h")
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
    for cat in gt["categories"]:
        if cat.get("keypoints"):
            return len(cat["keypoints"])
    raise _UsageError(f"{gt_path}: the GT categories list no keypoint names")


def _coco_stats(stats: dict) -> dict[str, float]:
    return {k: float(stats[k]) for k in COCO_KEYS}


def _evaluate_coco(args: argparse.Namespace) -> dict[str, float]:
    from lightning_pose.evaluation.coco import evaluate_coco_keypoints
    from lightning_pose.evaluation.formats import load_coco_gt, load_coco_results

    gt = load_coco_gt(args.gt)
    results = load_coco_results(args.pred, gt=gt)
    sigmas = _parse_sigmas(args.sigmas, _num_keypoints(gt, args.gt), args.gt)
    stats = evaluate_coco_keypoints(gt, results, sigmas=sigmas, use_area=args.area_mode == "segment")
    return _coco_stats(stats)


def _evaluate_mpii(args: argparse.Namespace) -> dict[str, float]:
    import warnings

    from lightning_pose.evaluation.formats import load_mpii_gt, load_mpii_preds
    from lightning_pose.evaluation.pckh import mpii_pckh

    if Path(args.gt).suffix.lower() != ".mat" and args.headboxes is None:
        raise _UsageError(f"{args.gt}: MPII json GT has no head boxes; pass --headboxes FILE.mat "
                          "(e.g. mpii_gt_val.mat with headboxes_src in the same person order)")
    gt = load_mpii_gt(args.gt, headboxes=args.headboxes)
    preds = load_mpii_preds(args.pred, num_persons=gt.num_persons, zero_based=args.zero_based_preds)
    res = mpii_pckh(preds, gt.joints, gt.visible, gt.head_sizes, hrnet_compat=args.hrnet_compat)
    if res.excluded_no_headbox:
        warnings.warn(f"{args.gt}: {res.excluded_no_headbox} person(s) without a head box were excluded",
                      stacklevel=2)
    return dict(res.table)


def _evaluate_aic(args: argparse.Namespace) -> dict[str, float]:
    from lightning_pose.evaluation import formats as fm

    raw_gt = fm.load_json(args.gt)
    raw_pred = fm.load_json(args.pred)
    gt_is_release = isinstance(raw_gt, list)
    pred_is_release = isinstance(raw_pred, list) and bool(raw_pred) and isinstance(raw_pred[0], dict) \
        and "keypoint_annotations" in raw_pred[0]
    if gt_is_release:
        gt_release = fm.load_aic_release(args.gt, kind="gt")
        gt_coco = fm.aic_release_to_coco(gt_release)
    else:
        gt_coco = fm.load_coco_gt(args.gt, num_keypoints=fm.AIC_NUM_KEYPOINTS)
        gt_release = None
    names = fm.coco_image_names(gt_coco)

    if args.protocol == "official":
        from lightning_pose.evaluation.aic import aic_official_score, coco_style_aic_to_release

        if gt_release is None:
            gt_release = coco_style_aic_to_release(gt_coco)
        if pred_is_release or raw_pred == []:
            preds = fm.load_aic_release(args.pred, kind="pred", known_image_ids=set(names.values()))
        else:
            results = fm.load_coco_results(args.pred, gt=gt_coco, num_keypoints=fm.AIC_NUM_KEYPOINTS)
            preds = fm.coco_results_to_aic_release(results, gt_coco)
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
    stats = evaluate_coco_keypoints(gt_coco, results, sigmas=list(AIC.sigmas_array()), use_area=False)
    return _coco_stats(stats)


def format_table(title: str, scores: dict[str, float]) -> str:
    """A two-column text table of the scores."""
    width = max(len(k) for k in scores) if scores else 4
    lines = [title, "-" * (width + 12)]
    for k, v in scores.items():
        lines.append(f"{k:<{width}}  {v:>9.4f}" if abs(v) < 10 else f"{k:<{width}}  {v:>9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-pose evaluate``; returns the exit code (0 ok, 2 bad input)."""
    from lightning_pose.data.records import DatasetError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage message
        return int(e.code) if isinstance(e.code, int) else 2
    runners = {"coco": _evaluate_coco, "mpii": _evaluate_mpii, "aic": _evaluate_aic}
    try:
        scores = runners[args.dataset](args)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except _UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError) as e:
        print(f"error: evaluating {args.pred} against {args.gt}: {e}", file=sys.stderr)
        return 2
    unit = {"coco": "(fractions)", "mpii": "PCKh (percent)", "aic": "(fractions)"}[args.dataset]
    print(format_table(f"{args.dataset.upper()} {unit}: {args.pred}", scores))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            print(f"error: cannot write {args.json}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

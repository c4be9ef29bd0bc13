"""Checks of a (GT, predictions) pair that the loaders cannot make alone: whether the number that would come out
means anything. Torch-free.

Each function returns warnings (one line each, naming the file) for numbers that are computed but may mislead, and
raises :class:`~lightning_pose.errors.DatasetError` (one line, naming the file and the record) where the
number would be meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from lightning_pose.errors import DataProblem, DatasetError

__all__ = ["check_coco_pair", "check_release_preds"]


def _refuse(path: Path | str, record: str, problem: str, kind: str = "bad_value") -> DatasetError:
    return DatasetError(DataProblem(str(path), record, problem, kind), hint=False)


def _evaluated_gt_count(gt: dict) -> int:
    """GT persons a COCO evaluation scores against: not crowd and with labelled keypoints (pycocotools' ignore
    rule ``iscrowd or num_keypoints == 0``)."""
    return sum(1 for a in gt["annotations"] if not a.get("iscrowd", 0) and a.get("num_keypoints", 1) > 0)


def check_coco_pair(gt: dict, results: Sequence[dict], gt_path: Path | str, pred_path: Path | str) -> list[str]:
    """Checks of COCO keypoint results against a loaded COCO GT (both already validated by the loaders).

    Refused (``DatasetError``): a GT with no person to score (all crowd or unlabelled: every AP would be -1), and
    results that all have a ``category_id`` the GT does not have (none would be evaluated).

    Returns:
        warnings: no predictions at all (AP 0); some predictions of a category the GT lacks (ignored, as in
        pycocotools); duplicated predictions (same image, category and keypoints: the copies count as false
        positives).
    """
    messages: list[str] = []
    n_gt = _evaluated_gt_count(gt)
    if n_gt == 0:
        n = len(gt["annotations"])
        raise _refuse(
            gt_path,
            "annotations",
            f"no non-crowd person with labelled keypoints (all {n} are crowd "
            "regions or have num_keypoints 0): every AP/AR would be undefined (-1)",
            "no_ground_truth",
        )
    if not results:
        messages.append(f"warning: {pred_path}: no predictions: every GT person counts as missed (AP 0)")
        return messages
    gt_cats = sorted({c["id"] for c in gt["categories"] if isinstance(c, dict) and "id" in c})
    foreign = [i for i, r in enumerate(results) if r.get("category_id", 1) not in gt_cats]
    if len(foreign) == len(results):
        r = results[0]
        raise _refuse(
            pred_path,
            f"result 0 (image {r['image_id']})",
            f"category_id {r.get('category_id')} is not a GT category (GT ids {gt_cats}); none of the "
            f"{len(results)} predictions would be evaluated",
        )
    if foreign:
        ids = sorted({results[i].get("category_id") for i in foreign})
        messages.append(
            f"warning: {pred_path}: {len(foreign)} prediction(s) with category_id "
            f"{', '.join(str(c) for c in ids)} (not a GT category, GT ids {gt_cats}) are ignored"
        )
    seen: set = set()
    duplicates = 0
    for r in results:
        key = (r["image_id"], r.get("category_id", 1), tuple(float(v) for v in r["keypoints"]))
        if key in seen:
            duplicates += 1
        seen.add(key)
    if duplicates:
        messages.append(
            f"warning: {pred_path}: {duplicates} duplicated prediction(s) (same image_id, category_id and "
            "keypoints as an earlier one): each copy counts as a separate detection (false positive)"
        )
    return messages


def check_release_preds(preds: Sequence[dict[str, Any]], ignored: Sequence[Any], pred_path: Path | str) -> list[str]:
    """Checks of AI Challenger release predictions after the images outside the GT were set aside.

    Refused: predictions that exist but are all for images outside the GT (a wrong file: nothing to score).

    Returns:
        notes/warnings: how many predicted images were ignored (the official evaluator ignores them too), no
        predictions at all (score 0). (Images listed twice are reported by the scorer itself.)
    """
    messages: list[str] = []
    if ignored and not preds:
        raise _refuse(
            pred_path,
            f"image {ignored[0]}",
            f"none of the {len(ignored)} predicted image(s) is in the GT (first: {ignored[0]!r}): nothing to score",
            "unknown_image",
        )
    if ignored:
        first = ", ".join(repr(i) for i in list(ignored)[:3])
        messages.append(
            f"note: {pred_path}: {len(ignored)} predicted image(s) not in the GT were ignored, as the "
            f"official AI Challenger evaluator does ({first}{', ...' if len(ignored) > 3 else ''})"
        )
    if not preds or not any(e["keypoint_annotations"] for e in preds):
        messages.append(f"warning: {pred_path}: no predictions: every GT person counts as missed (score 0)")
    return messages

"""COCO keypoint files: validated GT / results loaders and the results writer. Torch-free.

COCO files hold 0-based image pixels (used as they are). Writers are atomic (temporary file + rename,
:mod:`lightning_pose.outputs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from lightning_pose.errors import DataProblem
from lightning_pose.evaluation.formats.common import (
    _err,
    _kind_of,
    _problems,
    category_num_keypoints,
    id_problem,
    load_json,
    number_problem,
)
from lightning_pose.outputs import atomic_write_text

__all__ = ["load_coco_gt", "load_coco_results", "write_coco_results"]


def load_coco_gt(path: str | Path, num_keypoints: int | None = None) -> dict:
    """Load and validate a COCO keypoint GT json (``person_keypoints_*.json`` layout; also COCO-style AIC).

    Checks: ``images``/``annotations``/``categories`` lists; unique image ids; every annotation's
    ``image_id`` is a known image; ``keypoints`` has ``3 * K`` finite numbers with K from the category's
    ``keypoints`` names (or ``num_keypoints``); ``bbox`` is 4 finite numbers; ``area`` (when present) finite.
    Annotations without ``num_keypoints`` get it computed as ``#(v > 0)`` (pycocotools needs the field);
    annotations without ``iscrowd`` get 0.

    Returns:
        the (lightly completed) dict, ready for the COCO evaluator.
    """
    path = Path(path)
    gt = load_json(path)
    if not isinstance(gt, dict):
        raise _err(path, "file", "a COCO GT file must be a json object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise _err(path, key, f"missing or not a list: {key!r}", "missing_field")
    k = num_keypoints if num_keypoints is not None else category_num_keypoints(gt)
    if k is None:
        raise _err(
            path, "categories", "no category lists keypoint names, so the keypoint count is unknown", "missing_field"
        )
    image_ids: set = set()
    for i, img in enumerate(gt["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise _err(path, f"images[{i}]", "image entry without 'id'", "missing_field")
        bad = id_problem(img["id"], "id")
        if bad:
            raise _err(path, f"images[{i}]", bad)
        if img["id"] in image_ids:
            raise _err(path, f"image {img['id']}", "duplicate image id", "duplicate_id")
        image_ids.add(img["id"])
    problems: list[DataProblem] = []
    for i, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, dict):
            problems.append(DataProblem(str(path), f"annotations[{i}]", "annotation is not an object", "bad_value"))
            continue
        ann_id = ann.get("id", f"#{i}")
        rec = f"annotation {ann_id}" if id_problem(ann_id) is None else f"annotations[{i}]"
        bad = id_problem(ann.get("image_id"))
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "bad_value"))
            continue
        if ann.get("image_id") not in image_ids:
            problems.append(DataProblem(str(path), rec, f"unknown image id {ann.get('image_id')!r}", "unknown_image"))
        kp = ann.get("keypoints")
        if not isinstance(kp, list) or len(kp) != 3 * k:
            n = len(kp) if isinstance(kp, list) else "no"
            problems.append(
                DataProblem(
                    str(path), rec, f"{n} keypoint values, expected {3 * k} ({k} keypoints x 3)", "keypoint_count"
                )
            )
            continue
        bad = number_problem(kp, "keypoints")
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "non_finite" if "NaN" in bad else "bad_value"))
            continue
        bbox = ann.get("bbox")
        if bbox is not None and (not isinstance(bbox, list) or len(bbox) != 4 or number_problem(bbox, "bbox")):
            problems.append(DataProblem(str(path), rec, f"bbox must be 4 finite numbers, got {bbox!r}", "bad_value"))
            continue
        for key in ("area", "iscrowd", "num_keypoints", "category_id"):
            bad = number_problem(ann[key], key) if key in ann else None
            if bad:
                problems.append(DataProblem(str(path), rec, bad, "non_finite" if key == "area" else "bad_value"))
                break
        else:
            if "num_keypoints" not in ann:
                ann["num_keypoints"] = int((np.asarray(kp, dtype=np.float64)[2::3] > 0).sum())
            ann.setdefault("iscrowd", 0)
    if problems:
        raise _problems(problems)
    return gt


def load_coco_results(path: str | Path, gt: dict | None = None, num_keypoints: int | None = None) -> list[dict]:
    """Load and validate a COCO keypoint results json: a list of
    ``{image_id, category_id, keypoints: [x, y, s] * K, score}`` (0-based image pixels).

    Args:
        path: the results file.
        gt: the GT dict; when given, every ``image_id`` must be one of its images and K defaults to its K.
        num_keypoints: expected K (overrides the one from ``gt``).
    """
    path = Path(path)
    res = load_json(path)
    if not isinstance(res, list):
        raise _err(path, "file", "a COCO results file must be a json list of detections")
    known = None if gt is None else {img["id"] for img in gt.get("images", [])}
    k = num_keypoints if num_keypoints is not None or gt is None else category_num_keypoints(gt)
    problems: list[DataProblem] = []
    for i, r in enumerate(res):
        rec = f"result {i}"
        if not isinstance(r, dict):
            problems.append(DataProblem(str(path), rec, "entry is not an object", "bad_value"))
            continue
        missing = [f for f in ("image_id", "keypoints", "score") if f not in r]
        if missing:
            problems.append(DataProblem(str(path), rec, f"missing field(s) {missing}", "missing_field"))
            continue
        bad = id_problem(r["image_id"])
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "bad_value"))
            continue
        rec = f"result {i} (image {r['image_id']})"
        if known is not None and r["image_id"] not in known:
            problems.append(
                DataProblem(str(path), rec, f"unknown image id {r['image_id']!r} (not in the GT)", "unknown_image")
            )
        kp = r["keypoints"]
        if not isinstance(kp, list) or len(kp) % 3 != 0 or (k is not None and len(kp) != 3 * k):
            n = len(kp) if isinstance(kp, list) else "no"
            exp = f"{3 * k}" if k is not None else "a multiple of 3"
            problems.append(DataProblem(str(path), rec, f"{n} keypoint values, expected {exp}", "keypoint_count"))
            continue
        bad = number_problem(kp, "keypoints") or number_problem(r["score"], "score")
        if (
            bad is None
            and "category_id" in r
            and (isinstance(r["category_id"], bool) or not isinstance(r["category_id"], (int, np.integer)))
        ):
            bad = f"category_id is {_kind_of(r['category_id'])}, expected an integer"
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "non_finite" if "NaN" in bad else "bad_value"))
            continue
        r.setdefault("category_id", 1)
    if problems:
        raise _problems(problems)
    return res


def write_coco_results(path: str | Path, results: Sequence[dict]) -> None:
    """Write COCO keypoint results (list of ``{image_id, category_id, keypoints, score}``) as json.

    Floats are written with ``repr`` precision (json default), so a round trip is exact.
    """
    out = []
    for r in results:
        d = dict(r)
        d["keypoints"] = [float(v) for v in np.asarray(d["keypoints"], dtype=np.float64).reshape(-1)]
        d["score"] = float(d["score"])
        d["image_id"] = int(d["image_id"]) if isinstance(d["image_id"], (int, np.integer)) else d["image_id"]
        d["category_id"] = int(d.get("category_id", 1))
        if "bbox" in d:
            d["bbox"] = [float(v) for v in d["bbox"]]
        out.append(d)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out))

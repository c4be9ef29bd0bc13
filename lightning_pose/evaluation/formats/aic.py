"""AI Challenger files and every AIC conversion (release format <-> COCO-style layout, results <-> release
predictions). Torch-free.

AIC files hold 0-based image pixels (used as they are). The visibility remap between the release codes
(1 visible, 2 occluded, 3 unlabelled) and COCO's (2, 1, 0) is the one table of the AIC reader,
:data:`~lightning_pose.data.readers.aic.AIC_VISIBILITY_TO_COCO`, and its inverse here. Writers are atomic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lightning_pose.data.readers.aic import AIC_VISIBILITY_TO_COCO
from lightning_pose.errors import DataProblem, DatasetError
from lightning_pose.evaluation.formats.common import (
    _err,
    _finite_numbers,
    _kind_of,
    _problems,
    load_json,
    number_problem,
)
from lightning_pose.outputs import atomic_write_text

__all__ = [
    "AIC_NUM_KEYPOINTS",
    "COCO_VISIBILITY_TO_AIC",
    "load_aic_release",
    "split_known_images",
    "aic_release_preds",
    "write_aic_preds",
    "aic_release_to_coco",
    "coco_style_aic_to_release",
    "coco_image_names",
    "coco_results_to_aic_release",
    "aic_release_preds_to_coco",
    "human_order",
    "release_person_problems",
]

AIC_NUM_KEYPOINTS = 14
#: COCO code -> release visibility code (the inverse of the reader's ``AIC_VISIBILITY_TO_COCO``)
COCO_VISIBILITY_TO_AIC: dict[int, int] = {coco: aic for aic, coco in AIC_VISIBILITY_TO_COCO.items()}


def load_aic_release(path: str | Path, kind: str = "gt", known_image_ids: set | None = None) -> list[dict]:
    """Load and validate an AI Challenger release-format file.

    GT (``kind="gt"``): list of ``{image_id, human_annotations: {humanN: [x1, y1, x2, y2]},
    keypoint_annotations: {humanN: [x, y, v] * 14}}`` with v in {1 visible, 2 occluded, 3 unlabelled}; every
    human needs both a box and 42 finite keypoint values.
    Predictions (``kind="pred"``): list of ``{image_id, keypoint_annotations: {humanK: [x, y, s] * 14}}``;
    ``known_image_ids`` (the GT ids) rejects unknown images. Image ids must not carry a file extension.
    """
    if kind not in ("gt", "pred"):
        raise ValueError(f"load_aic_release: kind must be 'gt' or 'pred', got {kind!r}")
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list):
        raise _err(path, "file", "an AI Challenger file must be a json list of image entries")
    problems: list[DataProblem] = []
    for i, e in enumerate(data):
        if not isinstance(e, dict) or "image_id" not in e or "keypoint_annotations" not in e:
            problems.append(
                DataProblem(str(path), f"entry {i}", "needs image_id and keypoint_annotations", "missing_field")
            )
            continue
        img = e["image_id"]
        if not isinstance(img, str):
            problems.append(
                DataProblem(
                    str(path),
                    f"entry {i}",
                    f"image_id is {_kind_of(img)}, expected a string (the image name without extension)",
                    "bad_value",
                )
            )
            continue
        if "." in img:
            problems.append(
                DataProblem(str(path), f"entry {i}", f"image_id {img!r} must be a name without extension", "bad_value")
            )
            continue
        if known_image_ids is not None and img not in known_image_ids:
            problems.append(DataProblem(str(path), f"image {img}", "unknown image id (not in the GT)", "unknown_image"))
        kps = e["keypoint_annotations"]
        if not isinstance(kps, dict):
            problems.append(
                DataProblem(str(path), f"image {img}", "keypoint_annotations is not an object", "bad_value")
            )
            continue
        boxes = e.get("human_annotations", {}) if kind == "gt" else {}
        for name, kp in kps.items():
            box = boxes.get(name) if isinstance(boxes, dict) else None
            for problem, what in release_person_problems(kp, box, gt=kind == "gt"):
                problems.append(DataProblem(str(path), f"{name} (image {img})", problem, what))
    if problems:
        raise _problems(problems)
    return data


def release_person_problems(
    keypoints: Any, box: Any = None, *, gt: bool = True, check_codes: bool = True
) -> list[tuple[str, str]]:
    """The one check of a release-format person: ``(problem, kind)`` pairs, empty when the person is valid.

    ``keypoints`` must be 42 finite numbers (``[x, y, v] * 14``; strings and booleans refused); for GT
    (``gt=True``) the visibility codes must be 1/2/3 (unless ``check_codes=False``, as the official scorer, which
    only counts ``v == 1``) and ``box`` (``human_annotations``) 4 finite numbers ``[x1, y1, x2, y2]``.
    Used by :func:`load_aic_release` and by the official scorer (:mod:`lightning_pose.evaluation.aic`).
    """
    if not isinstance(keypoints, (list, tuple)) or len(keypoints) != 3 * AIC_NUM_KEYPOINTS:
        n = len(keypoints) if isinstance(keypoints, (list, tuple)) else "no"
        return [(f"{n} keypoint values, expected 42 (14 x 3)", "keypoint_count")]
    bad = number_problem(list(keypoints), "keypoints")
    if bad:
        return [(bad, "non_finite" if "NaN" in bad else "bad_value")]
    if not gt:
        return []
    problems = []
    v = np.asarray(keypoints[2::3], dtype=np.float64)
    if check_codes and not np.isin(v, (1, 2, 3)).all():
        problems.append((f"visibility codes {sorted(set(v.tolist()))}, expected 1/2/3", "bad_value"))
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not _finite_numbers(list(box)):
        problems.append((f"human_annotations box must be 4 finite numbers, got {box!r}", "bad_value"))
    return problems


def split_known_images(entries: Sequence[dict], known: set, key: str = "image_id") -> tuple[list[dict], list]:
    """``(kept, ignored_ids)``: the entries whose ``key`` is in ``known``, and the distinct ids that are not
    (first-seen order). The official AI Challenger evaluator ignores predictions for images outside the GT."""
    kept, ignored, seen = [], [], set()
    for e in entries:
        if e[key] in known:
            kept.append(e)
        elif e[key] not in seen:
            seen.add(e[key])
            ignored.append(e[key])
    return kept, ignored


def aic_release_preds(per_image: dict[str, np.ndarray], scores: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Build AI Challenger release predictions.

    Args:
        per_image: image id (no extension) -> ``(P, 14, 2)`` predicted keypoints, 0-based image pixels.
        scores: optional image id -> ``(P, 14)`` keypoint scores (written as the third value; 1 otherwise).

    Returns:
        ``[{image_id, keypoint_annotations: {"human1": [x, y, s] * 14, ...}}]`` in sorted image-id order.
    """
    out = []
    for img in sorted(per_image):
        kp = np.asarray(per_image[img], dtype=np.float64).reshape(-1, AIC_NUM_KEYPOINTS, 2)
        sc = (
            np.ones(kp.shape[:2])
            if scores is None or img not in scores
            else np.asarray(scores[img], dtype=np.float64).reshape(kp.shape[:2])
        )
        anns = {}
        for j in range(kp.shape[0]):
            trip = np.concatenate([kp[j], sc[j][:, None]], axis=1).reshape(-1)
            anns[f"human{j + 1}"] = [float(v) for v in trip]
        out.append({"image_id": str(img), "keypoint_annotations": anns})
    return out


def write_aic_preds(path: str | Path, preds: Sequence[dict]) -> None:
    """Write AI Challenger release predictions (see :func:`aic_release_preds`) as json."""
    for i, e in enumerate(preds):
        if "image_id" not in e or "keypoint_annotations" not in e:
            raise ValueError(f"write_aic_preds: entry {i} needs image_id and keypoint_annotations")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(list(preds)))


def aic_release_to_coco(gt_release: Sequence[dict]) -> dict:
    """Convert AI Challenger release GT to the COCO-style layout most toolboxes use (mmpose's conversion).

    Images are numbered 1.. in file order with ``file_name = image_id + ".jpg"``; annotations 1.. in order.
    bbox ``[x1, y1, x2 - x1, y2 - y1]``; visibility remapped 1 -> 2 (visible), 2 -> 1 (occluded),
    3 -> 0 (unlabelled, coordinates set to 0); ``num_keypoints = #(v > 0)``; ``area = w * h`` (only used when
    ``use_area=True``; the AIC COCO-style protocol uses ``0.53 * w * h`` instead); ``iscrowd = 0``.
    """
    from lightning_pose.skeletons import AIC

    images: list[dict] = []
    anns: list[dict] = []
    for i, e in enumerate(gt_release):
        img_id = i + 1
        images.append({"id": img_id, "file_name": f"{e['image_id']}.jpg", "width": 0, "height": 0})
        boxes = e.get("human_annotations", {})
        for name in sorted(e["keypoint_annotations"], key=human_order):
            kp = np.asarray(e["keypoint_annotations"][name], dtype=np.float64).reshape(AIC_NUM_KEYPOINTS, 3)
            v = np.array([AIC_VISIBILITY_TO_COCO.get(int(c), 0) for c in kp[:, 2]], dtype=np.float64)
            xy = np.where(v[:, None] > 0, kp[:, :2], 0.0)
            x1, y1, x2, y2 = (float(c) for c in boxes[name])
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": 1,
                    "keypoints": [float(c) for c in np.concatenate([xy, v[:, None]], axis=1).reshape(-1)],
                    "num_keypoints": int((v > 0).sum()),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    cat = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(AIC.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in AIC.skeleton],
    }
    return {"images": images, "annotations": anns, "categories": [cat]}


def human_order(name: str) -> tuple[int, str]:
    """Sort key of release person names: ``human2`` before ``human10``."""
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def coco_image_names(gt: Mapping) -> dict[int, str]:
    """COCO image id -> file name stem (the AI Challenger ``image_id``) from a COCO-style GT dict."""
    return {img["id"]: Path(str(img.get("file_name", img["id"]))).stem for img in gt["images"]}


def coco_results_to_aic_release(results: Sequence[dict], gt: dict) -> list[dict]:
    """COCO keypoint results (0-based pixels, AIC order) -> AI Challenger release predictions.

    Image ids are mapped to names through the GT's ``file_name`` stems; within an image the detections are
    numbered ``human1..`` by decreasing score. The keypoint score triples are kept as the third values.
    """
    names = coco_image_names(gt)
    per_image: dict[str, list[dict]] = {}
    for r in results:
        if r["image_id"] not in names:
            raise ValueError(f"coco_results_to_aic_release: image id {r['image_id']!r} not in the GT")
        per_image.setdefault(names[r["image_id"]], []).append(r)
    kp, sc = {}, {}
    for name, rs in per_image.items():
        rs = sorted(rs, key=lambda r: -float(r["score"]))
        arr = np.asarray([r["keypoints"] for r in rs], dtype=np.float64).reshape(len(rs), AIC_NUM_KEYPOINTS, 3)
        kp[name], sc[name] = arr[..., :2], arr[..., 2]
    return aic_release_preds(kp, sc)


def aic_release_preds_to_coco(preds: Sequence[dict], gt: dict) -> list[dict]:
    """AI Challenger release predictions -> COCO results for a COCO-style AIC GT.

    The release format has no instance score: each detection gets ``score`` = mean of its 14 third values
    (1.0 when those are all 1). Unknown image names raise ``ValueError``.
    """
    ids = {name: i for i, name in coco_image_names(gt).items()}
    out = []
    for e in preds:
        if e["image_id"] not in ids:
            raise ValueError(f"aic_release_preds_to_coco: image {e['image_id']!r} not in the GT")
        for name in sorted(e["keypoint_annotations"], key=human_order):
            kp = np.asarray(e["keypoint_annotations"][name], dtype=np.float64).reshape(AIC_NUM_KEYPOINTS, 3)
            out.append(
                {
                    "image_id": ids[e["image_id"]],
                    "category_id": 1,
                    "keypoints": [float(c) for c in kp.reshape(-1)],
                    "score": float(kp[:, 2].mean()),
                }
            )
    return out


def coco_style_aic_to_release(gt_coco: Mapping) -> list[dict]:
    """Convert the common COCO-style AIC json back to the AIC release format.

    The inverse of the usual conversion: visibility 2 -> 1 (visible), 1 -> 2 (occluded), 0 -> 3
    (unlabelled), coordinates kept; ``bbox`` ``[x, y, w, h]`` -> ``[x, y, x + w, y + h]``. Image ids become the
    file name without extension (the AIC sha1 name); humans are named ``human1``, ``human2``, ... in
    annotation order per image. Images without annotations get empty dicts.
    """
    images = gt_coco.get("images")
    if images is None:
        raise DatasetError(DataProblem("<COCO-style AIC json>", "top level", "missing the 'images' list", "bad_value"))
    names = coco_image_names(gt_coco)
    by_image: dict[int, list[Mapping]] = {}
    for ann in gt_coco.get("annotations", []):
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    out: list[dict] = []
    for im in images:
        image_key = names[im["id"]]
        humans_box: dict[str, list[float]] = {}
        humans_kp: dict[str, list[float]] = {}
        for j, ann in enumerate(by_image.get(int(im["id"]), []), start=1):
            kp = list(ann["keypoints"])
            if len(kp) != 3 * AIC_NUM_KEYPOINTS:
                raise DatasetError(
                    DataProblem(
                        "<COCO-style AIC json>",
                        f"annotation {ann.get('id')}",
                        f"{len(kp)} keypoint values, expected 42",
                        "keypoint_count",
                    )
                )
            for t in range(AIC_NUM_KEYPOINTS):
                v = int(kp[3 * t + 2])
                if v not in COCO_VISIBILITY_TO_AIC:
                    raise DatasetError(
                        DataProblem(
                            "<COCO-style AIC json>",
                            f"annotation {ann.get('id')}",
                            f"visibility {v} is not a COCO code 0/1/2",
                            "bad_value",
                        )
                    )
                kp[3 * t + 2] = COCO_VISIBILITY_TO_AIC[v]
            x, y, w, h = ann["bbox"]
            humans_box[f"human{j}"] = [x, y, x + w, y + h]
            humans_kp[f"human{j}"] = kp
        entry = {"image_id": image_key, "human_annotations": humans_box, "keypoint_annotations": humans_kp}
        if "url" in im:
            entry["url"] = im["url"]
        out.append(entry)
    return out

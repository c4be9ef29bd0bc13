"""Person detections in the COCO results format (e.g. ``COCO_val2017_detections_AP_H_56_person.json``):
a JSON list of ``{image_id, category_id, bbox: [x, y, w, h], score}``.

Boxes are 0-based image pixels ``x, y, w, h`` (the COCO convention), used unchanged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_pose.data.readers.common import ProblemLog, load_json, parse_box, parse_number
from lightning_pose.data.records import DatasetError

__all__ = ["Detection", "read_detections"]


@dataclass
class Detection:
    """One detected person box.

    Attributes:
        image_id: the COCO image id.
        bbox: ``(4,)`` float64 ``x, y, w, h`` in 0-based image pixels.
        score: detector confidence.
        index: position of the entry in the detection file (0-based, before any filtering); a stable id for
            the detection (the top-down ``ann_id`` of detection samples).
    """

    image_id: int
    bbox: np.ndarray
    score: float
    index: int


def read_detections(
    det_file: str | Path,
    *,
    image_ids: set[int] | None = None,
    min_score: float = 0.0,
    category_id: int | None = 1,
    skip_invalid: bool = False,
) -> list[Detection]:
    """Read and validate a COCO-results detection file, keeping file order.

    Args:
        det_file: the JSON list of detections.
        image_ids: keep only detections of these images (None: all).
        min_score: keep detections with ``score >= min_score``.
        category_id: keep only this category (entries without ``category_id`` are kept); None keeps all.
        skip_invalid: drop invalid entries with one warning instead of raising.

    Validation (each problem names the file and the entry position): every entry is an object with an integer
    ``image_id``, a 4-number ``bbox`` with finite values and ``w > 0, h > 0``, a finite ``score``, and an
    integer ``category_id`` when present.

    Raises:
        DatasetError: malformed JSON, a non-list top level, or (without ``skip_invalid``) invalid entries.
    """
    det_file = Path(det_file)
    data = load_json(det_file, list, "a list of detections (COCO results format)")
    if not np.isfinite(min_score):
        raise ValueError(f"min_score must be finite, got {min_score!r}")
    log = ProblemLog(det_file)
    out: list[Detection] = []
    for i, d in enumerate(data):
        record = f"detection {i}"
        if not isinstance(d, dict):
            log.add(record, f"entry must be an object, found {type(d).__name__}", "bad_value")
            continue
        iid = d.get("image_id")
        record = f"detection {i} (image {iid})"
        if isinstance(iid, bool) or not isinstance(iid, int):
            log.add(record, f"'image_id' must be an integer, found {iid!r:.40}", "bad_value")
            continue
        cat = d.get("category_id", None)
        if cat is not None and (isinstance(cat, bool) or not isinstance(cat, int)):
            log.add(record, f"'category_id' must be an integer, found {cat!r:.40}", "bad_value")
            continue
        box = parse_box(d.get("bbox"), log, record)
        if box is None:
            continue
        if not np.isfinite(box).all():
            log.add(record, f"non-finite bbox {box.tolist()}", "non_finite")
            continue
        if box[2] <= 0 or box[3] <= 0:
            log.add(record, f"empty bbox (w={box[2]:g}, h={box[3]:g})", "empty_box")
            continue
        score = parse_number(d.get("score"))
        if score is None or not np.isfinite(score):
            log.add(
                record,
                f"'score' must be a finite number, found {d.get('score')!r:.40}",
                "bad_value" if score is None else "non_finite",
            )
            continue
        if category_id is not None and cat is not None and cat != category_id:
            continue
        if image_ids is not None and iid not in image_ids:
            continue
        if score < min_score:
            continue
        out.append(Detection(image_id=iid, bbox=box, score=score, index=i))
    if log.problems:
        if not skip_invalid:
            raise DatasetError(log.problems)
        warnings.warn(
            f"{det_file}: skipped {len(log.problems)} invalid detection(s) (first: {log.problems[0]})",
            UserWarning,
            stacklevel=2,
        )
    if not data:
        warnings.warn(f"{det_file}: the detection file is empty", UserWarning, stacklevel=2)
    return out

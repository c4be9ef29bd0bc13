"""AI Challenger keypoint readers: the COCO-style conversion used by most toolboxes, and the release format.

Both give 0-based image pixels and COCO visibility codes, in the AIC keypoint order (14 joints, see
``skeletons.AIC``), so the same persons come out identical from either file.

Release format (``keypoint_train_annotations_*.json``): a list of
``{image_id: <sha1>, url, human_annotations: {"human1": [x1, y1, x2, y2], ...},
keypoint_annotations: {"human1": [x, y, v] * 14, ...}}`` where v is 1 visible, 2 labelled but occluded,
3 not labelled (stored as 0, 0, 3). Mapped to COCO codes 1 -> 2, 2 -> 1, 3 -> 0; boxes become
``x1, y1, x2 - x1, y2 - y1`` (no +1, as in the common conversion); ``area = w * h``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_pose.data.readers.coco import read_coco
from lightning_pose.data.readers.common import (
    ProblemLog,
    ReadResult,
    check_box,
    finish_read,
    image_root_for,
    inspect_image,
    load_json,
    parse_box,
    parse_keypoints,
    resolve_image_path,
)
from lightning_pose.data.records import ImageRecord, PersonRecord
from lightning_pose.skeletons import AIC

__all__ = ["read_aic", "read_aic_raw", "AIC_VISIBILITY_TO_COCO", "AIC_IMAGE_SUFFIX"]

#: release visibility code -> COCO code (1 visible -> 2, 2 occluded -> 1, 3 unlabelled -> 0)
AIC_VISIBILITY_TO_COCO: dict[int, int] = {1: 2, 2: 1, 3: 0}
#: release images are ``<image_id>.jpg``
AIC_IMAGE_SUFFIX = ".jpg"


def read_aic(
    ann_file: str | Path, image_dir: str | Path, *, skip_invalid: bool = False, check_images: bool = False
) -> ReadResult:
    """Read the COCO-style AIC conversion (visibility already in COCO codes, boxes xywh, usually no ``area``).

    This is :func:`~lightning_pose.data.readers.coco.read_coco` with the AIC keypoint set; when ``area`` is
    absent it is ``w * h`` of the box (noted in ``ReadResult.notes``). See ``read_coco`` for problems/raises.
    """
    return read_coco(ann_file, image_dir, keypoint_set=AIC, skip_invalid=skip_invalid, check_images=check_images)


def read_aic_raw(
    ann_file: str | Path, image_dir: str | Path, *, skip_invalid: bool = False, check_images: bool = False
) -> ReadResult:
    """Read the AI Challenger release format (see the module docstring for the conversion).

    Image ids are numbered from 1 in file order (the sha1 goes to ``ImageRecord.source_id``); persons are in
    the order of ``human_annotations``; ``source_index`` = the person's position in the file (0-based, over
    all images, counting skipped ones too), ``id = source_index + 1`` (so ids are stable whether or not bad
    records are skipped) and ``PersonRecord.name`` = ``"humanN"``. Images are ``image_dir/<image_id>.jpg``; the format has no image size (0).

    Problems: a person with a box but no keypoints (or the reverse), a wrong keypoint count, non-finite values,
    visibility not in {1, 2, 3}, an empty box around labelled keypoints, a duplicate ``image_id``, an image
    path escaping ``image_dir``, and with ``check_images`` missing/unreadable images.

    Raises:
        DatasetError: malformed JSON or a non-list top level, or (without ``skip_invalid``) any problem above.
    """
    ann_file = Path(ann_file)
    data = load_json(ann_file, list, "a list of AI Challenger image objects")
    root = image_root_for(image_dir, check_images, ann_file)
    log = ProblemLog(ann_file)
    counts: dict[str, int] = {}
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("image_id"), str):
            counts[entry["image_id"]] = counts.get(entry["image_id"], 0) + 1

    records: list[ImageRecord] = []
    next_index = 0
    k = AIC.num_keypoints
    for i, entry in enumerate(data):
        image_number = i + 1
        if not isinstance(entry, dict):
            log.add(f"entry {i}", f"image entry must be an object, found {type(entry).__name__}", "bad_value")
            log.skipped_images += 1
            continue
        sha = entry.get("image_id")
        record = f"image {sha}"
        boxes, kpts = entry.get("human_annotations"), entry.get("keypoint_annotations")
        n_persons = len(boxes) if isinstance(boxes, dict) else 0
        if not isinstance(sha, str) or not sha:
            log.add(f"entry {i}", f"'image_id' must be a non-empty string, found {sha!r:.60}", "bad_value")
            log.skipped_images += 1
            log.skipped_persons += n_persons
            next_index += n_persons
            continue
        if not isinstance(boxes, dict) or not isinstance(kpts, dict):
            log.add(
                record,
                "'human_annotations' and 'keypoint_annotations' must both be objects ({\"human1\": [...], ...})",
                "bad_value",
            )
            log.skipped_images += 1
            log.skipped_persons += n_persons
            next_index += n_persons
            continue
        if counts[sha] > 1:
            log.add(record, f"image_id {sha} appears in {counts[sha]} entries (entry {i})", "duplicate_id")
            log.skipped_images += 1
            log.skipped_persons += n_persons
            next_index += n_persons
            continue
        path = resolve_image_path(root, sha + AIC_IMAGE_SUFFIX, log, record)
        if path is not None and check_images and inspect_image(path, 0, 0, log, record) is None:
            path = None
        if path is None:
            log.skipped_images += 1
            log.skipped_persons += n_persons
            next_index += n_persons
            continue
        image = ImageRecord(image_id=image_number, file=path, width=0, height=0, source_id=sha)
        for extra in [h for h in kpts if h not in boxes]:
            log.add(f"{extra} (image {sha})", "has keypoints but no box in 'human_annotations'", "bad_value")
            log.skipped_persons += 1
        for human, raw_box in boxes.items():
            index = next_index
            next_index += 1
            aid = index + 1
            prec = f"{human} (image {sha})"
            if human not in kpts:
                log.add(prec, "has a box but no keypoints in 'keypoint_annotations'", "keypoint_count")
                log.skipped_persons += 1
                continue
            kps = parse_keypoints(
                kpts[human],
                k,
                log,
                prec,
                vis_map=AIC_VISIBILITY_TO_COCO,
                vis_desc="1 (visible), 2 (occluded) or 3 (not labelled)",
            )
            xyxy = parse_box(raw_box, log, prec, key=f"human_annotations.{human}")
            if kps is None or xyxy is None:
                log.skipped_persons += 1
                continue
            box = np.array([xyxy[0], xyxy[1], xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]])
            if not check_box(box, log, prec, must_have_area=bool((kps[:, 2] > 0).any())):
                log.skipped_persons += 1
                continue
            image.persons.append(
                PersonRecord(
                    keypoints=kps,
                    bbox=box,
                    area=float(box[2] * box[3]),
                    iscrowd=False,
                    id=aid,
                    source_index=index,
                    name=human,
                )
            )
        records.append(image)
    return finish_read(records, log, AIC, skip_invalid=skip_invalid)

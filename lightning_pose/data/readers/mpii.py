"""MPII reader for the widely used JSON conversion (``train.json``/``valid.json``/``test.json`` of HRNet and
mmpose): a list of persons ``{image, center, scale, joints, joints_vis}``.

Frames and units:

* The JSON's ``joints`` (16 x 2) and ``center`` are MATLAB **1-based** pixels; this reader subtracts 1 once, so
  records hold **0-based** image pixels (the package convention). ``scale`` is the person height / 200 px and
  is stored unchanged.
* ``joints_vis`` means "annotated" (not "unoccluded"): v = 2 where ``joints_vis == 1`` and the joint is not the
  ``(-1, -1)`` placeholder of unannotated joints; otherwise v = 0 and x = y = 0. MPII has no occluded code.
* The person ``bbox`` is the tight ``x, y, w, h`` box of the labelled joints (0-based px; a single labelled joint
  gives w = h = 0); a person without labelled joints (``test.json`` has no ``joints``) gets the square box of
  side ``scale * 200`` px centred on ``center``. ``area = w * h``.
* Head boxes come from a ``gt_valid.mat``-layout file (``headboxes_src``, 1-based corners, one column per JSON
  row) and are stored 0-based as ``[[x1, y1], [x2, y2]]``.

Problems name the person by its 0-based JSON row: ``person 3 (image 005808361.jpg)``.
Images have no size in this format (``width = height = 0``); image ids are numbered from 1 in order of first
appearance of the file name; person ids are ``source_index + 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_pose.data.readers.common import (
    ProblemLog,
    ReadResult,
    file_error,
    finish_read,
    image_root_for,
    inspect_image,
    load_json,
    parse_number,
    resolve_image_path,
)
from lightning_pose.data.records import ImageRecord, PersonRecord
from lightning_pose.skeletons import MPII

__all__ = ["read_mpii", "MPII_PIXEL_STD", "MPII_UNLABELLED_TOL"]

#: MPII ``scale`` is the person height in units of 200 px
MPII_PIXEL_STD = 200.0
#: a joint within this many px of (-1, -1) (1-based) is the "not annotated" placeholder
MPII_UNLABELLED_TOL = 1e-3


def _number_list(value: Any, n: int) -> np.ndarray | None:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    out = [parse_number(v) for v in value]
    if any(v is None for v in out):
        return None
    return np.asarray(out, dtype=np.float64)


def _parse_joints(entry: dict, log: ProblemLog, record: str) -> np.ndarray | None:
    """``joints``/``joints_vis`` -> ``(16, 3)`` 0-based keypoints with COCO codes, or None (problem logged)."""
    k = MPII.num_keypoints
    if "joints" not in entry:
        if "joints_vis" in entry:
            log.add(record, "'joints_vis' given without 'joints'", "keypoint_count")
            return None
        return np.zeros((k, 3))  # test split: no annotation
    joints = entry["joints"]
    if not isinstance(joints, list) or len(joints) != k:
        n = len(joints) if isinstance(joints, list) else type(joints).__name__
        log.add(record, f"'joints' must be {k} [x, y] pairs, found {n}", "keypoint_count")
        return None
    xy = np.empty((k, 2))
    for j, pt in enumerate(joints):
        arr = _number_list(pt, 2)
        if arr is None:
            log.add(
                record,
                f"joint {j} must be [x, y] numbers, found {pt!r:.60}",
                "keypoint_count" if not isinstance(pt, list) or len(pt) != 2 else "bad_value",
            )
            return None
        xy[j] = arr
    vis_raw = entry.get("joints_vis", [1] * k)
    vis = _number_list(vis_raw, k) if isinstance(vis_raw, list) else None
    if vis is None:
        n = len(vis_raw) if isinstance(vis_raw, list) else type(vis_raw).__name__
        log.add(
            record,
            f"'joints_vis' must be {k} numbers (0/1), found {n!s:.60}",
            "keypoint_count" if not isinstance(vis_raw, list) or len(vis_raw) != k else "bad_value",
        )
        return None
    if not np.isfinite(vis).all() or not np.isin(vis, (0.0, 1.0)).all():
        log.add(record, f"'joints_vis' values must be 0 or 1, found {sorted(set(vis.tolist()))}", "bad_value")
        return None
    placeholder = (np.abs(xy + 1.0) <= MPII_UNLABELLED_TOL).all(axis=1)
    labelled = (vis == 1) & ~placeholder
    bad = labelled & ~np.isfinite(xy).all(axis=1)
    if bad.any():
        log.add(record, f"non-finite joint coordinates at joint(s) {np.flatnonzero(bad).tolist()}", "non_finite")
        return None
    kps = np.zeros((k, 3))
    kps[labelled, :2] = xy[labelled] - 1.0
    kps[labelled, 2] = 2.0
    return kps


def _load_head_boxes(headbox_file: str | Path, n: int, json_file: Path) -> list[np.ndarray | None]:
    """Head boxes per JSON row (0-based ``[[x1, y1], [x2, y2]]``, None where the file has none)."""
    from lightning_pose.data.readers.mpii_mat import load_mpii_gt_mat

    gt = load_mpii_gt_mat(headbox_file)
    if gt.num_persons != n:
        raise file_error(
            headbox_file,
            f"has {gt.num_persons} persons (columns) but {json_file} has {n} rows; "
            "the head-box file must list the persons of the JSON in the same order",
            "bad_value",
            record="headboxes_src",
        )
    boxes = gt.head_boxes_zero_based()
    ok = gt.has_head_box
    return [boxes[i].copy() if ok[i] else None for i in range(n)]


def read_mpii(
    json_file: str | Path,
    image_dir: str | Path,
    *,
    headbox_file: str | Path | None = None,
    skip_invalid: bool = False,
    check_images: bool = False,
) -> ReadResult:
    """Read an MPII JSON person list into :class:`ImageRecord` s (0-based pixels; see the module docstring).

    Args:
        json_file: ``train.json``/``valid.json``/``test.json`` (a list of person objects; ``joints`` and
            ``joints_vis`` are optional, as in ``test.json``).
        image_dir: the folder of the MPII images (``image`` names are relative to it).
        headbox_file: optional ``gt_valid.mat``-layout file whose columns follow the JSON rows; gives
            ``PersonRecord.head_box`` (the PCKh normaliser).
        skip_invalid: drop bad persons/images (one warning) instead of raising.
        check_images: also open each image header.

    Returns:
        :class:`ReadResult` with one record per distinct image file (ids from 1 in order of first appearance),
        persons in JSON order with ``source_index`` = JSON row, ``id = source_index + 1``, ``center`` 0-based,
        ``scale`` as given.

    Raises:
        DatasetError: malformed JSON, a non-list top level, a head-box file whose length differs from the JSON,
            or (without ``skip_invalid``) any per-person problem.
    """
    json_file = Path(json_file)
    data = load_json(json_file, list, "a list of MPII person objects")
    heads = _load_head_boxes(headbox_file, len(data), json_file) if headbox_file is not None else None
    root = image_root_for(image_dir, check_images, json_file)
    log = ProblemLog(json_file)

    images: dict[str, ImageRecord] = {}
    refused: set[str] = set()
    next_id = 1
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            log.add(f"person {i}", f"entry must be an object, found {type(entry).__name__}", "bad_value")
            log.skipped_persons += 1
            continue
        name = entry.get("image")
        record = f"person {i} (image {name})"
        if not isinstance(name, str):
            log.add(record, f"'image' must be a file name, found {name!r:.60}", "bad_value")
            log.skipped_persons += 1
            continue
        if name not in images and name not in refused:
            img_record = f"image {next_id} ({name})"
            path = resolve_image_path(root, name, log, img_record)
            if path is not None and check_images and inspect_image(path, 0, 0, log, img_record) is None:
                path = None
            if path is None:
                refused.add(name)
                log.skipped_images += 1
            else:
                images[name] = ImageRecord(image_id=next_id, file=path, width=0, height=0)
            next_id += 1
        if name in refused:
            log.skipped_persons += 1
            continue

        missing = [key for key in ("center", "scale") if key not in entry]
        if missing:
            log.add(record, f"missing key(s) {missing}", "bad_value")
            log.skipped_persons += 1
            continue
        center = _number_list(entry["center"], 2)
        scale = parse_number(entry["scale"])
        if center is None or scale is None:
            log.add(
                record,
                f"'center' must be [x, y] numbers and 'scale' a number, found "
                f"{entry['center']!r:.40} / {entry['scale']!r:.20}",
                "bad_value",
            )
            log.skipped_persons += 1
            continue
        if not (np.isfinite(center).all() and np.isfinite(scale)):
            log.add(record, f"non-finite center {center.tolist()} or scale {scale}", "non_finite")
            log.skipped_persons += 1
            continue
        if scale <= 0:
            log.add(record, f"'scale' must be > 0 (person height / 200 px), found {scale:g}", "bad_value")
            log.skipped_persons += 1
            continue
        kps = _parse_joints(entry, log, record)
        if kps is None:
            log.skipped_persons += 1
            continue
        center0 = center - 1.0
        lab = kps[:, 2] > 0
        if lab.any():
            lo, hi = kps[lab, :2].min(axis=0), kps[lab, :2].max(axis=0)
            bbox = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
        else:
            side = scale * MPII_PIXEL_STD
            bbox = np.array([center0[0] - side / 2, center0[1] - side / 2, side, side])
        images[name].persons.append(
            PersonRecord(
                keypoints=kps,
                bbox=bbox,
                area=float(bbox[2] * bbox[3]),
                iscrowd=False,
                id=i + 1,
                head_box=None if heads is None else heads[i],
                center=center0,
                scale=float(scale),
                source_index=i,
            )
        )
    return finish_read(list(images.values()), log, MPII, skip_invalid=skip_invalid)

"""COCO ``person_keypoints_*.json`` reader (also used for the COCO-style AI Challenger conversion) and
the inverse :func:`records_to_coco` (ground truth for COCO AP).

Frames and units: COCO keypoints and boxes are already 0-based image pixels and are used unchanged.
``keypoints`` are ``[x, y, v] * K`` with v 0 unlabelled / 1 occluded / 2 visible; ``bbox`` is ``x, y, w, h``
in pixels; ``area`` is the segment area in px^2 (the OKS normaliser).
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from lightning_pose.data.readers.common import (
    ProblemLog,
    ReadResult,
    check_box,
    file_error,
    finish_read,
    image_root_for,
    inspect_image,
    load_json,
    normalise_name,
    parse_box,
    parse_keypoints,
    parse_number,
    resolve_image_path,
)
from lightning_pose.data.records import DataProblem, ImageRecord, PersonRecord
from lightning_pose.skeletons import KeypointSet, get_keypoint_set

__all__ = ["read_coco", "records_to_coco", "PERSON_CATEGORY_ID"]

#: the category id of "person" in COCO (and in every COCO-style pose dataset)
PERSON_CATEGORY_ID = 1


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _person_category_ids(categories: Any, kset: KeypointSet, ann_file: Path, notes: list[str]) -> set[int]:
    """Ids of the person categories; checks their keypoint list against the keypoint set.

    Raises:
        DatasetError: ``categories`` is not a list, or a person category lists a different number of keypoints
            than ``kset`` (wrong ``keypoint_set`` for this file).
    """
    if categories is None:
        notes.append(f"no 'categories' in the file: category {PERSON_CATEGORY_ID} taken as 'person'")
        return {PERSON_CATEGORY_ID}
    if not isinstance(categories, list):
        raise file_error(ann_file, f"'categories' must be a list, found {type(categories).__name__}")
    persons = [c for c in categories if isinstance(c, dict) and c.get("name") == "person"]
    if not persons:
        persons = [c for c in categories if isinstance(c, dict) and isinstance(c.get("keypoints"), list)]
    if not persons:
        notes.append(f"no 'person' category in the file: category {PERSON_CATEGORY_ID} taken as 'person'")
        return {PERSON_CATEGORY_ID}
    ids: set[int] = set()
    for c in persons:
        if not _is_int(c.get("id")):
            raise file_error(ann_file, f"person category has a non-integer id {c.get('id')!r}", record="categories")
        ids.add(int(c["id"]))
        names = c.get("keypoints")
        if not isinstance(names, list):
            continue
        if len(names) != kset.num_keypoints:
            raise file_error(
                ann_file,
                f"the person category lists {len(names)} keypoints but keypoint set {kset.name!r} has "
                f"{kset.num_keypoints}; pass the matching keypoint_set (e.g. 'coco' = 17, 'aic' = 14)",
                "keypoint_count",
                record=f"category {c['id']}",
            )
        file_names = [normalise_name(n) for n in names]
        if file_names != [normalise_name(n) for n in kset.keypoints]:
            warnings.warn(
                f"{ann_file}: the keypoint names of category {c['id']} ({file_names}) differ from keypoint set "
                f"{kset.name!r} ({list(kset.keypoints)}); keypoints are used in file order",
                UserWarning,
                stacklevel=3,
            )
    return ids


def _read_images(
    images: list, root: Path, log: ProblemLog, check_images: bool
) -> tuple[dict[int, ImageRecord], set[int]]:
    """Image entries -> records keyed by id, plus the set of ids whose entries were refused."""
    counts = Counter(im.get("id") for im in images if isinstance(im, dict) and _is_int(im.get("id")))
    records: dict[int, ImageRecord] = {}
    refused: set[int] = set()
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            log.add(f"images[{i}]", f"image entry must be an object, found {type(im).__name__}", "bad_value")
            log.skipped_images += 1
            continue
        iid = im.get("id")
        name = im.get("file_name")
        if not _is_int(iid):
            log.add(f"images[{i}] ({name})", f"image 'id' must be an integer, found {iid!r}", "bad_value")
            log.skipped_images += 1
            continue
        record = f"image {iid} ({name})"
        if counts[iid] > 1:
            log.add(record, f"image id {iid} is used by {counts[iid]} image entries (images[{i}])", "duplicate_id")
            refused.add(iid)
            log.skipped_images += 1
            continue
        size = []
        for key in ("width", "height"):
            v = im.get(key, 0)
            f = parse_number(v)
            if f is None or not np.isfinite(f) or f < 0 or f != int(f):
                size.append(None)
                log.add(record, f"'{key}' must be a non-negative integer, found {v!r}", "bad_value")
            else:
                size.append(int(f))
        path = resolve_image_path(root, name, log, record)
        if path is None or None in size:
            refused.add(iid)
            log.skipped_images += 1
            continue
        width, height = size
        if check_images and inspect_image(path, width, height, log, record) is None:
            refused.add(iid)
            log.skipped_images += 1
            continue
        records[iid] = ImageRecord(image_id=iid, file=path, width=width, height=height)
    return records, refused


def read_coco(
    ann_file: str | Path,
    image_dir: str | Path,
    *,
    keypoint_set: str | dict | KeypointSet = "coco",
    skip_invalid: bool = False,
    check_images: bool = False,
) -> ReadResult:
    """Read a COCO-format keypoint annotation file into :class:`ImageRecord` s.

    Keypoints and boxes are kept as given: 0-based image pixels, ``bbox`` = ``x, y, w, h``, ``area`` = the
    segment area (px^2; when the field is absent, ``w * h`` is used and a note is added to the result).
    Unlabelled joints (v = 0) get x = y = 0. Annotations of non-person categories are ignored. Every image
    entry becomes a record, also images without persons (COCO AP counts them). The ``num_keypoints`` field
    is not used (records recount v > 0); a disagreement is only an advisory for ``lightning-pose data check``.

    Problems (each names the annotation id and its image): wrong keypoint count, non-finite values,
    visibility not in {0, 1, 2}, empty/negative box of a non-crowd person with labelled keypoints,
    unknown ``image_id``, duplicate image or annotation ids, image paths escaping ``image_dir``, and with
    ``check_images`` missing/unreadable/mis-sized images.

    Args:
        ann_file: the JSON file.
        image_dir: the folder ``file_name`` s are relative to.
        keypoint_set: ``"coco"``, ``"aic"``, a mapping or a :class:`KeypointSet`; must match the file's K.
        skip_invalid: drop the bad records (one warning) instead of raising.
        check_images: also open each image header (slow on full datasets).

    Raises:
        DatasetError: malformed JSON / missing ``images`` or ``annotations`` / wrong K in the person category,
            or (without ``skip_invalid``) any problem above.
    """
    ann_file = Path(ann_file)
    kset = get_keypoint_set(keypoint_set)
    data = load_json(ann_file, dict, "a COCO annotation object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if key not in data:
            raise file_error(ann_file, f"top-level key {key!r} missing (found: {sorted(data)[:10]})")
        if not isinstance(data[key], list):
            raise file_error(ann_file, f"{key!r} must be a list, found {type(data[key]).__name__}")
    notes: list[str] = []
    person_ids = _person_category_ids(data.get("categories"), kset, ann_file, notes)
    root = image_root_for(image_dir, check_images, ann_file)
    log = ProblemLog(ann_file)
    images, refused = _read_images(data["images"], root, log, check_images)

    anns = data["annotations"]
    ann_counts = Counter(a.get("id") for a in anns if isinstance(a, dict) and _is_int(a.get("id")))
    advisories: list[DataProblem] = []
    missing_area = 0
    missing_category = 0
    k = kset.num_keypoints
    for j, a in enumerate(anns):
        if not isinstance(a, dict):
            log.add(f"annotations[{j}]", f"annotation must be an object, found {type(a).__name__}", "bad_value")
            log.skipped_persons += 1
            continue
        aid, iid = a.get("id"), a.get("image_id")
        record = f"annotation {aid} (image {iid})"
        if "category_id" not in a:
            missing_category += 1
        elif not _is_int(a["category_id"]):
            log.add(record, f"'category_id' must be an integer, found {a['category_id']!r}", "bad_value")
            log.skipped_persons += 1
            continue
        elif a["category_id"] not in person_ids:
            continue
        if not _is_int(aid):
            log.add(
                f"annotations[{j}] (image {iid})", f"annotation 'id' must be an integer, found {aid!r}", "bad_value"
            )
            log.skipped_persons += 1
            continue
        if not _is_int(iid) or (iid not in images and iid not in refused):
            log.add(record, f"image_id {iid!r} is not in 'images'", "unknown_image")
            log.skipped_persons += 1
            continue
        if iid in refused:
            log.skipped_persons += 1  # its image has a problem of its own
            continue
        if ann_counts[aid] > 1:
            log.add(record, f"annotation id {aid} is used {ann_counts[aid]} times (annotations[{j}])", "duplicate_id")
            log.skipped_persons += 1
            continue
        crowd_raw = a.get("iscrowd", 0)
        if crowd_raw not in (0, 1):  # also accepts False/True
            log.add(record, f"'iscrowd' must be 0 or 1, found {crowd_raw!r}", "bad_value")
            log.skipped_persons += 1
            continue
        crowd = bool(crowd_raw)
        if crowd and "keypoints" not in a:
            kps: np.ndarray | None = np.zeros((k, 3))
        else:
            kps = parse_keypoints(a.get("keypoints"), k, log, record)
        box = parse_box(a.get("bbox"), log, record) if "bbox" in a else None
        if "bbox" not in a:
            log.add(record, "'bbox' missing", "bad_value")
        if kps is None or box is None:
            log.skipped_persons += 1
            continue
        labelled = int((kps[:, 2] > 0).sum())
        if not check_box(box, log, record, must_have_area=(not crowd and labelled > 0)):
            log.skipped_persons += 1
            continue
        if "area" in a:
            area = parse_number(a["area"])
            if area is None or not np.isfinite(area) or area < 0:
                log.add(
                    record,
                    f"'area' must be a finite non-negative number, found {a['area']!r}",
                    "non_finite" if area is not None and not np.isfinite(area) else "bad_value",
                )
                log.skipped_persons += 1
                continue
        else:
            area = float(box[2] * box[3])
            missing_area += 1
        nk = a.get("num_keypoints")
        if nk is not None and nk != labelled:
            advisories.append(
                DataProblem(
                    str(ann_file),
                    record,
                    f"'num_keypoints' is {nk!r} but {labelled} keypoints have v > 0 (pycocotools trusts the field)",
                    "bad_value",
                )
            )
        if aid == 0:
            advisories.append(
                DataProblem(
                    str(ann_file),
                    record,
                    "annotation id 0: pycocotools uses 0 for 'unmatched', so this person can never be a true positive",
                    "bad_value",
                )
            )
        images[iid].persons.append(PersonRecord(keypoints=kps, bbox=box, area=float(area), iscrowd=crowd, id=aid))

    if missing_area:
        notes.append(f"'area' missing in {missing_area} annotation(s): used bbox w*h")
    if missing_category:
        notes.append(f"'category_id' missing in {missing_category} annotation(s): taken as person")
    records = [r for r in images.values()]
    return finish_read(records, log, kset, skip_invalid=skip_invalid, notes=notes, advisories=advisories)


def records_to_coco(records: list[ImageRecord], keypoint_set: str | dict | KeypointSet) -> dict:
    """Build a COCO ``person_keypoints`` dict (ground truth for COCO AP) from records.

    Image and annotation ids are those of the records; ``num_keypoints`` is recounted from v > 0;
    ``area`` and ``iscrowd`` are kept; coordinates stay 0-based image pixels. ``file_name`` is the image's
    base name. Unlabelled joints are written as ``0, 0, 0``. Annotation id 0 triggers a warning because
    pycocotools can never match it.

    Returns:
        ``{"info", "licenses", "images", "annotations", "categories"}`` (JSON-serialisable; one category,
        id 1 ``person``, with the keypoint names and the 1-based skeleton).

    Raises:
        ValueError: duplicate image ids or annotation ids, or a keypoint array whose K differs from the set.
    """
    kset = get_keypoint_set(keypoint_set)
    k = kset.num_keypoints
    images: list[dict] = []
    annotations: list[dict] = []
    seen_images: set[int] = set()
    seen_anns: set[int] = set()
    zero_ids = 0
    for rec in records:
        iid = int(rec.image_id)
        if iid in seen_images:
            raise ValueError(f"records_to_coco: image id {iid} appears twice ({rec.file})")
        seen_images.add(iid)
        images.append({"id": iid, "file_name": Path(rec.file).name, "width": int(rec.width), "height": int(rec.height)})
        for p in rec.persons:
            aid = int(p.id)
            if aid in seen_anns:
                raise ValueError(f"records_to_coco: annotation id {aid} appears twice (image {iid})")
            seen_anns.add(aid)
            zero_ids += aid == 0
            kps = np.asarray(p.keypoints, dtype=np.float64)
            if kps.shape != (k, 3):
                raise ValueError(
                    f"records_to_coco: annotation {aid} (image {iid}) has keypoints of shape "
                    f"{kps.shape}, expected ({k}, 3) for keypoint set {kset.name!r}"
                )
            flat: list[float | int] = []
            for x, y, v in kps:
                flat.extend((float(x), float(y), int(v)) if v > 0 else (0.0, 0.0, 0))
            annotations.append(
                {
                    "id": aid,
                    "image_id": iid,
                    "category_id": PERSON_CATEGORY_ID,
                    "keypoints": flat,
                    "num_keypoints": int((kps[:, 2] > 0).sum()),
                    "bbox": [float(v) for v in np.asarray(p.bbox, dtype=np.float64)],
                    "area": float(p.area),
                    "iscrowd": int(bool(p.iscrowd)),
                }
            )
    if zero_ids:
        warnings.warn(
            f"records_to_coco: {zero_ids} annotation(s) with id 0; pycocotools uses 0 for 'unmatched' "
            "so they can never be true positives (renumber ids from 1)",
            UserWarning,
            stacklevel=2,
        )
    category = {
        "id": PERSON_CATEGORY_ID,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(kset.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in kset.skeleton],
    }
    return {
        "info": {"description": f"ground truth written by lightning_pose ({kset.name})"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [category],
    }

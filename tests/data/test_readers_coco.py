"""COCO reader and records_to_coco: the real sample against its raw JSON, and corrupted copies."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.data.readers import read_coco, read_dataset, records_to_coco
from lightning_pose.data.records import DatasetError


@pytest.fixture()
def coco_raw(shared_data: Path) -> dict:
    return json.loads((shared_data / "coco" / "test_coco.json").read_text())


@pytest.fixture()
def coco_copy(shared_data: Path, tmp_path: Path) -> Path:
    """A writable copy of the COCO sample images in tmp_path/images."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for f in (shared_data / "coco").glob("*.jpg"):
        shutil.copyfile(f, img_dir / f.name)
    return img_dir


def _write(tmp_path: Path, data: dict, name: str = "ann.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))  # NaN is written as the JSON extension literal NaN, which json.load accepts
    return p


def _problems_by_kind(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for p in result.problems:
        out.setdefault(p.kind, []).append(p)
    return out


def test_sample_matches_raw_json(shared_data: Path, coco_raw: dict) -> None:
    res = read_coco(shared_data / "coco" / "test_coco.json", shared_data / "coco", check_images=True)
    assert res.problems == [] and res.advisories == [] and res.notes == []
    assert res.keypoint_set.name == "coco"
    assert [r.image_id for r in res.records] == [im["id"] for im in coco_raw["images"]]
    by_id = {p.id: (r, p) for r in res.records for p in r.persons}
    assert len(by_id) == len(coco_raw["annotations"]) == 14
    for a in coco_raw["annotations"]:
        rec, p = by_id[a["id"]]
        assert rec.image_id == a["image_id"]
        raw = np.asarray(a["keypoints"], dtype=float).reshape(17, 3)
        np.testing.assert_array_equal(p.keypoints, raw)  # COCO: used as given (0,0,0 for unlabelled)
        np.testing.assert_array_equal(p.bbox, a["bbox"])
        assert p.area == a["area"] and p.iscrowd == bool(a["iscrowd"])
        assert p.num_keypoints == a["num_keypoints"]
    im0 = coco_raw["images"][0]
    r0 = res.records[0]
    assert (r0.width, r0.height) == (im0["width"], im0["height"]) == (640, 425)
    assert r0.file == (shared_data / "coco" / im0["file_name"]).resolve()
    assert r0.file.is_absolute()


def test_records_to_coco_roundtrip_and_pycocotools(shared_data: Path, coco_raw: dict, tmp_path: Path) -> None:
    res = read_coco(shared_data / "coco" / "test_coco.json", shared_data / "coco")
    # tamper: unlabel one joint; num_keypoints must be recounted
    p = res.records[0].persons[0]
    p.keypoints[0] = [5.0, 6.0, 0.0]
    gt = records_to_coco(res.records, "coco")
    assert [a["id"] for a in gt["annotations"]] == [a["id"] for a in coco_raw["annotations"]]
    a0 = gt["annotations"][0]
    assert a0["num_keypoints"] == 16 and a0["keypoints"][:3] == [0.0, 0.0, 0]
    assert a0["area"] == coco_raw["annotations"][0]["area"]
    assert gt["categories"][0]["skeleton"] == coco_raw["categories"][0]["skeleton"]
    assert gt["categories"][0]["keypoints"] == coco_raw["categories"][0]["keypoints"]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    from pycocotools.coco import COCO

    with open(os.devnull, "w") as devnull:
        import contextlib

        with contextlib.redirect_stdout(devnull):
            c = COCO(str(path))
    assert sorted(c.getImgIds()) == sorted(im["id"] for im in coco_raw["images"])
    assert c.anns[198196]["bbox"] == coco_raw["annotations"][1]["bbox"]
    # read back: same persons
    img_dir = tmp_path / "img"
    img_dir.mkdir()
    back = read_coco(path, img_dir)
    p.keypoints[0] = [0.0, 0.0, 0.0]  # what the writer made of the unlabelled joint
    for r1, r2 in zip(res.records, back.records):
        for q1, q2 in zip(r1.persons, r2.persons):
            np.testing.assert_array_equal(q1.keypoints, q2.keypoints)
            np.testing.assert_array_equal(q1.bbox, q2.bbox)
            assert (q1.id, q1.area, q1.iscrowd) == (q2.id, q2.area, q2.iscrowd)


def test_records_to_coco_warns_on_id_zero(shared_data: Path) -> None:
    res = read_coco(shared_data / "coco" / "test_coco.json", shared_data / "coco")
    res.records[0].persons[0].id = 0
    with pytest.warns(UserWarning, match="id 0"):
        records_to_coco(res.records, "coco")
    res.records[1].persons[0].id = res.records[1].persons[1].id
    with pytest.raises(ValueError, match="appears twice"):
        records_to_coco(res.records, "coco")


CORRUPTIONS = {
    # name: (mutation on the raw dict, expected kind, text that must appear in the record)
    "keypoint_count": (
        lambda d: d["annotations"][0].__setitem__("keypoints", d["annotations"][0]["keypoints"][:-3]),
        "keypoint_count",
        "annotation 442619 (image 785)",
    ),
    "nan": (
        lambda d: d["annotations"][1]["keypoints"].__setitem__(0, float("nan")),
        "non_finite",
        "annotation 198196 (image 40083)",
    ),
    "bad_visibility": (lambda d: d["annotations"][1]["keypoints"].__setitem__(2, 3), "bad_value", "annotation 198196"),
    "empty_box": (
        lambda d: d["annotations"][2]["bbox"].__setitem__(2, 0.0),
        "empty_box",
        "annotation 230195 (image 40083)",
    ),
    "unknown_image": (
        lambda d: d["annotations"][4].__setitem__("image_id", 999),
        "unknown_image",
        "annotation 460541 (image 999)",
    ),
    "dup_ann": (
        lambda d: d["annotations"][5].__setitem__("id", d["annotations"][4]["id"]),
        "duplicate_id",
        "annotation 460541",
    ),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_annotation_corruption_reported_and_skipped(
    name: str, coco_raw: dict, shared_data: Path, tmp_path: Path
) -> None:
    mutate, kind, record = CORRUPTIONS[name]
    d = copy.deepcopy(coco_raw)
    mutate(d)
    ann = _write(tmp_path, d)
    with pytest.raises(DatasetError) as ei:
        read_coco(ann, shared_data / "coco")
    assert str(ann) in str(ei.value) and record in str(ei.value)
    assert [p.kind for p in ei.value.problems].count(kind) >= 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = read_coco(ann, shared_data / "coco", skip_invalid=True)
    skip_warnings = [w for w in caught if "lightning-pose data check" in str(w.message)]
    assert len(skip_warnings) == 1 and "skipped" in str(skip_warnings[0].message)
    bad = [p for p in res.problems if p.kind == kind]
    assert bad and any(record in p.record for p in bad)
    kept = {p.id for r in res.records for p in r.persons}
    n_expected = 14 - (2 if name == "dup_ann" else 1)
    assert len(kept) == n_expected
    assert len(res.records) == 4  # images are all kept


def _image_problem(coco_raw: dict, tmp_path: Path, img_dir: Path, file_name: str, check_images: bool = True):
    d = copy.deepcopy(coco_raw)
    d["images"][1]["file_name"] = file_name
    ann = _write(tmp_path, d)
    with pytest.raises(DatasetError):
        read_coco(ann, img_dir, check_images=check_images)
    with pytest.warns(UserWarning, match="skipped"):
        res = read_coco(ann, img_dir, check_images=check_images, skip_invalid=True)
    assert [r.image_id for r in res.records] == [785, 196141, 197388]  # image 40083 and its persons dropped
    assert res.num_persons == 14 - 3
    assert len(res.problems) == 1 and "image 40083" in res.problems[0].record
    return res.problems[0]


def test_path_escapes_refused_without_opening_images(coco_raw: dict, coco_copy: Path, tmp_path: Path) -> None:
    p = _image_problem(coco_raw, tmp_path, coco_copy, "../images/000000040083.jpg", check_images=False)
    assert p.kind == "path_escape" and ".." in p.problem
    p = _image_problem(coco_raw, tmp_path, coco_copy, str(coco_copy / "000000040083.jpg"), check_images=False)
    assert p.kind == "path_escape" and "absolute" in p.problem
    # symlinks placed in the image folder are followed wherever they point (DVC / git-annex per-file links):
    # only the names in the annotation must stay inside the folder (tests/data/test_bad_data.py)
    (coco_copy / "inside.jpg").symlink_to(coco_copy / "000000040083.jpg")
    d = copy.deepcopy(coco_raw)
    d["images"][1]["file_name"] = "./inside.jpg"
    res = read_coco(_write(tmp_path, d), coco_copy, check_images=True)
    assert res.records[1].file == coco_copy.resolve() / "inside.jpg"
    with pytest.raises(DatasetError, match="does not exist"):
        read_coco(_write(tmp_path, d), tmp_path / "no_such_dir", check_images=True)


def test_image_file_problems(coco_raw: dict, coco_copy: Path, tmp_path: Path) -> None:
    p = _image_problem(coco_raw, tmp_path, coco_copy, "missing.jpg")
    assert p.kind == "missing_image" and p.file == str(coco_copy.resolve() / "missing.jpg")
    data = (coco_copy / "000000040083.jpg").read_bytes()
    (coco_copy / "half.jpg").write_bytes(data[: len(data) // 2])  # header intact, data truncated
    p = _image_problem(coco_raw, tmp_path, coco_copy, "half.jpg")
    assert p.kind == "unreadable_image" and "truncated" in p.problem
    (coco_copy / "head.jpg").write_bytes(data[:40])  # header cut
    p = _image_problem(coco_raw, tmp_path, coco_copy, "head.jpg")
    assert p.kind == "unreadable_image"
    # another image whose size differs from the annotation's width/height
    p = _image_problem(coco_raw, tmp_path, coco_copy, "000000000785.jpg")
    assert p.kind == "size_mismatch" and "640x425" in p.problem


def test_file_level_errors(tmp_path: Path, coco_raw: dict) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(DatasetError, match="malformed JSON") as ei:
        read_coco(bad, tmp_path)
    assert str(bad) in str(ei.value)
    d = {k: v for k, v in coco_raw.items() if k != "annotations"}
    with pytest.raises(DatasetError, match="'annotations' missing"):
        read_coco(_write(tmp_path, d), tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        read_coco(tmp_path / "nope.json", tmp_path)
    with pytest.raises(DatasetError, match="lists 17 keypoints but keypoint set 'aic' has 14"):
        read_coco(_write(tmp_path, coco_raw), tmp_path, keypoint_set="aic")
    with pytest.raises(ValueError, match="unknown dataset format"):
        read_dataset("voc", tmp_path / "x.json", tmp_path)


def test_non_person_ignored_missing_area_and_num_keypoints_advisory(
    coco_raw: dict, shared_data: Path, tmp_path: Path
) -> None:
    d = copy.deepcopy(coco_raw)
    d["categories"].append({"id": 2, "name": "dog", "supercategory": "animal"})
    extra = copy.deepcopy(d["annotations"][0])
    extra.update(id=1, category_id=2, keypoints=[1, 2, 3], bbox=[0, 0, -1, 0])  # invalid but not a person
    d["annotations"].append(extra)
    del d["annotations"][3]["area"]
    d["annotations"][0]["num_keypoints"] = 3
    res = read_coco(_write(tmp_path, d), shared_data / "coco")
    assert res.num_persons == 14 and res.problems == []
    p = next(p for r in res.records for p in r.persons if p.id == 1202706)
    assert math.isclose(p.area, 10.69 * 68.26)
    assert any("area" in n for n in res.notes)
    assert len(res.advisories) == 1 and "442619" in res.advisories[0].record
    assert res.advisories[0].kind == "bad_value"

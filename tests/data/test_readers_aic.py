"""AI Challenger readers: release format vs the COCO-style conversion of the same persons."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.data.readers import read_aic, read_aic_raw
from lightning_pose.data.records import DatasetError


@pytest.fixture()
def raw(shared_data: Path) -> list:
    return json.loads((shared_data / "aic_raw" / "keypoint_annotations_sample.json").read_text())


def _write(tmp_path: Path, data, name: str = "aic.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_raw_reader_against_hand_conversion(shared_data: Path, raw: list) -> None:
    res = read_aic_raw(
        shared_data / "aic_raw" / "keypoint_annotations_sample.json", shared_data / "aic", check_images=True
    )
    assert res.problems == [] and res.keypoint_set.name == "aic"
    assert [(r.image_id, r.source_id, r.file.name) for r in res.records] == [
        (i + 1, e["image_id"], e["image_id"] + ".jpg") for i, e in enumerate(raw)
    ]
    persons = [p for r in res.records for p in r.persons]
    assert [p.id for p in persons] == list(range(1, 10))
    assert [p.source_index for p in persons] == list(range(9))
    assert [p.name for p in persons] == [h for e in raw for h in e["human_annotations"]]
    # first person by hand: human1 of image 054d9c..., box [279, 55, 492, 599]
    p = persons[0]
    np.testing.assert_array_equal(p.bbox, [279, 55, 213, 544])
    assert p.area == 213 * 544
    assert p.keypoints[0].tolist() == [313, 201, 2]  # release v=1 (visible) -> 2
    assert p.keypoints[1].tolist() == [312, 313, 1]  # release v=2 (occluded) -> 1
    assert p.keypoints[7].tolist() == [0, 0, 0]  # release v=3 (not labelled) -> 0
    # every person: independent numpy conversion
    for e, r in zip(raw, res.records):
        for q, (h, box) in zip(r.persons, e["human_annotations"].items()):
            k = np.asarray(e["keypoint_annotations"][h], dtype=float).reshape(14, 3)
            v = np.select([k[:, 2] == 1, k[:, 2] == 2], [2, 1], 0)
            np.testing.assert_array_equal(q.keypoints[:, 2], v)
            np.testing.assert_array_equal(q.keypoints[v > 0, :2], k[v > 0, :2])
            np.testing.assert_array_equal(q.bbox, [box[0], box[1], box[2] - box[0], box[3] - box[1]])


def test_both_aic_readers_agree(shared_data: Path) -> None:
    coco_style = read_aic(shared_data / "aic" / "test_aic.json", shared_data / "aic", check_images=True)
    release = read_aic_raw(shared_data / "aic_raw" / "keypoint_annotations_sample.json", shared_data / "aic")
    assert coco_style.problems == [] and any("area" in n for n in coco_style.notes)
    assert [r.file for r in coco_style.records] == [r.file for r in release.records]
    a = [p for r in coco_style.records for p in r.persons]
    b = [p for r in release.records for p in r.persons]
    assert len(a) == len(b) == 9
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.keypoints, q.keypoints)
        np.testing.assert_array_equal(p.bbox, q.bbox)
        assert p.area == q.area == p.bbox[2] * p.bbox[3]
    assert [r.width for r in coco_style.records] == [900, 900, 950]


@pytest.mark.parametrize(
    "mutate,kind,record,dropped_id",
    [
        (lambda d: d[0]["keypoint_annotations"]["human2"].__setitem__(2, 4), "bad_value", "human2 (image 054d9c", 2),
        (lambda d: d[0]["keypoint_annotations"]["human2"].pop(), "keypoint_count", "human2 (image 054d9c", 2),
        (lambda d: d[1]["human_annotations"]["human1"].__setitem__(2, 400), "empty_box", "human1 (image fa436c", 4),
        (
            lambda d: d[1]["keypoint_annotations"]["human3"].__setitem__(0, float("inf")),
            "non_finite",
            "human3 (image fa436c",
            6,
        ),
        (lambda d: d[2]["keypoint_annotations"].pop("human2"), "keypoint_count", "human2 (image ff945a", 8),
    ],
)
def test_person_problems(
    mutate, kind: str, record: str, dropped_id: int, raw: list, shared_data: Path, tmp_path: Path
) -> None:
    d = copy.deepcopy(raw)
    mutate(d)
    f = _write(tmp_path, d)
    with pytest.raises(DatasetError) as ei:
        read_aic_raw(f, shared_data / "aic")
    (prob,) = ei.value.problems
    assert prob.kind == kind and prob.record.startswith(record)
    with pytest.warns(UserWarning, match="skipped 1 records"):
        res = read_aic_raw(f, shared_data / "aic", skip_invalid=True)
    assert res.num_persons == 8 and len(res.records) == 3
    # ids and source indices stay those of the full file
    assert sorted(p.id for r in res.records for p in r.persons) == sorted(set(range(1, 10)) - {dropped_id})


def test_image_problems(raw: list, shared_data: Path, tmp_path: Path) -> None:
    d = copy.deepcopy(raw)
    d[0]["image_id"] = "../aic/" + d[0]["image_id"]
    d[2]["image_id"] = "0" * 40  # no such image
    f = _write(tmp_path, d)
    with pytest.warns(UserWarning):
        res = read_aic_raw(f, shared_data / "aic", check_images=True, skip_invalid=True)
    assert sorted(p.kind for p in res.problems) == ["missing_image", "path_escape"]
    assert [r.image_id for r in res.records] == [2]
    assert [p.id for p in res.records[0].persons] == [4, 5, 6]
    d = copy.deepcopy(raw)
    d.append(copy.deepcopy(raw[1]))
    with pytest.raises(DatasetError) as ei:
        read_aic_raw(_write(tmp_path, d), shared_data / "aic")
    assert [p.kind for p in ei.value.problems] == ["duplicate_id", "duplicate_id"]
    with pytest.raises(DatasetError, match="list of AI Challenger image objects"):
        read_aic_raw(_write(tmp_path, {"a": 1}), shared_data / "aic")

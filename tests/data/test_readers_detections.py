"""Detection-file reader (COCO results format)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.data.readers import read_detections
from lightning_pose.data.records import DatasetError


@pytest.fixture()
def det_raw(shared_data: Path) -> list:
    return json.loads((shared_data / "coco" / "test_coco_det_AP_H_56.json").read_text())


def test_sample_order_and_values(shared_data: Path, det_raw: list) -> None:
    dets = read_detections(shared_data / "coco" / "test_coco_det_AP_H_56.json")
    assert len(dets) == len(det_raw) == 118
    assert [d.index for d in dets] == list(range(118))
    for d, r in zip(dets, det_raw):
        assert d.image_id == r["image_id"] and d.score == r["score"]
        np.testing.assert_array_equal(d.bbox, r["bbox"])
        assert d.bbox.dtype == np.float64 and d.bbox.shape == (4,)


def test_filters(shared_data: Path, det_raw: list) -> None:
    f = shared_data / "coco" / "test_coco_det_AP_H_56.json"
    dets = read_detections(f, image_ids={785, 40083}, min_score=0.5)
    expected = [i for i, r in enumerate(det_raw) if r["image_id"] in (785, 40083) and r["score"] >= 0.5]
    assert [d.index for d in dets] == expected and 0 < len(expected) < 118
    assert read_detections(f, image_ids=set()) == []


def test_category_filter_and_invalid_entries(det_raw: list, tmp_path: Path) -> None:
    d = copy.deepcopy(det_raw[:6])
    d[1]["category_id"] = 3  # not a person: dropped silently
    del d[2]["category_id"]  # no category: kept
    f = tmp_path / "det.json"
    f.write_text(json.dumps(d))
    assert [x.index for x in read_detections(f)] == [0, 2, 3, 4, 5]
    assert [x.index for x in read_detections(f, category_id=None)] == [0, 1, 2, 3, 4, 5]
    d[3]["bbox"] = [1, 2, 0, 5]
    d[4]["score"] = float("nan")
    d[5]["image_id"] = "785"
    f.write_text(json.dumps(d))
    with pytest.raises(DatasetError) as ei:
        read_detections(f)
    assert [(p.kind, p.record.split(" (")[0]) for p in ei.value.problems] == [
        ("empty_box", "detection 3"),
        ("non_finite", "detection 4"),
        ("bad_value", "detection 5"),
    ]
    assert all(p.file == str(f) for p in ei.value.problems)
    with pytest.warns(UserWarning, match="skipped 3 invalid"):
        assert [x.index for x in read_detections(f, skip_invalid=True)] == [0, 2]
    f.write_text(json.dumps({"bbox": []}))
    with pytest.raises(DatasetError, match="list of detections"):
        read_detections(f)

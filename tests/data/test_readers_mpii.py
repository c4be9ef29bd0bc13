"""MPII JSON reader: 1-based -> 0-based, unlabelled joints, boxes, image ids, head boxes from the .mat."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from lightning_pose.data.readers import read_dataset, read_mpii
from lightning_pose.data.records import DatasetError


@pytest.fixture()
def mpii_raw(shared_data: Path) -> list:
    return json.loads((shared_data / "mpii" / "test_mpii.json").read_text())


def _write(tmp_path: Path, data, name: str = "mpii.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_sample_against_raw_json_and_mat(shared_data: Path, mpii_raw: list) -> None:
    d = shared_data / "mpii"
    res = read_mpii(d / "test_mpii.json", d, headbox_file=d / "mpii_gt_val.mat", check_images=True)
    assert res.problems == [] and res.keypoint_set.name == "mpii"
    assert [r.image_id for r in res.records] == [1, 2, 3, 4, 5]
    assert [r.file.name for r in res.records] == [e["image"] for e in mpii_raw]
    heads = scipy.io.loadmat(str(d / "mpii_gt_val.mat"))["headboxes_src"]  # (2, 2, N), 1-based
    for i, (rec, entry) in enumerate(zip(res.records, mpii_raw)):
        (p,) = rec.persons
        assert (p.id, p.source_index) == (i + 1, i)
        joints = np.asarray(entry["joints"], dtype=float)
        vis = np.asarray(entry["joints_vis"]) == 1
        np.testing.assert_allclose(p.keypoints[vis, :2], joints[vis] - 1.0, rtol=0, atol=0)
        assert (p.keypoints[vis, 2] == 2).all()
        assert (p.keypoints[~vis] == 0).all()
        np.testing.assert_array_equal(p.center, np.asarray(entry["center"]) - 1.0)
        assert p.scale == entry["scale"]
        np.testing.assert_array_equal(p.head_box, heads[:, :, i] - 1.0)
        lo, hi = joints[vis].min(0) - 1, joints[vis].max(0) - 1
        np.testing.assert_allclose(p.bbox, [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], rtol=0, atol=1e-12)
        assert p.area == pytest.approx(p.bbox[2] * p.bbox[3])
    # third person: right/left ankle unannotated (-1,-1 with vis 0)
    p3 = res.records[2].persons[0]
    assert p3.num_keypoints == 14 and p3.keypoints[0].tolist() == [0, 0, 0]
    assert p3.keypoints[1].tolist() == [1032.0, 648.0, 2.0]  # hand: (1033, 649) 1-based
    assert (rec.width, rec.height) == (0, 0)


def test_image_ids_by_first_appearance_and_placeholders(mpii_raw: list, shared_data: Path, tmp_path: Path) -> None:
    a, b, c = copy.deepcopy(mpii_raw[:3])
    b2 = copy.deepcopy(b)
    b2["joints_vis"] = [1] * 16  # vis 1 but (-1,-1) joints must stay unlabelled
    b2["joints"][1] = [-1, -1]
    data = [b, a, b2, c, a]
    res = read_mpii(_write(tmp_path, data), shared_data / "mpii")
    assert [(r.file.name, r.image_id, [p.source_index for p in r.persons]) for r in res.records] == [
        (b["image"], 1, [0, 2]),
        (a["image"], 2, [1, 4]),
        (c["image"], 3, [3]),
    ]
    p = res.records[0].persons[1]
    assert p.id == 3 and p.keypoints[1].tolist() == [0, 0, 0] and p.num_keypoints == 15


def test_test_split_without_joints(mpii_raw: list, shared_data: Path, tmp_path: Path) -> None:
    data = [{k: e[k] for k in ("image", "center", "scale")} for e in mpii_raw]
    res = read_dataset("mpii", _write(tmp_path, data), shared_data / "mpii")
    p = res.records[0].persons[0]
    assert (p.keypoints == 0).all() and p.keypoints.shape == (16, 3)
    side = 4.718488 * 200
    np.testing.assert_allclose(p.bbox, [965 - side / 2, 339 - side / 2, side, side])
    assert p.head_box is None


@pytest.mark.parametrize(
    "mutate,kind",
    [
        (lambda e: e["joints"].pop(), "keypoint_count"),
        (lambda e: e["joints_vis"].pop(), "keypoint_count"),
        (lambda e: e["joints"][3].__setitem__(0, float("nan")), "non_finite"),
        (lambda e: e["joints_vis"].__setitem__(3, 2), "bad_value"),
        (lambda e: e.__setitem__("scale", 0), "bad_value"),
        (lambda e: e.__delitem__("center"), "bad_value"),
    ],
)
def test_person_problems(mutate, kind: str, mpii_raw: list, shared_data: Path, tmp_path: Path) -> None:
    data = copy.deepcopy(mpii_raw)
    mutate(data[1])
    f = _write(tmp_path, data)
    with pytest.raises(DatasetError) as ei:
        read_mpii(f, shared_data / "mpii")
    (prob,) = ei.value.problems
    assert prob.kind == kind and prob.record == f"person 1 (image {data[1]['image']})" and prob.file == str(f)
    with pytest.warns(UserWarning, match="skipped 1 records"):
        res = read_mpii(f, shared_data / "mpii", skip_invalid=True)
    assert sorted(p.source_index for r in res.records for p in r.persons) == [0, 2, 3, 4]


def test_image_problems_drop_all_persons_of_the_image(mpii_raw: list, shared_data: Path, tmp_path: Path) -> None:
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for e in mpii_raw[1:]:
        shutil.copyfile(shared_data / "mpii" / e["image"], img_dir / e["image"])
    data = copy.deepcopy(mpii_raw) + [copy.deepcopy(mpii_raw[0])]
    data[3]["image"] = "../" + data[3]["image"]
    f = _write(tmp_path, data)
    with pytest.warns(UserWarning):
        res = read_mpii(f, img_dir, check_images=True, skip_invalid=True)
    kinds = sorted((p.kind, p.record) for p in res.problems)
    assert kinds == [
        ("missing_image", f"image 1 ({mpii_raw[0]['image']})"),
        ("path_escape", f"image 4 (../{mpii_raw[3]['image']})"),
    ]
    assert sorted(p.source_index for r in res.records for p in r.persons) == [1, 2, 4]


def test_headbox_file_must_match_json_length(mpii_raw: list, shared_data: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, mpii_raw[:4])
    mat = shared_data / "mpii" / "mpii_gt_val.mat"
    with pytest.raises(DatasetError, match="5 persons .* 4 rows") as ei:
        read_mpii(f, shared_data / "mpii", headbox_file=mat)
    assert str(mat) in str(ei.value) and str(f) in str(ei.value)

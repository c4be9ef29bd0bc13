"""File formats: loaders validate with errors naming the file/record; writers round-trip exactly."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.io

from lightning_pose.data.readers.mpii_mat import load_mpii_gt_mat
from lightning_pose.data.records import DatasetError
from lightning_pose.evaluation import formats as fm


def test_mpii_gt_mat_real_sample(shared_data):
    g = load_mpii_gt_mat(shared_data / "mpii" / "mpii_gt_val.mat")
    assert g.num_persons == 5 and g.dataset_joints[8:10] == ["neck", "head"]
    assert g.pos_gt_src.shape == (16, 2, 5) and g.jnt_missing.dtype == bool
    assert g.jnt_missing[[0, 5]][:, [2, 3]].all() and g.jnt_missing.sum() == 4
    hb = g.headboxes_src[:, :, 0]
    assert g.head_sizes[0] == pytest.approx(0.6 * np.hypot(*(hb[1] - hb[0])), abs=1e-12)
    # 0-based helpers shift by exactly -1
    np.testing.assert_array_equal(g.joints_zero_based()[1], g.pos_gt_src[:, :, 1] - 1)


def _mat(tmp_path, **overrides):
    n = 2
    d = {
        "dataset_joints": np.array([[np.array(["j"])] * 16], dtype=object),
        "jnt_missing": np.zeros((16, n)),
        "pos_gt_src": np.ones((16, 2, n)),
        "headboxes_src": np.stack([np.zeros((2, n)), np.full((2, n), 10.0)]),
    }
    d.update(overrides)
    p = tmp_path / "gt.mat"
    scipy.io.savemat(str(p), d)
    return p


def test_mpii_gt_mat_validation(tmp_path):
    with pytest.raises(DatasetError, match=r"gt\.mat.*pos_gt_src.*expected \(16, 2, 2\)"):
        load_mpii_gt_mat(_mat(tmp_path, pos_gt_src=np.ones((16, 2, 3))))
    pos = np.ones((16, 2, 2))
    pos[4, 0, 1] = np.nan
    with pytest.raises(DatasetError, match=r"person 2: joint 4"):
        load_mpii_gt_mat(_mat(tmp_path, pos_gt_src=pos))
    missing = np.zeros((16, 2))
    missing[4, 1] = 1
    g = load_mpii_gt_mat(_mat(tmp_path, pos_gt_src=pos, jnt_missing=missing))  # NaN allowed where missing
    assert g.jnt_missing[4, 1]
    hb = np.stack([np.zeros((2, 2)), np.full((2, 2), 10.0)])
    hb[:, :, 1] = 0.0
    g = load_mpii_gt_mat(_mat(tmp_path, headboxes_src=hb))
    assert np.isnan(g.head_sizes[1]) and g.head_sizes[0] == pytest.approx(0.6 * np.sqrt(200))
    with pytest.raises(DatasetError, match="file not found"):
        load_mpii_gt_mat(tmp_path / "nope.mat")


@pytest.mark.parametrize("suffix", [".mat", ".h5", ".json"])
def test_mpii_preds_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    preds = rng.uniform(0, 500, size=(7, 16, 2))
    p = tmp_path / f"pred{suffix}"
    fm.write_mpii_preds(p, preds)
    np.testing.assert_array_equal(fm.load_mpii_preds(p, num_persons=7), preds)
    np.testing.assert_array_equal(fm.load_mpii_preds(p, zero_based=True), preds + 1.0)
    with pytest.raises(DatasetError, match=r"pred.*7 persons predicted but the GT has 5"):
        fm.load_mpii_preds(p, num_persons=5)


def test_mpii_preds_transposed_layout_and_bad_shape(tmp_path):
    preds = np.arange(3 * 16 * 2, dtype=float).reshape(3, 16, 2)
    p = tmp_path / "pred.mat"
    scipy.io.savemat(str(p), {"preds": np.transpose(preds, (2, 1, 0))})  # (2, 16, N)
    np.testing.assert_array_equal(fm.load_mpii_preds(p), preds)
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("preds", data=np.zeros((3, 15, 2)))
    with pytest.raises(DatasetError, match=r"bad\.h5: preds: shape \(3, 15, 2\)"):
        fm.load_mpii_preds(tmp_path / "bad.h5")


def test_mpii_json_gt(shared_data):
    d = shared_data / "mpii"
    g = fm.load_mpii_gt(d / "test_mpii.json", headboxes=d / "mpii_gt_val.mat")
    raw = json.loads((d / "test_mpii.json").read_text())
    np.testing.assert_array_equal(g.joints[0], np.asarray(raw[0]["joints"]))  # stays 1-based
    assert g.visible.sum() == sum(sum(p["joints_vis"]) for p in raw)
    assert np.isnan(fm.load_mpii_gt(d / "test_mpii.json").head_sizes).all()


def test_mpii_json_gt_bad_joint_count(tmp_path):
    p = tmp_path / "valid.json"
    p.write_text(json.dumps([{"image": "a.jpg", "joints": [[1, 2]] * 15, "joints_vis": [1] * 15}]))
    with pytest.raises(DatasetError, match=r"valid\.json: person 0 \(image a\.jpg\): joints shape \(15, 2\)"):
        fm.load_mpii_gt(p)


def test_coco_gt_and_results(shared_data, tmp_path):
    gt = fm.load_coco_gt(shared_data / "coco" / "test_coco.json")
    anns = [a for a in gt["annotations"]]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0} for a in anns]
    out = tmp_path / "res.json"
    fm.write_coco_results(out, results)
    back = fm.load_coco_results(out, gt=gt)
    assert [r["keypoints"] for r in back] == [[float(v) for v in a["keypoints"]] for a in anns]
    bad = [dict(results[0], image_id=123456789)]
    out.write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match=r"res\.json: result 0 \(image 123456789\): unknown image id"):
        fm.load_coco_results(out, gt=gt)
    out.write_text(json.dumps([dict(results[0], keypoints=results[0]["keypoints"][:-3])]))
    with pytest.raises(DatasetError, match="48 keypoint values, expected 51"):
        fm.load_coco_results(out, gt=gt)


def test_coco_gt_errors(shared_data, tmp_path):
    gt = json.loads((shared_data / "coco" / "test_coco.json").read_text())
    gt["annotations"][2]["keypoints"][4] = float("nan")
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(gt))  # json writes NaN
    aid = gt["annotations"][2]["id"]
    with pytest.raises(DatasetError, match=rf"gt\.json: annotation {aid}: keypoints contain NaN"):
        fm.load_coco_gt(p)
    gt["annotations"][2]["keypoints"][4] = 1.0
    gt["annotations"][3]["image_id"] = -5
    p.write_text(json.dumps(gt))
    with pytest.raises(DatasetError, match="unknown image id -5"):
        fm.load_coco_gt(p)
    p.write_text("{not json")
    with pytest.raises(DatasetError, match="invalid json"):
        fm.load_coco_gt(p)


def test_aic_release_round_trip_and_conversion(shared_data, tmp_path):
    raw = fm.load_aic_release(shared_data / "aic_raw" / "keypoint_annotations_sample.json", kind="gt")
    coco_style = json.loads((shared_data / "aic" / "test_aic.json").read_text())
    conv = fm.aic_release_to_coco(raw)
    # same persons, same keypoints/visibility remap and boxes as the toolbox's COCO-style file
    key = lambda a: (a["image_id"], a["bbox"][0], a["bbox"][1])  # noqa: E731
    ref = sorted(coco_style["annotations"], key=key)
    ours = sorted(conv["annotations"], key=key)
    assert len(ours) == len(ref) == 9
    for a, b in zip(ours, ref):
        assert a["keypoints"] == [float(v) for v in b["keypoints"]]
        assert a["bbox"] == [float(v) for v in b["bbox"]] and a["num_keypoints"] == b["num_keypoints"]
    preds = fm.aic_release_preds({e["image_id"]: np.zeros((2, 14, 2)) for e in raw})
    out = tmp_path / "aic_pred.json"
    fm.write_aic_preds(out, preds)
    back = fm.load_aic_release(out, kind="pred", known_image_ids={e["image_id"] for e in raw})
    assert back == preds and len(back[0]["keypoint_annotations"]) == 2
    with pytest.raises(DatasetError, match="unknown image id"):
        fm.load_aic_release(out, kind="pred", known_image_ids={"x"})


def test_aic_release_gt_errors(tmp_path):
    p = tmp_path / "aic.json"
    p.write_text(
        json.dumps(
            [
                {
                    "image_id": "abc",
                    "human_annotations": {"human1": [0, 0, 10, 10]},
                    "keypoint_annotations": {"human1": [1, 1, 4] * 14},
                }
            ]
        )
    )
    with pytest.raises(DatasetError, match=r"aic\.json: human1 \(image abc\): visibility codes"):
        fm.load_aic_release(p)
    p.write_text(json.dumps([{"image_id": "abc.jpg", "keypoint_annotations": {}}]))
    with pytest.raises(DatasetError, match="without extension"):
        fm.load_aic_release(p, kind="pred")

"""T4/T5: MPII PCKh against transcriptions of HRNet's evaluate and of the MATLAB toolkit; the real MPII sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from lightning_pose.data.readers.mpii_mat import load_mpii_gt_mat
from lightning_pose.data.records import DatasetError
from lightning_pose.evaluation.formats import load_mpii_gt
from lightning_pose.evaluation.pckh import MPII_PCKH_THRESHOLDS, mpii_pckh, pckh_counts, table_from_counts

NAMES = [
    "rank",
    "rkne",
    "rhip",
    "lhip",
    "lkne",
    "lank",
    "pelv",
    "thor",
    "neck",
    "head",
    "rwri",
    "relb",
    "rsho",
    "lsho",
    "lelb",
    "lwri",
]


def hrnet_evaluate(preds0, gt_file):
    """Transcription of HRNet lib/dataset/mpii.py evaluate (0-based preds, 1-based .mat GT)."""
    preds = preds0[:, :, 0:2] + 1.0
    gt = scipy.io.loadmat(gt_file)
    jnt_missing = gt["jnt_missing"]
    pos_gt_src = gt["pos_gt_src"]
    headboxes_src = gt["headboxes_src"]
    pos_pred_src = np.transpose(preds, [1, 2, 0])
    jnt_visible = 1 - jnt_missing
    uv_err = np.linalg.norm(pos_pred_src - pos_gt_src, axis=1)
    headsizes = np.linalg.norm(headboxes_src[1, :, :] - headboxes_src[0, :, :], axis=0) * 0.6
    scale = np.multiply(headsizes, np.ones((len(uv_err), 1)))
    scaled = np.multiply(np.divide(uv_err, scale), jnt_visible)
    jnt_count = np.sum(jnt_visible, axis=1)
    pck = np.divide(100.0 * np.sum(np.multiply(scaled <= 0.5, jnt_visible), axis=1), jnt_count)
    rng = np.arange(0, 0.5 + 0.01, 0.01)
    pck_all = np.zeros((len(rng), 16))
    for r, t in enumerate(rng):
        pck_all[r] = np.divide(100.0 * np.sum(np.multiply(scaled <= t, jnt_visible), axis=1), jnt_count)
    pck = np.ma.array(pck, mask=False)
    pck.mask[6:8] = True
    jnt_count = np.ma.array(jnt_count, mask=False)
    jnt_count.mask[6:8] = True
    ratio = jnt_count / np.sum(jnt_count).astype(np.float64)
    return {
        "Head": pck[9],
        "Shoulder": 0.5 * (pck[13] + pck[12]),
        "Elbow": 0.5 * (pck[14] + pck[11]),
        "Wrist": 0.5 * (pck[15] + pck[10]),
        "Hip": 0.5 * (pck[3] + pck[2]),
        "Knee": 0.5 * (pck[4] + pck[1]),
        "Ankle": 0.5 * (pck[5] + pck[0]),
        "Mean": np.sum(pck * ratio),
        "Mean@0.1": np.sum(pck_all[11, :] * ratio),
        "pckAll10": np.sum(pck_all[10, :] * ratio),
    }


def matlab_table(pred, gt, missing, head_sizes):
    """Transcription of the MATLAB logic: 14 joints, NaN GT excluded, NaN pred = inf, '<=',
    pck columns per joint + UBody (arms) + Total, Head = mean(neck, head), AUC over scale01(range)."""
    rng = [i * 0.01 for i in range(51)]
    joints14 = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9]
    gtn = gt.copy()
    gtn[missing] = np.nan
    p = np.where(np.isnan(pred), np.inf, pred)
    dist = {}
    for j in joints14:
        d = []
        for n in range(gt.shape[0]):
            if np.isnan(gtn[n, j]).any():
                d.append(np.nan)
            else:
                d.append(np.sqrt(((p[n, j] - gtn[n, j]) ** 2).sum()) / head_sizes[n])
        dist[j] = np.array(d)

    def curve(joints):
        allv = np.concatenate([dist[j] for j in joints])
        allv = allv[~np.isnan(allv)]
        return np.array([100.0 * np.mean(allv <= t) for t in rng])

    per = {j: curve([j]) for j in joints14}
    total = curve(joints14)
    ubody = curve([10, 11, 12, 13, 14, 15])
    x = np.array(rng) / 0.5
    auc = sum((x[i + 1] - x[i]) * (total[i] + total[i + 1]) / 2 for i in range(50))
    i05, i01 = 50, 10
    return {
        "Head": (per[8][i05] + per[9][i05]) / 2,
        "Shoulder": (per[12][i05] + per[13][i05]) / 2,
        "Elbow": (per[11][i05] + per[14][i05]) / 2,
        "Wrist": (per[10][i05] + per[15][i05]) / 2,
        "Hip": (per[2][i05] + per[3][i05]) / 2,
        "Knee": (per[1][i05] + per[4][i05]) / 2,
        "Ankle": (per[0][i05] + per[5][i05]) / 2,
        "UBody": ubody[i05],
        "Mean": total[i05],
        "Mean@0.1": total[i01],
        "AUC": auc,
    }


def _synthetic(seed=0, n=30):
    rng = np.random.default_rng(seed)
    gt1 = rng.uniform(50, 600, size=(n, 16, 2)).round(0)  # 1-based GT
    missing = rng.uniform(size=(n, 16)) < 0.15
    tl = rng.uniform(0, 400, size=(n, 2))
    side = rng.uniform(20, 90, size=(n, 1))
    hb = np.stack([tl, tl + side], axis=0)  # (2 corners, N, 2)
    headboxes_src = np.transpose(hb, (0, 2, 1))  # (2, 2, N)
    head_sizes = 0.6 * np.linalg.norm(hb[1] - hb[0], axis=-1)
    pred0 = gt1 - 1.0 + rng.normal(0, 1, size=(n, 1, 1)) * rng.normal(0, 12, size=(n, 16, 2))
    # exact boundary cases: d/h == 0.5 and == 0.1 with 3-4-5 scaled distances
    pred0[0, 12] = gt1[0, 12] - 1.0 + np.array([0.3, 0.4]) * head_sizes[0]
    return gt1, missing, headboxes_src, head_sizes, pred0


def _write_gt_mat(path, gt1, missing, headboxes_src):
    scipy.io.savemat(
        str(path),
        {
            "dataset_joints": np.array([[np.array([nm]) for nm in NAMES]], dtype=object),
            "jnt_missing": missing.T.astype(np.float64),
            "pos_gt_src": np.transpose(gt1, (1, 2, 0)),
            "headboxes_src": headboxes_src,
        },
    )


def test_matches_hrnet_transcription_on_saved_mat(tmp_path):
    gt1, missing, hbs, _, pred0 = _synthetic()
    path = tmp_path / "gt_valid.mat"
    _write_gt_mat(path, gt1, missing, hbs)
    g = load_mpii_gt_mat(path)
    assert g.dataset_joints == NAMES
    ref = hrnet_evaluate(pred0, path)
    joints = np.transpose(g.pos_gt_src, (2, 0, 1))
    compat = mpii_pckh(pred0 + 1.0, joints, ~g.jnt_missing.T, g.head_sizes, hrnet_compat=True).table
    for key in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"):
        assert compat[key] == pytest.approx(float(ref[key]), abs=1e-9), key
    official = mpii_pckh(pred0 + 1.0, joints, ~g.jnt_missing.T, g.head_sizes).table
    assert official["Mean@0.1"] == pytest.approx(float(ref["pckAll10"]), abs=1e-9)
    assert official["Mean@0.1"] != pytest.approx(float(ref["Mean@0.1"]), abs=1e-6)  # HRNet's 0.11 differs
    assert official["Mean"] == pytest.approx(float(ref["Mean"]), abs=1e-9)  # neck included, pelvis/thorax not


def test_matches_matlab_transcription():
    gt1, missing, _, head_sizes, pred0 = _synthetic(seed=4)
    pred1 = pred0 + 1.0
    pred1[3, 5] = np.nan  # NaN prediction -> wrong
    ours = mpii_pckh(pred1, gt1, ~missing, head_sizes).table
    ref = matlab_table(pred1, gt1, missing, head_sizes)
    for key, v in ref.items():
        assert ours[key] == pytest.approx(v, abs=1e-9), key


def test_pelvis_thorax_excluded_neck_included():
    gt = np.zeros((1, 16, 2))
    pred = np.zeros((1, 16, 2))
    pred[0, [6, 7]] = 1000.0  # wrong pelvis/thorax do not matter
    assert mpii_pckh(pred, gt, np.ones((1, 16), bool), np.array([10.0])).table["Mean"] == 100.0
    pred[0, 8] = 1000.0  # a wrong upper neck does: 13/14
    t = mpii_pckh(pred, gt, np.ones((1, 16), bool), np.array([10.0])).table
    assert t["Mean"] == pytest.approx(100 * 13 / 14, abs=1e-12)
    assert t["Head"] == 50.0  # official: mean(neck 0, head top 100)
    assert mpii_pckh(pred, gt, np.ones((1, 16), bool), np.array([10.0]), hrnet_compat=True).table["Head"] == 100.0


def test_boundary_is_inclusive():
    gt = np.zeros((1, 16, 2))
    pred = np.zeros((1, 16, 2))
    pred[0, :, 0], pred[0, :, 1] = 3.0, 4.0  # distance 5, head size 10 -> exactly 0.5
    correct, valid, _ = pckh_counts(pred, gt, np.ones((1, 16), bool), np.array([10.0]))
    assert correct[50].tolist() == [1] * 16 and correct[49].tolist() == [0] * 16


def test_missing_head_box_excluded_and_counted():
    gt = np.zeros((2, 16, 2))
    pred = np.zeros((2, 16, 2))
    pred[1] = 1000.0
    res = mpii_pckh(pred, gt, np.ones((2, 16), bool), np.array([10.0, np.nan]))
    assert res.excluded_no_headbox == 1
    assert res.table["Mean"] == 100.0 and res.valid.tolist() == [1] * 16


def test_table_from_counts_shape_check():
    with pytest.raises(ValueError, match="counts"):
        table_from_counts(np.zeros((50, 16)), np.zeros(16))
    assert len(MPII_PCKH_THRESHOLDS) == 51 and MPII_PCKH_THRESHOLDS[10] == 0.1


def test_real_sample_gt_as_prediction_is_100(shared_data):
    d = shared_data / "mpii"
    gt = load_mpii_gt(d / "test_mpii.json", headboxes=d / "mpii_gt_val.mat")
    table = mpii_pckh(gt.joints, gt.joints, gt.visible, gt.head_sizes).table
    assert set(table) == {
        "Head",
        "Shoulder",
        "Elbow",
        "Wrist",
        "Hip",
        "Knee",
        "Ankle",
        "UBody",
        "Mean",
        "Mean@0.1",
        "AUC",
    }
    assert all(v == 100.0 for v in table.values()), table
    gmat = load_mpii_gt(d / "mpii_gt_val.mat")
    assert all(v == 100.0 for v in mpii_pckh(gmat.joints, gmat.joints, gmat.visible, gmat.head_sizes).table.values())


def test_real_sample_known_offsets(shared_data):
    """Head sizes of the 5 persons: 117.96, 44.05, 78.48, 81.22, 84.37 px; persons 3 and 4 miss both ankles.
    A 30 px shift fails only person 2 at 0.5 (30/44.05 = 0.68) and everyone at 0.1:
    valid = 5 * 14 - 4 = 66, correct = 66 - 14 = 52; ankles: 2 of 3.
    A 10 px shift passes only person 1 at 0.1 (10/117.96 = 0.085): 14 of 66."""
    d = shared_data / "mpii"
    gt = load_mpii_gt(d / "test_mpii.json", headboxes=d / "mpii_gt_val.mat")
    np.testing.assert_allclose(
        gt.head_sizes, [117.96219733, 44.04588517, 78.48082568, 81.22191822, 84.36989985], atol=1e-7
    )
    t30 = mpii_pckh(gt.joints + [30.0, 0.0], gt.joints, gt.visible, gt.head_sizes).table
    assert t30["Mean"] == pytest.approx(100 * 52 / 66, abs=1e-12)
    assert t30["Ankle"] == pytest.approx(100 * 2 / 3, abs=1e-12)
    assert t30["Head"] == pytest.approx(80.0, abs=1e-12) and t30["UBody"] == pytest.approx(80.0, abs=1e-12)
    assert t30["Mean@0.1"] == 0.0
    t10 = mpii_pckh(gt.joints + [0.0, 10.0], gt.joints, gt.visible, gt.head_sizes).table
    assert t10["Mean@0.1"] == pytest.approx(100 * 14 / 66, abs=1e-12)
    assert t10["Mean"] == 100.0


def test_json_and_headbox_count_mismatch_raises(tmp_path, shared_data):
    d = shared_data / "mpii"
    data = json.loads((d / "test_mpii.json").read_text())
    short = tmp_path / "valid.json"
    short.write_text(json.dumps(data[:3]))
    with pytest.raises(DatasetError, match="3 persons"):
        load_mpii_gt(short, headboxes=d / "mpii_gt_val.mat")

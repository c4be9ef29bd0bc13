"""T1-T3: generic PCK against an independent transcription of mmpose's keypoint_pck_accuracy / keypoint_auc."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_pose.evaluation.pck import (
    bbox_normalizers,
    normalized_distances,
    pck,
    pck_auc,
    pck_counts,
    torso_normalizers,
)


# ---- reference: a plain transcription of mmpose's semantics (keypoint_eval.py), written for this test ----
def ref_distances(pred, gt, mask, norm2):
    """(K, N) distances, -1 where masked; rows with a 0 normaliser masked; norm <= 0 -> 1e6."""
    n, k, _ = pred.shape
    m = mask.copy()
    m[np.where((norm2 == 0).sum(1))[0], :] = False
    d = np.full((n, k), -1.0)
    nn = norm2.copy()
    nn[np.where(nn <= 0)] = 1e6
    d[m] = np.linalg.norm(((pred - gt) / nn[:, None, :])[m], axis=-1)
    return d.T


def ref_distance_acc(dist_row, thr):
    ok = dist_row != -1
    cnt = ok.sum()
    if cnt > 0:
        return (dist_row[ok] < thr).sum() / cnt
    return -1


def ref_pck_accuracy(pred, gt, mask, thr, norm2):
    dists = ref_distances(pred, gt, mask, norm2)
    acc = np.array([ref_distance_acc(d, thr) for d in dists])
    good = acc[acc >= 0]
    return acc, (good.mean() if len(good) else 0.0), len(good)


def ref_auc(pred, gt, mask, norm_factor, num_thrs=20):
    nor = np.tile(np.array([[norm_factor, norm_factor]]), (pred.shape[0], 1))
    total = 0.0
    for i in range(num_thrs):
        _, avg, _ = ref_pck_accuracy(pred, gt, mask, 1.0 * i / num_thrs, nor)
        total += 1.0 / num_thrs * avg
    return total


def _random_case(seed=0, n=40, k=17):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 300, size=(n, k, 2))
    pred = gt + rng.normal(0, 12, size=(n, k, 2))
    mask = rng.uniform(size=(n, k)) > 0.2
    mask[:, 3] = False  # a joint never valid (macro must skip it)
    boxes = np.concatenate([rng.uniform(0, 50, (n, 2)), rng.uniform(40, 250, (n, 2))], axis=1)  # xywh
    boxes[5, 2:] = 0.0  # zero normaliser -> instance masked
    boxes[7, 2:] = -3.0  # negative normaliser -> 1e6
    return pred, gt, mask, boxes


@pytest.mark.parametrize("thr", [0.05, 0.1, 0.2, 0.5])
def test_bbox_pck_matches_mmpose_transcription(thr):
    pred, gt, mask, boxes = _random_case()
    s = bbox_normalizers(boxes)
    res = pck(pred, gt, mask, normalizer="bbox", bboxes=boxes, thresholds=thr)
    acc, avg, cnt = ref_pck_accuracy(pred, gt, mask, thr, np.stack([s, s], axis=1))
    # integer counts: reconstruct the reference's per-joint correct counts
    dists = ref_distances(pred, gt, mask, np.stack([s, s], axis=1))
    ref_valid = (dists != -1).sum(axis=1)
    ref_correct = np.array([((d != -1) & (d < thr)).sum() for d in dists])
    np.testing.assert_array_equal(res.valid, ref_valid)
    np.testing.assert_array_equal(res.correct[0], ref_correct)
    per_joint = res.per_joint()[0]
    np.testing.assert_allclose(np.where(np.isnan(per_joint), -1, per_joint), acc, rtol=0, atol=1e-12)
    assert abs(res.macro()[0] - avg) < 1e-12
    assert int((res.valid > 0).sum()) == cnt
    assert abs(res.micro()[0] - ref_correct.sum() / ref_valid.sum()) < 1e-12
    assert res.excluded_instances == 1  # the zero box


def test_micro_and_macro_differ_and_are_named_correctly():
    # joint 0: 1 of 1 correct, joint 1: 1 of 3 correct -> macro (1 + 1/3)/2, micro 2/4
    gt = np.zeros((3, 2, 2))
    pred = np.zeros((3, 2, 2))
    pred[1:, 1, 0] = 100.0
    mask = np.array([[True, True], [False, True], [False, True]])
    res = pck_counts(pred, gt, mask, 10.0, thresholds=0.5)
    assert res.micro()[0] == pytest.approx(0.5, abs=1e-15)
    assert res.macro()[0] == pytest.approx((1 + 1 / 3) / 2, abs=1e-15)


def test_torso_and_explicit_normalizers():
    pred, gt, mask, _ = _random_case(seed=3, n=25, k=6)
    torso = torso_normalizers(gt, (4, 5))
    res = pck(pred, gt, mask, normalizer="torso", torso_pair=(4, 5), thresholds=0.2)
    acc, avg, _ = ref_pck_accuracy(pred, gt, mask, 0.2, np.stack([torso, torso], axis=1))
    assert abs(res.macro()[0] - avg) < 1e-12
    res2 = pck(pred, gt, mask, normalizer="explicit", norm=30.0, thresholds=0.2)
    _, avg2, _ = ref_pck_accuracy(pred, gt, mask, 0.2, np.full((25, 2), 30.0))
    assert abs(res2.macro()[0] - avg2) < 1e-12


def test_torso_falls_back_to_predicted_torso_below_one_pixel():
    gt = np.zeros((1, 2, 2))  # GT torso length 0
    pred = np.array([[[0.0, 0.0], [6.0, 8.0]]])  # predicted torso 10
    with pytest.warns(UserWarning, match="predicted torso"):
        s = torso_normalizers(gt, (0, 1), pred)
    assert s[0] == 10.0


@pytest.mark.parametrize("comparison,expected", [("<", 0), ("<=", 1)])
def test_threshold_boundary_3_4_5(comparison, expected):
    # distance exactly 5 px, normaliser 10 -> d == 0.5 == thr
    gt = np.array([[[10.0, 20.0]]])
    pred = np.array([[[13.0, 24.0]]])
    dist, _ = normalized_distances(pred, gt, np.ones((1, 1), bool), 10.0)
    assert dist[0, 0] == 0.5
    res = pck_counts(pred, gt, np.ones((1, 1), bool), 10.0, thresholds=0.5, comparison=comparison)
    assert res.correct[0, 0] == expected
    # the mmpose reference is strict
    if comparison == "<":
        acc, _, _ = ref_pck_accuracy(pred, gt, np.ones((1, 1), bool), 0.5, np.full((1, 2), 10.0))
        assert acc[0] == expected


def test_auc_matches_mmpose_transcription():
    pred, gt, mask, _ = _random_case(seed=7)
    ours = pck_auc(pred, gt, mask, norm_factor=30.0, num_thresholds=20)
    assert abs(ours - ref_auc(pred, gt, mask, 30.0, 20)) < 1e-12
    # hand case: every error 0 -> every threshold but thr=0 (strict <) is 1: (19/20)
    z = np.zeros((2, 3, 2))
    assert pck_auc(z, z, np.ones((2, 3), bool)) == pytest.approx(19 / 20, abs=1e-15)


def test_nan_prediction_counts_wrong_and_bad_shapes_raise():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[np.nan, 0.0], [0.0, 0.0]]])
    res = pck_counts(pred, gt, np.ones((1, 2), bool), 10.0, thresholds=0.5)
    assert res.valid.tolist() == [1, 1] and res.correct[0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="differ in shape"):
        pck_counts(np.zeros((1, 3, 2)), gt, np.ones((1, 2), bool), 1.0)
    with pytest.raises(ValueError, match="comparison"):
        pck_counts(gt, gt, np.ones((1, 2), bool), 1.0, comparison="<<")

"""OKS matrix vs pycocotools computeOks (T6); rescoring and OKS-NMS vs a loop transcription of mmpose (T9)."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest

from lightning_pose.evaluation.nms import oks_nms, oks_nms_grouped, prediction_oks_matrix, rescore
from lightning_pose.evaluation.oks import COCO_SIGMAS, compute_oks
from lightning_pose.skeletons import AIC

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


# ------------------------------------------------------------------------------------------------
# OKS matrix
# ------------------------------------------------------------------------------------------------
def _random_image(rng, n_gt, n_dt, k=17):
    anns, res = [], []
    for j in range(n_gt):
        w, h = rng.uniform(10, 200, 2)
        x, y = rng.uniform(0, 300, 2)
        kp = np.zeros((k, 3))
        kp[:, 0] = x + rng.uniform(0, w, k)
        kp[:, 1] = y + rng.uniform(0, h, k)
        kp[:, 2] = rng.choice([0, 1, 2], k)
        if j == 0:
            kp[:, 2] = 0  # num_keypoints == 0: doubled-box branch
        crowd = int(j == 1)
        anns.append(
            {
                "id": j + 1,
                "image_id": 1,
                "category_id": 1,
                "keypoints": kp.ravel().tolist(),
                "num_keypoints": int((kp[:, 2] > 0).sum()),
                "bbox": [x, y, w, h],
                "area": float(w * h * 0.6),
                "iscrowd": crowd,
            }
        )
    for i in range(n_dt):
        g = anns[i % n_gt]
        kp = np.array(g["keypoints"]).reshape(k, 3)
        bx = g["bbox"]
        kp[:, 0] = (
            rng.uniform(bx[0] - bx[2] * 1.5, bx[0] + bx[2] * 2.5, k) if i % 3 == 0 else kp[:, 0] + rng.normal(0, 8, k)
        )
        kp[:, 1] = (
            rng.uniform(bx[1] - bx[3] * 1.5, bx[1] + bx[3] * 2.5, k) if i % 3 == 0 else kp[:, 1] + rng.normal(0, 8, k)
        )
        kp[:, 2] = rng.uniform(0, 1, k)
        res.append({"image_id": 1, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": float(rng.random())})
    return anns, res


@pytest.mark.parametrize("seed", range(5))
def test_oks_matrix_matches_pycocotools_computeoks(seed):
    rng = np.random.default_rng(seed)
    anns, res = _random_image(rng, n_gt=int(rng.integers(2, 7)), n_dt=int(rng.integers(1, 25)))
    gt = {"images": [{"id": 1}], "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(copy.deepcopy(res)), "keypoints")
        ev.params.imgIds = [1]
        ev._prepare()
        ref = ev.computeOks(1, 1)
    order = np.argsort([-r["score"] for r in res], kind="mergesort")[:20]
    dt = np.array([res[i]["keypoints"] for i in order]).reshape(len(order), 17, 3)
    g = np.array([a["keypoints"] for a in anns]).reshape(len(anns), 17, 3)
    got = compute_oks(dt, g, np.array([a["area"] for a in anns]), np.array([a["bbox"] for a in anns]), COCO_SIGMAS)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    # (D, K, 2) input gives the same matrix
    np.testing.assert_array_equal(
        compute_oks(dt[:, :, :2], g, [a["area"] for a in anns], [a["bbox"] for a in anns], COCO_SIGMAS), got
    )


def test_oks_hand_computed_values():
    sig = np.full(2, 0.1)  # var = 0.04
    g = np.array([[[0.0, 0.0, 2.0], [10.0, 0.0, 0.0]]])
    d = np.array([[[2.0, 0.0], [500.0, 500.0]]])  # only the labelled joint counts
    area = np.array([100.0])
    expected = np.exp(-4.0 / 0.04 / (100.0 + np.spacing(1)) / 2)
    assert compute_oks(d, g, area, np.array([[0, 0, 10, 10]]), sig)[0, 0] == pytest.approx(expected, abs=1e-15)
    # no labelled joint: distance outside the doubled box [-10, 20] x [-10, 20], mean over both joints
    g0 = np.zeros((1, 2, 3))
    d0 = np.array([[[25.0, 0.0], [0.0, 0.0]]])  # 5 px right of the box / inside
    e = 25.0 / 0.04 / (100.0 + np.spacing(1)) / 2
    assert compute_oks(d0, g0, area, np.array([[0.0, 0.0, 10.0, 10.0]]), sig)[0, 0] == pytest.approx(
        (np.exp(-e) + 1.0) / 2, abs=1e-15
    )
    with pytest.raises(ValueError, match="keypoints"):
        compute_oks(np.zeros((1, 3, 2)), g, area, np.zeros((1, 4)), sig)


# ------------------------------------------------------------------------------------------------
# mmpose transcriptions (loop versions written from mmpose nms.py / coco_metric.py semantics)
# ------------------------------------------------------------------------------------------------
def ref_rescore(bbox_score, kpt_scores, thr):
    out = []
    for b, ks in zip(bbox_score, kpt_scores):
        total, num = 0.0, 0
        for s in ks:
            if s > thr:
                total += s
                num += 1
        out.append(b * (total / num) if num else 0.0)
    return np.array(out)


def ref_oks_iou(g, d, a_g, a_d, sigmas):
    var = (sigmas * 2) ** 2
    out = np.zeros(len(d))
    for n in range(len(d)):
        dx = d[n, :, 0] - g[:, 0]
        dy = d[n, :, 1] - g[:, 1]
        e = (dx**2 + dy**2) / var / ((a_g + a_d[n]) / 2 + np.spacing(1)) / 2
        out[n] = np.sum(np.exp(-e)) / len(e)
    return out


def ref_oks_nms(kpts, scores, areas, sigmas, thr):
    order = scores.argsort()[::-1]
    keep = []
    while len(order) > 0:
        i = order[0]
        keep.append(i)
        ovr = ref_oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas)
        order = order[np.where(ovr <= thr)[0] + 1]
    return np.array(keep, dtype=np.int64)


def test_rescore_matches_loop_reference():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.2, 1, 50)
    k = rng.uniform(0, 1, (50, 17))
    k[3] = 0.1  # nothing above the threshold -> score 0
    k[4, :] = 0.2  # exactly at the threshold: strict '>' -> 0
    k[5, 0] = 0.9
    out = rescore(b, k, 0.2)
    np.testing.assert_allclose(out, ref_rescore(b, k, 0.2), rtol=0, atol=1e-12)
    assert out[3] == 0.0 and out[4] == 0.0
    assert out[5] == pytest.approx(b[5] * np.mean(k[5][k[5] > 0.2]))


@pytest.mark.parametrize("seed", range(6))
def test_oks_nms_matches_mmpose_transcription(seed):
    rng = np.random.default_rng(seed)
    k = 17 if seed % 2 == 0 else 14
    sig = COCO_SIGMAS if k == 17 else AIC.sigmas_array()
    n_people = int(rng.integers(1, 6))
    kpts, areas = [], []
    for _ in range(n_people):
        base = rng.uniform(0, 400, (1, k, 2)) + rng.uniform(0, 100, (1, k, 2))
        for _ in range(int(rng.integers(1, 8))):  # clusters of near-duplicates
            kpts.append(base[0] + rng.normal(0, rng.uniform(0.5, 15), (k, 2)))
            areas.append(rng.uniform(2000, 20000))
    kpts = np.array(kpts)
    areas = np.array(areas)
    scores = rng.uniform(0, 1, len(kpts))
    for thr in (0.5, 0.9):
        got = oks_nms(np.concatenate([kpts, rng.uniform(0, 1, kpts.shape[:2] + (1,))], axis=2), scores, areas, sig, thr)
        ref = ref_oks_nms(kpts, scores, areas, sig, thr)
        np.testing.assert_array_equal(got, ref)
    m = prediction_oks_matrix(kpts, areas, sig)
    for i in range(len(kpts)):
        np.testing.assert_array_equal(m[i], ref_oks_iou(kpts[i], kpts, areas[i], areas, sig))


def test_oks_nms_threshold_is_strict_and_duplicates_are_removed():
    k = 17
    a = np.tile(np.linspace(0, 100, k)[:, None], (1, 2))
    kpts = np.stack([a, a, a + 1000])
    scores = np.array([0.5, 0.9, 0.7])
    areas = np.full(3, 5000.0)
    # identical poses: OKS == 1.0 -> the lower-scored copy is removed even at thr 0.9
    np.testing.assert_array_equal(oks_nms(kpts, scores, areas, COCO_SIGMAS, 0.9), [1, 2])
    # OKS == 1.0 is not > 1.0: kept
    np.testing.assert_array_equal(oks_nms(kpts, scores, areas, COCO_SIGMAS, 1.0), [1, 2, 0])
    assert oks_nms(np.zeros((0, k, 2)), np.zeros(0), np.zeros(0), COCO_SIGMAS).shape == (0,)


def test_oks_nms_grouped_equals_per_image_calls():
    rng = np.random.default_rng(3)
    n = 60
    groups = rng.integers(0, 5, n)
    kpts = rng.uniform(0, 300, (5, 17, 2))[groups] + rng.normal(0, 3, (n, 17, 2))  # one cluster per group
    scores = rng.uniform(0, 1, n)
    areas = rng.uniform(500, 3000, n)
    got = oks_nms_grouped(groups, kpts, scores, areas, COCO_SIGMAS, 0.5)
    expected = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        expected.extend(idx[ref_oks_nms(kpts[idx], scores[idx], areas[idx], COCO_SIGMAS, 0.5)])
    np.testing.assert_array_equal(got, np.sort(expected))
    assert len(got) < n


def test_evaluation_core_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; import lightning_pose.evaluation.coco, lightning_pose.evaluation.oks, "
        "lightning_pose.evaluation.nms, lightning_pose.evaluation.aic; "
        "bad = [m for m in ('torch', 'lightning', 'pycocotools', 'xtcocotools') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

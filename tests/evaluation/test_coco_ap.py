"""COCO keypoint AP/AR of lightning_pose.evaluation.coco against pycocotools / xtcocotools (docs/metrics.md#coco-keypoint-ap)."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from reference_tools import xtcocotools_modules

from lightning_pose.data.records import DatasetError
from lightning_pose.evaluation.aic import AIC_SIGMAS
from lightning_pose.evaluation.coco import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    STAT_NAMES,
    CocoKeypointEvaluator,
    evaluate_coco_keypoints,
)

pycoco = pytest.importorskip("pycocotools.cocoeval")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

TOL = 1e-10


# ------------------------------------------------------------------------------------------------
# synthetic data
# ------------------------------------------------------------------------------------------------
def make_gt(rng, n_img=20, max_p=6, k=17, crowd_p=0.05, zero_p=0.05, first_id=1, with_area=True, n_cat=1):
    images = [{"id": int(i * 7 + 3), "width": 640, "height": 480} for i in range(n_img)]
    anns = []
    aid = first_id
    for im in images:
        for _ in range(int(rng.integers(0, max_p + 1))):
            w, h = rng.uniform(5, 300), rng.uniform(5, 300)
            x, y = rng.uniform(0, 300), rng.uniform(0, 200)
            kp = np.zeros((k, 3))
            kp[:, 0] = x + rng.uniform(0, w, k)
            kp[:, 1] = y + rng.uniform(0, h, k)
            kp[:, 2] = rng.choice([0, 1, 2], size=k, p=[0.3, 0.2, 0.5])
            if rng.random() < zero_p:
                kp[:, 2] = 0
            kp[kp[:, 2] == 0, :2] = 0
            ann = {
                "id": aid,
                "image_id": im["id"],
                "category_id": int(rng.integers(1, n_cat + 1)),
                "keypoints": kp.ravel().tolist(),
                "num_keypoints": int((kp[:, 2] > 0).sum()),
                "bbox": [x, y, w, h],
                "iscrowd": int(rng.random() < crowd_p),
            }
            if with_area:
                ann["area"] = float(w * h * rng.uniform(0.3, 0.9))
            anns.append(ann)
            aid += 1
    cats = [{"id": c, "name": f"c{c}"} for c in range(1, n_cat + 1)]
    return {"images": images, "annotations": anns, "categories": cats}


def make_results(rng, gt, jitter=5.0, fp_per_img=2, miss_p=0.1, k=17, bbox=False, ties=False, zero_score_p=0.0):
    def score():
        return float(np.round(rng.random(), 1)) if ties else float(rng.random())

    res = []
    for a in gt["annotations"]:
        if rng.random() < miss_p:
            continue
        kp = np.array(a["keypoints"], float).reshape(k, 3).copy()
        x, y, w, h = a["bbox"]
        lab = kp[:, 2] > 0
        kp[~lab, 0] = x + rng.uniform(0, w, (~lab).sum())
        kp[~lab, 1] = y + rng.uniform(0, h, (~lab).sum())
        kp[:, :2] += rng.normal(0, jitter * rng.uniform(0.1, 2), (k, 2))
        kp[:, 2] = rng.uniform(0, 1, k)
        if rng.random() < zero_score_p:
            kp[:, 2] = 0
        r = {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "keypoints": kp.ravel().tolist(),
            "score": score(),
        }
        if bbox:
            r["bbox"] = [
                float(kp[:, 0].min()),
                float(kp[:, 1].min()),
                float(np.ptp(kp[:, 0]) * rng.uniform(0.5, 1.5)),
                float(np.ptp(kp[:, 1])),
            ]
        res.append(r)
    n_cat = len(gt["categories"])
    for im in gt["images"]:
        for _ in range(int(rng.integers(0, fp_per_img + 1))):
            kp = np.zeros((k, 3))
            w, h = rng.uniform(5, 300, 2)
            kp[:, 0] = rng.uniform(0, 300) + rng.uniform(0, w, k)
            kp[:, 1] = rng.uniform(0, 200) + rng.uniform(0, h, k)
            kp[:, 2] = rng.uniform(0, 1, k) if rng.random() >= zero_score_p else 0.0
            r = {
                "image_id": im["id"],
                "category_id": int(rng.integers(1, n_cat + 1)),
                "keypoints": kp.ravel().tolist(),
                "score": score(),
            }
            if bbox:
                r["bbox"] = [float(kp[:, 0].min()), float(kp[:, 1].min()), float(w), float(h)]
            res.append(r)
    rng.shuffle(res)
    return res


def pycocotools_stats(gt, res, img_ids=None, sigmas=None):
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(res))  # loadRes mutates the dicts
        ev = COCOeval(cg, cd, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array(ev.stats)


def xtcocotools_stats(gt, res, sigmas, use_area):
    xc, xe = xtcocotools_modules()
    with contextlib.redirect_stdout(io.StringIO()):
        cg = xc.COCO()
        cg.dataset = copy.deepcopy(gt)
        for a in cg.dataset["annotations"]:
            a.setdefault("iscrowd", 0)  # xtcocotools needs the key (the AIC sample file has none)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(res))
        ev = xe.COCOeval(cg, cd, "keypoints", np.asarray(sigmas), use_area=use_area)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array(ev.stats)


def xtcocotools_rules_via_pycocotools(gt, res, sigmas, use_area=True, drop_zero_score=False):
    """pycocotools on inputs rewritten to xtcocotools' rules: with ``use_area=False`` every GT's OKS scale and
    area-range area is ``0.53 * w * h`` of its box and ``num_keypoints`` is recounted from v > 0; with
    ``drop_zero_score`` the detections whose keypoint scores are all <= 0 are removed first."""
    gt = copy.deepcopy(gt)
    for a in gt["annotations"]:
        a.setdefault("iscrowd", 0)
        if not use_area:
            a["area"] = a["bbox"][2] * a["bbox"][3] * 0.53
            a["num_keypoints"] = int(np.count_nonzero(np.asarray(a["keypoints"], float)[2::3] > 0))
    if drop_zero_score:
        res = [r for r in res if np.any(np.asarray(r["keypoints"], float)[2::3] > 0)]
    return pycocotools_stats(gt, res, sigmas=sigmas)


def ours(gt, res, **kw):
    out = evaluate_coco_keypoints(gt, res, **kw)
    assert list(out) == list(STAT_NAMES)
    return np.array([out[k] for k in STAT_NAMES])


# ------------------------------------------------------------------------------------------------
# parity with pycocotools
# ------------------------------------------------------------------------------------------------
def test_threshold_constants_are_pycocotools_floats():
    assert IOU_THRESHOLDS[8] == 0.8999999999999999
    assert IOU_THRESHOLDS.shape == (10,) and RECALL_THRESHOLDS.shape == (101,)
    p = pycoco.Params(iouType="keypoints")
    assert np.array_equal(IOU_THRESHOLDS, p.iouThrs) and np.array_equal(RECALL_THRESHOLDS, p.recThrs)


@pytest.mark.parametrize("seed", range(14))
def test_random_cases_match_pycocotools(seed):
    rng = np.random.default_rng(seed)
    gt = make_gt(rng, n_img=16, max_p=int(rng.integers(1, 10)), crowd_p=0.1, zero_p=0.1)
    res = make_results(
        rng,
        gt,
        jitter=float(rng.uniform(0.5, 25)),
        fp_per_img=int(rng.integers(0, 26)),
        bbox=seed % 3 == 0,
        ties=seed % 2 == 1,
    )
    ref = pycocotools_stats(gt, res)
    got = ours(gt, res)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


def test_perfect_predictions_score_one():
    rng = np.random.default_rng(100)
    gt = make_gt(rng, n_img=10, max_p=4, crowd_p=0.0, zero_p=0.0)
    res = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
    ]
    got = ours(gt, res)
    ref = pycocotools_stats(gt, res)
    np.testing.assert_allclose(got, ref, atol=TOL)
    assert got[0] == pytest.approx(1.0) and got[5] == pytest.approx(1.0)


def test_gt_id_zero_is_a_normal_id():
    """pycocotools stores matches as GT ids with 0 = unmatched: a GT with id 0 can never be a TP there.

    We treat id 0 as a normal id: our result equals pycocotools on the same data with shifted ids.
    """
    rng = np.random.default_rng(7)
    gt0 = make_gt(rng, n_img=1, max_p=0, first_id=0)
    gt0["annotations"] = []
    kp = np.zeros((17, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = np.linspace(10, 100, 17), np.linspace(20, 200, 17), 2
    for i in range(3):
        gt0["annotations"].append(
            {
                "id": i,
                "image_id": 3,
                "category_id": 1,
                "keypoints": (kp + [i * 150, 0, 0]).ravel().tolist(),
                "num_keypoints": 17,
                "bbox": [10 + i * 150, 20, 90, 180],
                "area": 9000.0,
                "iscrowd": 0,
            }
        )
    res = [
        {"image_id": 3, "category_id": 1, "keypoints": a["keypoints"], "score": 0.9 - 0.1 * j}
        for j, a in enumerate(gt0["annotations"])
    ]
    shifted = copy.deepcopy(gt0)
    for a in shifted["annotations"]:
        a["id"] += 1000
    got = ours(gt0, res)
    np.testing.assert_allclose(got, pycocotools_stats(shifted, res), atol=TOL)
    assert got[0] == pytest.approx(1.0)
    # the pycocotools bug this guards against: the id-0 GT's match counts as a false positive
    assert pycocotools_stats(gt0, res)[0] < 0.99
    # random data with ids starting at 0
    rng = np.random.default_rng(8)
    gt0 = make_gt(rng, n_img=12, max_p=5, first_id=0)
    res = make_results(rng, gt0, jitter=2.0)
    shifted = copy.deepcopy(gt0)
    for a in shifted["annotations"]:
        a["id"] += 1
    np.testing.assert_allclose(ours(gt0, res), pycocotools_stats(shifted, res), atol=TOL)


def test_area_range_edges_and_bbox_key():
    """GT areas and detection areas exactly at 32^2 and 96^2 (closed ranges), dt area from 'bbox'."""
    rng = np.random.default_rng(3)
    gt = make_gt(rng, n_img=12, max_p=5, crowd_p=0.0)
    edges = [32.0**2, 96.0**2, 32.0**2 - 1e-9, 96.0**2 + 1e-9]
    for i, a in enumerate(gt["annotations"]):
        a["area"] = edges[i % 4] if i % 2 == 0 else a["area"]
    for with_bbox in (True, False):
        res = make_results(rng, gt, jitter=3.0, fp_per_img=3, bbox=with_bbox)
        for i, r in enumerate(res):
            if with_bbox and i % 3 == 0:
                r["bbox"] = (
                    [r["bbox"][0], r["bbox"][1], 32.0, 32.0] if i % 2 else [r["bbox"][0], r["bbox"][1], 48.0, 192.0]
                )
        np.testing.assert_allclose(ours(gt, res), pycocotools_stats(gt, res), atol=TOL)


def test_bbox_only_on_first_result_decides_area_source():
    """loadRes looks only at results[0] for 'bbox'; with it, every result's area is its bbox w*h."""
    rng = np.random.default_rng(4)
    gt = make_gt(rng, n_img=8, max_p=4, crowd_p=0.0)
    res = make_results(rng, gt, jitter=3.0, bbox=True)
    with_bbox = ours(gt, res)
    np.testing.assert_allclose(with_bbox, pycocotools_stats(gt, res), atol=TOL)
    no_bbox = [{k: v for k, v in r.items() if k != "bbox"} for r in res]
    np.testing.assert_allclose(ours(gt, no_bbox), pycocotools_stats(gt, no_bbox), atol=TOL)
    res[3].pop("bbox")
    with pytest.raises(ValueError, match="bbox"):
        ours(gt, res)


def test_more_than_20_detections_and_score_ties():
    rng = np.random.default_rng(5)
    gt = make_gt(rng, n_img=6, max_p=12, crowd_p=0.1)
    res = make_results(rng, gt, jitter=4.0, fp_per_img=30, ties=True)
    # many exact duplicates with equal scores: order of results decides (stable mergesort)
    res += copy.deepcopy(res[:40])
    for r in res[::3]:
        r["score"] = 0.5
    np.testing.assert_allclose(ours(gt, res), pycocotools_stats(gt, res), atol=TOL)
    np.testing.assert_allclose(ours(gt, res, max_dets=20), ours(gt, res), atol=0)


def test_duplicate_gts_tie_on_oks_and_crowd_rematching():
    rng = np.random.default_rng(6)
    gt = make_gt(rng, n_img=6, max_p=4, crowd_p=0.0, zero_p=0.0)
    nxt = max(a["id"] for a in gt["annotations"]) + 1
    extra = []
    for a in gt["annotations"][::2]:
        dup = copy.deepcopy(a)
        dup["id"] = nxt
        nxt += 1
        extra.append(dup)
        crowd = copy.deepcopy(a)
        crowd["id"], crowd["iscrowd"] = nxt, 1
        nxt += 1
        extra.append(crowd)
    gt["annotations"] += extra
    res = make_results(rng, gt, jitter=1.0, fp_per_img=2)
    res += copy.deepcopy(res)  # each GT gets two candidate detections
    np.testing.assert_allclose(ours(gt, res), pycocotools_stats(gt, res), atol=TOL)


def test_img_ids_subset_and_images_without_detections():
    rng = np.random.default_rng(9)
    gt = make_gt(rng, n_img=20, max_p=5)
    res = make_results(rng, gt, jitter=3.0)
    no_det = {gt["images"][i]["id"] for i in (1, 4, 7)}
    res = [r for r in res if r["image_id"] not in no_det]
    np.testing.assert_allclose(ours(gt, res), pycocotools_stats(gt, res), atol=TOL)
    subset = [im["id"] for im in gt["images"][::3]]
    np.testing.assert_allclose(ours(gt, res, img_ids=subset), pycocotools_stats(gt, res, img_ids=subset), atol=TOL)
    # partial evaluation differs from full evaluation (the guarded mistake)
    assert not np.allclose(ours(gt, res, img_ids=subset), ours(gt, res))


def test_empty_results_give_zero_where_pycocotools_raises():
    rng = np.random.default_rng(10)
    gt = make_gt(rng, n_img=5, max_p=3, crowd_p=0.0, zero_p=0.0)
    for a in gt["annotations"]:
        a["area"] = 50.0**2  # all medium: no large GT -> APl/ARl undefined
    got = dict(zip(STAT_NAMES, ours(gt, [])))
    assert got["AP"] == 0.0 and got["AR"] == 0.0 and got["APm"] == 0.0
    assert got["APl"] == -1.0 and got["ARl"] == -1.0
    with pytest.raises(IndexError):
        pycocotools_stats(gt, [])
    # same as pycocotools with one detection in an image without GT (a pure false positive far away)
    empty_img = {"id": 99999, "width": 10, "height": 10}
    gt2 = copy.deepcopy(gt)
    gt2["images"].append(empty_img)
    fp = [{"image_id": 99999, "category_id": 1, "keypoints": [1.0, 1.0, 1.0] * 17, "score": 0.5}]
    np.testing.assert_allclose(ours(gt2, fp), pycocotools_stats(gt2, fp), atol=TOL)


def test_several_categories_match_pycocotools():
    rng = np.random.default_rng(11)
    gt = make_gt(rng, n_img=10, max_p=6, n_cat=2)
    gt["categories"].append({"id": 3, "name": "unused"})
    res = make_results(rng, gt, jitter=4.0, fp_per_img=4)
    res.append({"image_id": gt["images"][0]["id"], "category_id": 7, "keypoints": [1.0] * 51, "score": 1.0})
    np.testing.assert_allclose(ours(gt, res), pycocotools_stats(gt, res), atol=TOL)


def test_array_results_equal_list_results_and_evaluator_is_reusable():
    rng = np.random.default_rng(12)
    gt = make_gt(rng, n_img=10, max_p=5)
    res = make_results(rng, gt, jitter=4.0)
    ev = CocoKeypointEvaluator(gt)
    arrays = {
        "image_id": np.array([r["image_id"] for r in res]),
        "keypoints": np.array([r["keypoints"] for r in res]).reshape(len(res), 17, 3),
        "score": np.array([r["score"] for r in res]),
    }
    a = ev.evaluate(arrays)
    b = ev.evaluate(res)
    assert a == b
    arrays["keypoints"] = arrays["keypoints"][:, :, :2]
    assert ev.evaluate(arrays) == b
    arrays["area"] = np.full(len(res), 5000.0)
    c = ev.evaluate(arrays)
    res_bbox = [dict(r, bbox=[0.0, 0.0, 50.0, 100.0]) for r in res]
    np.testing.assert_allclose([c[k] for k in STAT_NAMES], pycocotools_stats(gt, res_bbox), atol=TOL)


# ------------------------------------------------------------------------------------------------
# xtcocotools modes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_use_area_false_matches_xtcocotools_on_aic_style_data(seed):
    rng = np.random.default_rng(200 + seed)
    gt = make_gt(rng, n_img=15, max_p=6, k=14, with_area=False, crowd_p=0.0)
    res = make_results(rng, gt, k=14, jitter=float(rng.uniform(1, 10)), fp_per_img=3, ties=seed % 2 == 0)
    ref = xtcocotools_stats(gt, res, AIC_SIGMAS, use_area=False)
    np.testing.assert_allclose(ours(gt, res, sigmas=AIC_SIGMAS, use_area=False), ref, atol=TOL)


@pytest.mark.parametrize("seed", range(4))
def test_use_area_false_matches_xtcocotools_rules_via_pycocotools(seed):
    rng = np.random.default_rng(200 + seed)
    gt = make_gt(rng, n_img=15, max_p=6, k=14, with_area=False, crowd_p=0.0)
    res = make_results(rng, gt, k=14, jitter=float(rng.uniform(1, 10)), fp_per_img=3, ties=seed % 2 == 0)
    ref = xtcocotools_rules_via_pycocotools(gt, res, AIC_SIGMAS, use_area=False)
    got = ours(gt, res, sigmas=AIC_SIGMAS, use_area=False)
    np.testing.assert_allclose(got, ref, atol=TOL)
    assert 0 < got[0] < 1


def test_drop_zero_score_matches_xtcocotools_rules_via_pycocotools():
    rng = np.random.default_rng(300)
    gt = make_gt(rng, n_img=15, max_p=5)
    res = make_results(rng, gt, jitter=2.0, fp_per_img=3, zero_score_p=0.3)
    ref = xtcocotools_rules_via_pycocotools(gt, res, None, drop_zero_score=True)
    got = ours(gt, res, drop_zero_score=True)
    np.testing.assert_allclose(got, ref, atol=TOL)
    assert not np.allclose(got, ours(gt, res))


def test_drop_zero_score_matches_xtcocotools():
    rng = np.random.default_rng(300)
    gt = make_gt(rng, n_img=15, max_p=5)
    res = make_results(rng, gt, jitter=2.0, fp_per_img=3, zero_score_p=0.3)
    ref = xtcocotools_stats(
        gt,
        res,
        np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
        / 10.0,
        use_area=True,
    )
    got = ours(gt, res, drop_zero_score=True)
    np.testing.assert_allclose(got, ref, atol=TOL)
    # pycocotools keeps them: the two modes differ on this data
    np.testing.assert_allclose(ours(gt, res), pycocotools_stats(gt, res), atol=TOL)
    assert not np.allclose(got, ours(gt, res))


# ------------------------------------------------------------------------------------------------
# real samples
# ------------------------------------------------------------------------------------------------
def test_real_coco_sample_with_jittered_gt_results(shared_data):
    gt = json.loads((shared_data / "coco" / "test_coco.json").read_text())
    rng = np.random.default_rng(1)
    res = []
    for a in gt["annotations"]:
        kp = np.array(a["keypoints"], float).reshape(17, 3)
        kp[:, :2] += rng.normal(0, 3.0, (17, 2))
        kp[:, 2] = rng.uniform(0.1, 1, 17)
        res.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kp.ravel().tolist(),
                "score": float(rng.random()),
            }
        )
    got = ours(gt, res)
    np.testing.assert_allclose(got, pycocotools_stats(gt, res), atol=TOL)
    assert 0 < got[0] < 1


def _real_aic_sample_with_jittered_results(shared_data):
    """The shared AIC sample and two jittered copies of each of its persons as results."""
    gt = json.loads((shared_data / "aic" / "test_aic.json").read_text())
    rng = np.random.default_rng(2)
    res = []
    for a in gt["annotations"]:
        for rep in range(2):
            kp = np.array(a["keypoints"], float).reshape(14, 3)
            kp[:, :2] += rng.normal(0, 2.0 + 6 * rep, (14, 2))
            kp[:, 2] = rng.uniform(0.1, 1, 14)
            res.append(
                {
                    "image_id": a["image_id"],
                    "category_id": 1,
                    "keypoints": kp.ravel().tolist(),
                    "score": float(rng.random()),
                }
            )
    return gt, res


def test_real_aic_sample_matches_xtcocotools(shared_data):
    gt, res = _real_aic_sample_with_jittered_results(shared_data)
    ref = xtcocotools_stats(gt, res, AIC_SIGMAS, use_area=False)
    np.testing.assert_allclose(ours(gt, res, sigmas=AIC_SIGMAS, use_area=False), ref, atol=TOL)


def test_real_aic_sample_matches_xtcocotools_rules_via_pycocotools(shared_data):
    gt, res = _real_aic_sample_with_jittered_results(shared_data)
    ref = xtcocotools_rules_via_pycocotools(gt, res, AIC_SIGMAS, use_area=False)
    got = ours(gt, res, sigmas=AIC_SIGMAS, use_area=False)
    np.testing.assert_allclose(got, ref, atol=TOL)
    assert 0 < got[0] < 1
    with pytest.raises(DatasetError, match="use_area=False"):
        ours(gt, res, sigmas=AIC_SIGMAS)


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(13)
    gt = make_gt(rng, n_img=3, max_p=2, crowd_p=0.0)
    res = make_results(rng, gt, fp_per_img=1)
    bad = copy.deepcopy(res)
    bad[0]["image_id"] = 123456
    with pytest.raises(ValueError, match="123456"):
        ours(gt, bad)
    bad = copy.deepcopy(res)
    bad[1]["keypoints"] = bad[1]["keypoints"][:-3]
    with pytest.raises(ValueError, match=r"result #1 .*48 keypoint values"):
        ours(gt, bad)
    bad = copy.deepcopy(res)
    bad[0]["score"] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        ours(gt, bad)
    g2 = copy.deepcopy(gt)
    g2["annotations"][0]["keypoints"] = [1.0] * 50
    with pytest.raises(DatasetError, match=f"annotation {g2['annotations'][0]['id']}"):
        CocoKeypointEvaluator(g2, gt_name="person_keypoints_val.json")
    with pytest.raises(ValueError, match="not images"):
        ours(gt, res, img_ids=[1])
    g3 = copy.deepcopy(gt)
    for a in g3["annotations"]:
        a["keypoints"] = a["keypoints"][:42]
    with pytest.raises(ValueError, match="sigmas"):
        CocoKeypointEvaluator(g3)

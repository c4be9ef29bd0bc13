"""Official AI Challenger score vs a Python-3 loop transcription of keypoint_eval.py (final version) (T10)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from lightning_pose.data.records import DatasetError
from lightning_pose.evaluation.aic import (
    AIC_SIGMAS,
    aic_official_score,
    aic_score_from_arrays,
    coco_style_aic_to_release,
)
from lightning_pose.skeletons import AIC


# ------------------------------------------------------------------------------------------------
# reference: a straightforward transcription of the official scorer's logic (Python 3)
# ------------------------------------------------------------------------------------------------
def ref_compute_oks(anno, predict, delta):
    anno_keys = list(anno["keypoint_annos"].keys())
    predict_keys = list(predict.keys())
    oks = np.zeros((len(anno_keys), len(predict_keys)))
    if len(predict_keys) == 0:
        return oks.T
    for i, ak in enumerate(anno_keys):
        akp = np.reshape(anno["keypoint_annos"][ak], (14, 3))
        visible = akp[:, 2] == 1
        bbox = anno["human_annos"][ak]
        scale = np.float32((bbox[3] - bbox[1]) * (bbox[2] - bbox[0]))
        if np.sum(visible) == 0:
            for j in range(len(predict_keys)):
                oks[i, j] = 0
        else:
            for j, pk in enumerate(predict_keys):
                pkp = np.reshape(predict[pk], (14, 3))
                dis = np.sum((akp[visible, :2] - pkp[visible, :2]) ** 2, axis=1)
                oks[i, j] = np.mean(np.exp(-dis / 2 / delta[visible] ** 2 / (scale + 1)))
    return oks


def ref_keypoint_eval(gt_list, pred_list):
    annotations = {"image_ids": [], "annos": {}, "delta": 2 * np.array(AIC_SIGMAS)}
    for a in gt_list:
        annotations["image_ids"].append(a["image_id"])
        annotations["annos"][a["image_id"]] = {
            "human_annos": a["human_annotations"],
            "keypoint_annos": a["keypoint_annotations"],
        }
    predictions = {"image_ids": [], "annos": {}}
    for p in pred_list:
        predictions["image_ids"].append(p["image_id"].split(".")[0])
        predictions["annos"][p["image_id"]] = {"keypoint_annos": p["keypoint_annotations"]}
    oks_all = np.zeros(0)
    oks_num = 0
    pred_set = set(predictions["image_ids"])
    for image_id in annotations["image_ids"]:
        if image_id in pred_set:
            oks = ref_compute_oks(
                annotations["annos"][image_id], predictions["annos"][image_id]["keypoint_annos"], annotations["delta"]
            )
            oks_all = np.concatenate((oks_all, np.max(oks, axis=1)), axis=0)
            oks_num += np.max(oks.shape)
        else:
            gt_n = len(annotations["annos"][image_id]["human_annos"].keys())
            oks_all = np.concatenate((oks_all, np.zeros(gt_n)), axis=0)
            oks_num += gt_n
    ap = [np.sum(oks_all > t) / np.float32(oks_num) for t in np.linspace(0.5, 0.95, 10)]
    return float(np.mean(ap))


# ------------------------------------------------------------------------------------------------
def _load_raw(shared_data):
    return json.loads((shared_data / "aic_raw" / "keypoint_annotations_sample.json").read_text())


def _gt_as_pred(gt, rng=None, sigma=0.0):
    preds = []
    for e in gt:
        ka = {}
        for name, kp in e["keypoint_annotations"].items():
            a = np.array(kp, float).reshape(14, 3)
            if rng is not None:
                a[:, :2] += rng.normal(0, sigma, (14, 2))
            a[:, 2] = 0.9
            ka[name] = a.ravel().tolist()
        preds.append({"image_id": e["image_id"], "keypoint_annotations": ka})
    return preds


# the ``delta / 2`` table of the official AI Challenger keypoint evaluation script, transcribed independently
OFFICIAL_AIC_SIGMAS = [
    0.01388152,
    0.01515228,
    0.01057665,
    0.01417709,
    0.01497891,
    0.01402144,
    0.03909642,
    0.03686941,
    0.01981803,
    0.03843971,
    0.03412318,
    0.02415081,
    0.01291456,
    0.01236173,
]


def test_sigmas_match_keypoint_set():
    np.testing.assert_array_equal(AIC_SIGMAS, AIC.sigmas_array())
    np.testing.assert_array_equal(AIC_SIGMAS, np.array(OFFICIAL_AIC_SIGMAS))


def test_gt_as_prediction_scores_one(shared_data):
    gt = _load_raw(shared_data)
    assert aic_official_score(gt, _gt_as_pred(gt)) == pytest.approx(1.0, abs=1e-12)
    assert ref_keypoint_eval(gt, _gt_as_pred(gt)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [1.0, 4.0, 10.0, 25.0])
def test_jittered_predictions_match_reference(shared_data, sigma):
    gt = _load_raw(shared_data)
    preds = _gt_as_pred(gt, np.random.default_rng(int(sigma)), sigma)
    got = aic_official_score(gt, preds)
    assert got == pytest.approx(ref_keypoint_eval(gt, preds), abs=1e-7)
    if sigma >= 10:
        assert got < 1.0


def test_adversarial_cases_match_reference(shared_data):
    gt = _load_raw(shared_data)
    rng = np.random.default_rng(5)
    preds = _gt_as_pred(gt, rng, 3.0)
    # extra predictions inflate the denominator
    p0 = preds[0]["keypoint_annotations"]
    p0["extra1"] = (np.array(p0["human1"]) + 400).tolist()
    p0["extra2"] = (np.array(p0["human1"]) + 800).tolist()
    # one prediction serving several GTs: the second image's preds collapse to one copy
    names = list(preds[1]["keypoint_annotations"])
    preds[1]["keypoint_annotations"] = {names[0]: preds[1]["keypoint_annotations"][names[0]]}
    # a GT with no visible joint (v == 1) at all: its OKS is 0 but it still counts
    gt2 = copy.deepcopy(gt)
    h = next(iter(gt2[2]["keypoint_annotations"]))
    kp = np.array(gt2[2]["keypoint_annotations"][h]).reshape(14, 3)
    kp[kp[:, 2] == 1, 2] = 2
    gt2[2]["keypoint_annotations"][h] = kp.ravel().tolist()
    got = aic_official_score(gt2, preds)
    assert got == pytest.approx(ref_keypoint_eval(gt2, preds), abs=1e-7)
    # a missing image adds its GTs as zeros
    missing = preds[1:]
    assert aic_official_score(gt2, missing) == pytest.approx(ref_keypoint_eval(gt2, missing), abs=1e-7)
    # an image present with zero predicted humans counts its GTs but adds no OKS entries
    empty = copy.deepcopy(preds)
    empty[0]["keypoint_annotations"] = {}
    assert aic_official_score(gt2, empty) == pytest.approx(ref_keypoint_eval(gt2, empty), abs=1e-7)


def test_hand_computed_score():
    # one image, 2 GTs, 1 prediction equal to GT 1: GT1 oks = 1, GT2 (far away) oks ~ 0; denominator 2.
    kp1 = np.zeros((14, 3))
    kp1[:, 0], kp1[:, 1], kp1[:, 2] = np.arange(14) * 5.0, 10.0, 1
    kp2 = kp1.copy()
    kp2[:, 0] += 500
    gt = {"a": (np.stack([kp1, kp2]), np.array([[0, 0, 70, 20], [500, 0, 570, 20]], float))}
    assert aic_score_from_arrays(gt, {"a": kp1[None, :, :2]}) == pytest.approx(0.5)
    # the same prediction twice: denominator max(2, 2) = 2, GT2 still has oks ~0
    assert aic_score_from_arrays(gt, {"a": np.stack([kp1[:, :2]] * 2)}) == pytest.approx(0.5)
    # one prediction serves two coincident GTs: both get oks 1, denominator max(2, 1) = 2 -> 1.0
    twin = {"a": (np.stack([kp1, kp1]), np.array([[0, 0, 70, 20]] * 2, float))}
    assert aic_score_from_arrays(twin, {"a": kp1[None, :, :2]}) == pytest.approx(1.0)
    # 4 predictions: denominator 4, one perfect match
    assert aic_score_from_arrays(gt, {"a": np.stack([kp1[:, :2]] * 4)}) == pytest.approx(0.25)
    # no prediction file entry: 0
    assert aic_score_from_arrays(gt, {}) == 0.0


def test_coco_style_conversion_inverts_to_release_format(shared_data):
    coco_style = json.loads((shared_data / "aic" / "test_aic.json").read_text())
    raw = _load_raw(shared_data)
    back = coco_style_aic_to_release(coco_style)
    assert [e["image_id"] for e in back] == [e["image_id"] for e in raw]
    for b, r in zip(back, raw):
        got = sorted(
            (tuple(b["human_annotations"][h]), tuple(b["keypoint_annotations"][h])) for h in b["human_annotations"]
        )
        ref = sorted(
            (tuple(r["human_annotations"][h]), tuple(r["keypoint_annotations"][h])) for h in r["human_annotations"]
        )
        assert got == ref
    # scoring the converted GT against the raw GT as predictions is perfect
    assert aic_official_score(back, _gt_as_pred(raw)) == pytest.approx(1.0, abs=1e-12)


def test_bad_gt_raises_dataset_error(shared_data):
    gt = _load_raw(shared_data)
    bad = copy.deepcopy(gt)
    h = next(iter(bad[0]["keypoint_annotations"]))
    bad[0]["keypoint_annotations"][h] = bad[0]["keypoint_annotations"][h][:-3]
    with pytest.raises(DatasetError, match=f"{bad[0]['image_id']}, {h}: 39 keypoint values"):
        aic_official_score(bad, _gt_as_pred(gt), gt_name="keypoint_annotations_sample.json")
    bad = copy.deepcopy(gt)
    del bad[1]["human_annotations"][next(iter(bad[1]["human_annotations"]))]
    with pytest.raises(DatasetError, match="human_annotations"):
        aic_official_score(bad, _gt_as_pred(gt))
    with pytest.raises(DatasetError, match="twice"):
        aic_official_score(gt + gt[:1], _gt_as_pred(gt))

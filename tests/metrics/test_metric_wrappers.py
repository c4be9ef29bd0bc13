"""Single-process checks of the torchmetrics wrappers against the torch-free core and external references."""

from __future__ import annotations

import metrics_ddp_helpers as h
import numpy as np
import pytest
import torch

from lightning_pose.evaluation.aic import aic_official_score
from lightning_pose.evaluation.pck import pck
from lightning_pose.evaluation.pckh import mpii_pckh
from lightning_pose.metrics import PCK, AICScore, COCOKeypointAP, PCKh
from lightning_pose.skeletons import COCO

torch.set_num_threads(1)


def _stack(samples, key):
    return np.stack([s[key].double().numpy() for s in samples])


def test_pck_wrapper_equals_core_and_ignores_duplicates():
    samples = h.coco_samples()
    m = PCK("coco", thresholds=(0.05, 0.2))
    order = list(range(len(samples)))
    h.feed(m, samples, order + [0, 5, 16], batch_size=5)  # padded duplicates must not count twice
    out = m.compute()
    gt = _stack(samples, "gt_keypoints")
    ref = pck(
        _stack(samples, "pred").astype(np.float64),
        gt[..., :2],
        gt[..., 2] > 0,
        normalizer="bbox",
        bboxes=_stack(samples, "bbox"),
        thresholds=(0.05, 0.2),
    )
    for t, thr in enumerate((0.05, 0.2)):
        assert out[f"PCK@{thr:g}"] == pytest.approx(ref.micro()[t], abs=1e-12)
        assert out[f"PCK@{thr:g}_macro"] == pytest.approx(ref.macro()[t], abs=1e-12)
        for j, name in enumerate(COCO.keypoints):
            v = ref.per_joint()[t, j]
            assert (np.isnan(v) and np.isnan(out[f"PCK@{thr:g}/{name}"])) or out[f"PCK@{thr:g}/{name}"] == v
    assert out["PCK/excluded_instances"] == 0.0


def test_pckh_wrapper_equals_core_and_exports_in_source_order():
    samples = h.mpii_samples()
    m = PCKh()
    h.feed(m, samples, list(range(len(samples))) + [3], batch_size=4)
    out = m.compute()
    gt = _stack(samples, "gt_keypoints")
    pred = _stack(samples, "pred").astype(np.float64)
    ref = mpii_pckh(pred, gt[..., :2], gt[..., 2] > 0, _stack(samples, "head_size"))
    assert out["PCKh@0.5"] == pytest.approx(ref.table["Mean"], abs=1e-12)
    assert out["PCKh@0.1"] == pytest.approx(ref.table["Mean@0.1"], abs=1e-12)
    assert out["PCKh_AUC"] == pytest.approx(ref.table["AUC"], abs=1e-12)
    for part in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "UBody"):
        assert out[f"PCKh@0.5/{part}"] == pytest.approx(ref.table[part], abs=1e-12)
    assert out["PCKh/excluded_no_headbox"] == 1.0
    exported = m.mpii_preds()  # source_index = n - 1 - sample_id
    np.testing.assert_array_equal(exported, pred[::-1] + 1.0)
    with pytest.raises(ValueError, match="num_persons"):
        m.mpii_preds(num_persons=5)


def test_coco_ap_equals_pycocotools_after_rescore_and_nms():
    from lightning_pose.evaluation.nms import oks_nms

    samples = h.coco_samples()
    gt = h.load_coco_gt()
    m = COCOKeypointAP(gt)
    h.feed(m, samples, list(range(len(samples))) + [2, 2], batch_size=6)
    out = m.compute()
    # reference: de-dup by (image, ann), HRNet rescoring transcription, A's oks_nms per image, pycocotools
    by_key = {}
    for s in samples:
        by_key.setdefault((int(s["image_id"]), int(s["ann_id"])), s)
    per_image = {}
    for (img, _), s in sorted(by_key.items(), key=lambda kv: int(kv[1]["sample_id"])):
        per_image.setdefault(img, []).append(s)
    results = []
    for img, ss in per_image.items():
        kp = np.stack([s["pred"].double().numpy() for s in ss])
        sc = np.stack([s["scores"].double().numpy() for s in ss])
        score = np.array([h.hrnet_rescore(float(s["bbox_score"]), sc[i]) for i, s in enumerate(ss)])
        keep = oks_nms(kp, score, np.array([float(s["crop_area"]) for s in ss]), COCO.sigmas_array(), thr=0.9)
        for i in sorted(int(k) for k in keep):
            trip = np.concatenate([kp[i], sc[i][:, None]], axis=1).reshape(-1)
            results.append({"image_id": img, "category_id": 1, "keypoints": trip.tolist(), "score": score[i]})
    assert len(results) < len(by_key)  # NMS removed the near-duplicate detections
    ref = h.pycocotools_stats(gt, results, list(per_image))
    np.testing.assert_allclose(
        [out[k] for k in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")], ref, atol=1e-10
    )
    exported = m.results()
    assert sorted((r["image_id"], r["score"]) for r in exported) == sorted((r["image_id"], r["score"]) for r in results)


def test_coco_ap_partial_run_evaluates_only_seen_images():
    samples = h.coco_samples()
    gt = h.load_coco_gt()
    first_img = int(samples[0]["image_id"])
    idx = [i for i, s in enumerate(samples) if int(s["image_id"]) == first_img]
    m = COCOKeypointAP(gt, nms_thr=None, rescore=False)
    h.feed(m, samples, idx)
    out = m.compute()
    uniq, seen = [], set()  # de-dup by ann id within the image keeps the lowest sample id
    for i in idx:
        if int(samples[i]["ann_id"]) not in seen:
            seen.add(int(samples[i]["ann_id"]))
            uniq.append(i)
    results = [
        {
            "image_id": first_img,
            "category_id": 1,
            "keypoints": np.concatenate(
                [samples[i]["pred"].double().numpy(), samples[i]["scores"].double().numpy()[:, None]], 1
            )
            .reshape(-1)
            .tolist(),
            "score": float(samples[i]["bbox_score"]),
        }
        for i in uniq
    ]
    ref = h.pycocotools_stats(gt, results, [first_img])
    assert out["AP"] == pytest.approx(ref[0], abs=1e-10) and out["AR"] == pytest.approx(ref[5], abs=1e-10)
    empty = COCOKeypointAP(gt)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert empty.compute()["AP"] == -1.0  # nothing seen: undefined


def test_coco_ap_use_gt_boxes_rejects_unknown_ann_ids():
    samples = h.coco_samples()
    m = COCOKeypointAP(h.load_coco_gt(), use_gt_boxes=True)
    h.feed(m, samples, list(range(len(samples))))  # contains detection ids 900000+
    with pytest.raises(ValueError, match="not a GT annotation"):
        m.compute()
    with pytest.raises(ValueError, match="give their sigmas"):
        COCOKeypointAP({"images": [], "annotations": [], "categories": [{"id": 1, "keypoints": ["a", "b"]}]})


def test_aic_score_equals_official_on_exported_release_preds():
    samples = h.aic_samples()
    gt = h.aic_release_gt()
    m = AICScore(gt)
    h.feed(m, samples, list(range(len(samples))) + [1])
    out = m.compute()
    preds = m.release_preds()
    assert out["AIC_score"] == pytest.approx(aic_official_score(gt, preds), abs=1e-12)
    assert 0.0 < out["AIC_score"] < 1.0
    # GT as prediction on every person -> 1.0; with the COCO-style GT file the same
    perfect = [dict(s, pred=s["gt_keypoints"][:, :2].float()) for s in samples[:9]]
    m2 = AICScore(gt)
    h.feed(m2, perfect, list(range(9)))
    assert m2.compute()["AIC_score"] == pytest.approx(1.0, abs=1e-12)


def test_missing_batch_key_is_named():
    m = PCKh()
    with pytest.raises(KeyError, match="head_size"):
        m.update(
            torch.zeros(1, 16, 2),
            torch.ones(1, 16),
            {"gt_keypoints": torch.zeros(1, 16, 3), "sample_id": torch.tensor([0])},
        )


def test_exports_after_compute_need_no_sync(monkeypatch):
    """After compute() the export methods reuse its global samples (rank 0 may call them alone under DDP);
    after a further update they must sync again."""
    samples = h.coco_samples()
    m = COCOKeypointAP(h.load_coco_gt())
    h.feed(m, samples, list(range(10)))
    m.compute()

    def no_sync(*args, **kwargs):
        raise AssertionError("export tried to sync")

    monkeypatch.setattr(m, "sync_context", no_sync)
    assert {r["image_id"] for r in m.results()} <= {int(s["image_id"]) for s in samples[:10]}
    h.feed(m, samples, [10, 11])
    with pytest.raises(AssertionError, match="tried to sync"):
        m.results()

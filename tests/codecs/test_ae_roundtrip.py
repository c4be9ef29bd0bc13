"""Associative-embedding codec round trips on the real COCO samples of ../shared/data.

Targets are built from the real annotations (bottom-up dataset, no augmentation, 512x512 input, stride 4), decoded
with ideal tags (:mod:`ae_helpers`): every labelled joint of every person comes back within a quarter heatmap pixel
(half a pixel on the map's first/last row or column, where the quarter offset has no neighbour to compare), the
persons are grouped correctly, and after the exact inverse of the bottom-up transform the COCO AP is 1.0, both with
the torch-free evaluator and with the bottom-up torchmetrics wrapper the task uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ae_helpers import ideal_tags

from lightning_pose.codecs.associative_embedding import AssociativeEmbeddingCodec

SIZE = 512
STRIDE = 4


@pytest.fixture(scope="module")
def coco_bottomup(shared_data: Path):
    # the datasets and readers directly (what COCODataModule(mode="bottomup") builds), without importing Lightning
    from lightning_pose.data.datasets import BottomUpDataset
    from lightning_pose.data.readers.coco import read_coco, records_to_coco

    root = shared_data / "coco"
    result = read_coco(root / "test_coco.json", root)
    ds = BottomUpDataset(result.records, result.keypoint_set, (SIZE, SIZE), None, train=False)
    return records_to_coco(result.records, result.keypoint_set), [ds[i] for i in range(len(ds))]


def _decode_ideal(codec: AssociativeEmbeddingCodec, sample: dict):
    t = codec.encode(sample["keypoints"][None].double(), sample["num_persons"][None], sample["mask"][None])
    tags = ideal_tags(t["tag_index"], t["tag_valid"], codec.num_keypoints, codec.heatmap_size)
    return t, codec.decode_persons(t["heatmaps"], tags)[0]


def test_roundtrip_quarter_pixel_and_grouping(coco_bottomup) -> None:
    _, samples = coco_bottomup
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (SIZE // STRIDE, SIZE // STRIDE), 17)
    wh = SIZE // STRIDE
    checked = 0
    for s in samples:
        n = int(s["num_persons"])
        t, persons = _decode_ideal(codec, s)
        assert persons.keypoints.shape == (n, 17, 3), "one decoded person per annotated person"
        gt = s["keypoints"][:n].double().numpy()
        # ideal tags are 3 n: the decoded person tag identifies the annotated person
        ids = np.rint(persons.tags[:, 0] / 3.0).astype(int)
        assert sorted(ids.tolist()) == list(range(n))
        for p, pid in enumerate(ids):
            lab = gt[pid, :, 2] > 0
            err = np.abs(persons.keypoints[p, lab, :2] - gt[pid, lab, :2]) / STRIDE  # heatmap px, per axis
            pix = np.floor(gt[pid, lab, :2] / STRIDE + 0.5)
            border = (pix <= 0) | (pix >= wh - 1)
            assert np.all(err[~border] <= 0.25 + 1e-9), err.max()
            assert np.all(err[border] <= 0.5 + 1e-9)
            assert np.all(persons.keypoints[p, lab, 2] > 0.9)
            checked += int(lab.sum())
    assert checked > 150


def test_roundtrip_coco_ap_is_one(coco_bottomup) -> None:
    from lightning_pose.evaluation.coco import CocoKeypointEvaluator
    from lightning_pose.metrics.bottomup import BottomUpCOCOAP
    from lightning_pose.tasks.associative_embedding import persons_to_metric_inputs

    gt, samples = coco_bottomup
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (SIZE // STRIDE, SIZE // STRIDE), 17)
    metric = BottomUpCOCOAP(gt)
    results = []
    for s in samples:
        _, persons = _decode_ideal(codec, s)
        a = s["input_to_image"].numpy()
        kp = persons.keypoints.copy()
        kp[..., :2] = kp[..., :2] @ a[:, :2].T + a[:, 2]
        for j in range(kp.shape[0]):
            results.append(
                {
                    "image_id": int(s["image_id"]),
                    "category_id": 1,
                    "keypoints": kp[j].reshape(-1).tolist(),
                    "score": float(persons.scores[j]),
                }
            )
        preds, scores, batch = persons_to_metric_inputs(
            [{"keypoints": kp, "scores": persons.scores}], s["sample_id"][None], s["image_id"][None]
        )
        metric.update(preds, scores, batch)
    stats = CocoKeypointEvaluator(gt).evaluate(results)
    assert stats["AP"] == 1.0 and stats["AR"] == 1.0
    assert metric.compute()["AP"] == 1.0


def test_roundtrip_nearest_pixel_encoding_half_pixel(coco_bottomup) -> None:
    """The paper's integer Gaussian centres: the quarter offset never fires, the error is <= 0.5 heatmap px."""
    _, samples = coco_bottomup
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (SIZE // STRIDE, SIZE // STRIDE), 17, unbiased=False)
    s = samples[-1]
    n = int(s["num_persons"])
    _, persons = _decode_ideal(codec, s)
    gt = s["keypoints"][:n].double().numpy()
    ids = np.rint(persons.tags[:, 0] / 3.0).astype(int)
    for p, pid in enumerate(ids):
        lab = gt[pid, :, 2] > 0
        err = np.abs(persons.keypoints[p, lab, :2] - gt[pid, lab, :2]) / STRIDE
        assert err.max() <= 0.5 + 1e-9
        # decoded positions are whole heatmap pixels
        assert np.allclose(persons.keypoints[p, lab, :2] / STRIDE, np.rint(persons.keypoints[p, lab, :2] / STRIDE))


def test_targets_mask_and_tag_indices(coco_bottomup) -> None:
    """Persons without keypoints are masked (their box); tag indices sit at the Gaussian peaks."""
    _, samples = coco_bottomup
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (SIZE // STRIDE, SIZE // STRIDE), 17)
    s = next(x for x in samples if int(x["image_id"]) == 40083)  # has one annotation with 0 keypoints
    t = codec.encode(s["keypoints"][None].double(), s["num_persons"][None], s["mask"][None])
    assert 0 < float(t["mask"].mean()) < 1.0
    flat = t["heatmaps"].reshape(1, 17, -1)
    peaks = torch.gather(flat, 2, t["tag_index"].permute(0, 2, 1))  # (1, K, N)
    assert torch.all(peaks.permute(0, 2, 1)[t["tag_valid"]] > 0.88)  # sub-pixel centre: peak >= exp(-0.5/sigma^2)
    # mask sampling is the nearest input pixel of each heatmap pixel's position i * stride
    m = s["mask"].numpy()
    assert torch.equal(t["mask"][0], torch.from_numpy((m[::STRIDE, ::STRIDE] > 0).astype(np.float64)))


def test_log_parabola_subpixel_is_exact_on_gaussians(coco_bottomup) -> None:
    """``subpixel="log_parabola"``: on the ideal (sub-pixel Gaussian) targets the decoded joints are exact to float
    precision away from the map border and from overlapping Gaussians of other persons (max-merged), never worse
    than the quarter offset's bound anywhere, and the COCO-style grouping is unchanged."""
    _, samples = coco_bottomup
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (SIZE // STRIDE, SIZE // STRIDE), 17, subpixel="log_parabola")
    quarter = AssociativeEmbeddingCodec((SIZE, SIZE), (SIZE // STRIDE, SIZE // STRIDE), 17)
    wh = SIZE // STRIDE
    errors = []
    for s in samples:
        n = int(s["num_persons"])
        _, persons = _decode_ideal(codec, s)
        _, persons_q = _decode_ideal(quarter, s)
        assert persons.keypoints.shape == (n, 17, 3)
        np.testing.assert_array_equal(persons.tags, persons_q.tags)  # grouping is independent of the sub-pixel step
        gt = s["keypoints"][:n].double().numpy()
        ids = np.rint(persons.tags[:, 0] / 3.0).astype(int)
        for p, pid in enumerate(ids):
            lab = gt[pid, :, 2] > 0
            err = np.abs(persons.keypoints[p, lab, :2] - gt[pid, lab, :2]) / STRIDE
            pix = np.floor(gt[pid, lab, :2] / STRIDE + 0.5)
            border = (pix <= 0) | (pix >= wh - 1)
            assert np.all(err[~border] <= 0.25 + 1e-9) and np.all(err[border] <= 0.5 + 1e-9)
            errors.append(err[~border])
    errors_all = np.concatenate(errors)
    assert errors_all.size > 300
    assert np.mean(errors_all < 1e-4) > 0.95, np.sort(errors_all)[-20:]
    with pytest.raises(ValueError, match="subpixel"):
        AssociativeEmbeddingCodec((SIZE, SIZE), (wh, wh), 17, subpixel="dark")

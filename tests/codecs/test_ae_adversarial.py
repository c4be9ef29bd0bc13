"""Associative-embedding codec on hard synthetic cases: touching people, missing joints, crowd masks, more people
than top-k; flip test and multi-scale resampling; the grouping equals the benchmark's per-joint reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from ae_helpers import ideal_tags

from lightning_pose.codecs.associative_embedding import (
    COCO_GROUPING_ORDER,
    AssociativeEmbeddingCodec,
    group_joints,
    max_filter,
    resample_maps,
)
from lightning_pose.skeletons import get_keypoint_set

SIZE = 256
HM = SIZE // 4
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "grouping.py"


def _pose(cx: float, cy: float, scale: float = 1.0) -> np.ndarray:
    """A (17, 3) COCO-like person (input px) centred at (cx, cy), all joints visible."""
    rel = np.array(
        [
            [0, -40],
            [-3, -43],
            [3, -43],
            [-7, -41],
            [7, -41],
            [-12, -28],
            [12, -28],
            [-16, -12],
            [16, -12],
            [-18, 2],
            [18, 2],
            [-8, 5],
            [8, 5],
            [-9, 25],
            [9, 25],
            [-9, 44],
            [9, 44],
        ],
        float,
    )
    kp = np.ones((17, 3)) * 2.0
    kp[:, :2] = rel * scale + [cx, cy]
    return kp


def _decode(
    codec: AssociativeEmbeddingCodec, persons: np.ndarray, peak_scale: np.ndarray | None = None, radius: int = 3
):
    kp = torch.from_numpy(persons[None])
    t = codec.encode(kp, torch.tensor([persons.shape[0]]))
    hm = t["heatmaps"]
    if peak_scale is not None:  # give each person its own peak height (encode each person separately)
        hm = torch.zeros_like(hm)
        for n in range(persons.shape[0]):
            one = codec.encode(kp[:, n : n + 1])["heatmaps"] * float(peak_scale[n])
            hm = torch.maximum(hm, one)
    tags = ideal_tags(t["tag_index"], t["tag_valid"], 17, codec.heatmap_size, radius=radius)
    return t, codec.decode_persons(hm, tags)[0]


def _match(decoded: np.ndarray, gt: np.ndarray, tol: float) -> list[int]:
    """For every GT person, the decoded person whose labelled joints are all within ``tol`` input px."""
    found = []
    for g in gt:
        lab = g[:, 2] > 0
        err = np.abs(decoded[:, lab, :2] - g[None, lab, :2]).max(axis=(1, 2))
        assert err.min() <= tol, f"person not recovered (best max error {err.min():.2f} px)"
        found.append(int(err.argmin()))
    return found


def test_touching_people_are_separated_by_their_tags() -> None:
    """Two people 12 input px (3 heatmap px) apart: their Gaussians overlap, NMS (3x3) keeps both peaks and the
    tags keep the groups apart (each person's tag predicted on its own peak's 3x3 neighbourhood)."""
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17, nms_kernel=3)
    gt = np.stack([_pose(120.3, 128.2), _pose(132.6, 128.9)])
    _, out = _decode(codec, gt, radius=1)
    assert out.keypoints.shape[0] == 2
    idx = _match(out.keypoints, gt, tol=1.0 + 1e-9)  # quarter heatmap px = 1 input px
    assert sorted(idx) == [0, 1]


def test_missing_joints_refined_only_when_found() -> None:
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17)
    a, b = _pose(70.4, 100.1), _pose(180.8, 140.6)
    a[[9, 10, 15, 16], :] = 0.0  # wrists and ankles unlabelled
    b[0:5, :] = 0.0  # no head
    gt = np.stack([a, b])
    _, out = _decode(codec, gt)
    assert out.keypoints.shape[0] == 2
    idx = _match(out.keypoints, gt, tol=1.0 + 1e-9)
    for g, i in zip(gt, idx):
        missing = g[:, 2] == 0
        # nothing else carries this person's tag, so refinement finds no positive heatmap value for its missing
        # joints ... except the other person's peak, whose tag is 3 away: rounded distance 3 > peak 1 -> not taken
        # unless no better pixel; either way the labelled joints are exact and the person score counts them only
        assert out.scores[list(idx).index(i)] == pytest.approx(out.keypoints[i, ~missing, 2].sum() / 17, abs=0.2)
    no_refine = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17, refine=False)
    _, plain = _decode(no_refine, gt)
    for g, i in zip(gt, _match(plain.keypoints, gt, tol=1.0 + 1e-9)):
        missing = g[:, 2] == 0
        assert np.all(plain.keypoints[i, missing] == 0.0)
        assert plain.scores[list(_match(plain.keypoints, gt, 1.0 + 1e-9)).index(i)] == pytest.approx(
            plain.keypoints[i, :, 2].mean()
        )


def test_refinement_fills_a_joint_below_the_detection_threshold() -> None:
    """A joint whose peak is too weak to be a candidate (0.08 < 0.1) is recovered from the person's mean tag."""
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17)
    gt = _pose(128.2, 128.7)[None]
    t = codec.encode(torch.from_numpy(gt[None]))
    hm = t["heatmaps"].clone()
    hm[0, 9] *= 0.08
    tags = ideal_tags(t["tag_index"], t["tag_valid"], 17, codec.heatmap_size)
    out = codec.decode_persons(hm, tags)[0]
    assert out.keypoints.shape[0] == 1
    assert out.scores[0] == pytest.approx((16 * hm[0].amax(dim=(-2, -1))[0].item()) / 17, abs=0.02)
    assert np.abs(out.keypoints[0, 9, :2] - gt[0, 9, :2]).max() <= 1.0 + 1e-9
    assert out.keypoints[0, 9, 2] == pytest.approx(0.08 * float(t["heatmaps"][0, 9].max()), rel=1e-5)
    without = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17, refine=False).decode_persons(hm, tags)[0]
    assert without.keypoints[0, 9, 2] == 0.0


def test_crowd_mask_sampled_and_ignored_by_the_loss() -> None:
    from lightning_pose.data.transforms import BottomUpTransform, box_polygon
    from lightning_pose.losses.associative_embedding import masked_heatmap_mse

    kset = get_keypoint_set("coco")
    transform = BottomUpTransform(kset, (SIZE, SIZE), None)
    image = np.zeros((200, 300, 3), np.uint8)
    person = _pose(100, 100, 0.8)[None]
    crowd = box_polygon([180, 40, 100, 120])  # image-frame crowd box
    r = transform(image, person, [crowd])
    assert r.mask.min() == 0 and r.mask.max() == 1
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17)
    t = codec.encode(torch.from_numpy(r.keypoints[None]), None, torch.from_numpy(r.mask[None]))
    # the crowd box maps to input x in [180, 280] * k with k = 256/300; masked heatmap pixels lie inside it
    k = SIZE / 300
    ys, xs = np.nonzero(t["mask"][0].numpy() == 0)
    assert xs.min() * 4 >= 180 * k - 2 and xs.max() * 4 <= 280 * k + 2
    pred = t["heatmaps"].clone().float()
    base = masked_heatmap_mse(pred, t["heatmaps"].float(), t["mask"].float())
    pred[0, :, ys, xs] += 5.0  # garbage inside the crowd region costs nothing
    assert masked_heatmap_mse(pred, t["heatmaps"].float(), t["mask"].float()) == pytest.approx(float(base), abs=1e-12)


def test_more_people_than_top_k() -> None:
    """8 people, top-5 candidates per joint: the 5 strongest people are found, exactly, and nothing crashes."""
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17, top_k=5)
    # non-degenerate positions: a peak exactly between two pixels makes a 2-pixel NMS plateau (two candidates)
    centres = [(30.37 + 28 * i + 0.3 * i, 60.21 + 18 * (i % 2) + 0.1 * i) for i in range(8)]
    gt = np.stack([_pose(x, y, 0.45) for x, y in centres])
    strength = np.linspace(1.0, 0.5, 8)
    _, out = _decode(codec, gt, peak_scale=strength)
    assert out.keypoints.shape[0] == 5
    idx = _match(out.keypoints, gt[:5], tol=1.0 + 1e-9)
    assert sorted(idx) == list(range(5))
    assert np.all(np.diff(out.scores) <= 0)


def test_flip_back_aligns_heatmaps_and_concatenates_tags() -> None:
    kset = get_keypoint_set("coco")
    codec = AssociativeEmbeddingCodec((SIZE, SIZE), (HM, HM), 17)
    gt = np.stack([_pose(90.3, 120.6), _pose(170.2, 110.1)])
    flipped = gt[:, kset.flip_indices].copy()
    flipped[..., 0] = SIZE - 1 - flipped[..., 0]
    t = codec.encode(torch.from_numpy(gt[None]))
    tf = codec.encode(torch.from_numpy(flipped[None]))
    tags = ideal_tags(t["tag_index"], t["tag_valid"], 17, codec.heatmap_size)
    tags_f = ideal_tags(tf["tag_index"], tf["tag_valid"], 17, codec.heatmap_size)
    hm, tg = codec.merge_flip(t["heatmaps"], tags, tf["heatmaps"], tags_f, kset.flip_indices)
    assert tg.shape == (1, 17, 2, HM, HM)
    assert float((hm - t["heatmaps"]).abs().max()) < 0.03  # the exact 0.75 px shift re-aligns the flipped maps
    out = codec.decode_persons(hm, tg)[0]
    assert out.tags.shape == (2, 2)
    idx = _match(out.keypoints, gt, tol=1.0 + 1e-9)
    assert sorted(idx) == [0, 1]


def test_resample_maps_is_exact_for_strides_and_scales() -> None:
    """Bilinear resampling reproduces linear functions of the input frame exactly (away from the borders), so the
    grids are aligned: stride 4 -> stride 2 (HigherHRNet) and a 0.5x-scaled input -> the scale-1 stride-4 grid."""

    def linear(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.3 * x - 0.7 * y + 5.0  # a function of input-frame coordinates

    def grid(size: int, stride: float, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        # heatmap pixel i sits at i * stride in the (scaled) input, i.e. at (i * stride + 0.5) / scale - 0.5
        u = (torch.arange(size, dtype=torch.float64) * stride + 0.5) / scale - 0.5
        yy, xx = torch.meshgrid(u, u, indexing="ij")
        return xx, yy

    coarse = linear(*grid(HM, 4.0))[None, None]
    up = resample_maps(coarse, (4.0, 4.0), (2.0, 2.0), (2 * HM, 2 * HM))
    want = linear(*grid(2 * HM, 2.0))[None, None]
    inner = (slice(None), slice(None), slice(2, -4), slice(2, -4))
    assert torch.allclose(up[inner], want[inner], atol=1e-9)
    small = linear(*grid(HM // 2, 4.0, scale=0.5))[None, None]
    back = resample_maps(small, (4.0, 4.0), (4.0, 4.0), (HM, HM), image_scale=(0.5, 0.5))
    want = linear(*grid(HM, 4.0))[None, None]
    assert torch.allclose(back[inner], want[inner], atol=1e-9)


def test_max_filter_equals_max_pool() -> None:
    x = torch.rand(2, 3, 17, 23)
    for k in (1, 3, 5, 7):
        assert torch.equal(max_filter(x, k), torch.nn.functional.max_pool2d(x, k, 1, k // 2))


def test_grouping_equals_the_benchmark_reference() -> None:
    spec = importlib.util.spec_from_file_location("ae_grouping_benchmark", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(1)
    order = list(COCO_GROUPING_ORDER)
    for _ in range(20):
        tags, scores, xy = bench.synthetic_candidates(rng)
        ours, _ = group_joints(tags, scores, xy, order)
        assert np.array_equal(ours, bench.reference_group(tags, scores, xy, order))
    # unsorted candidates and 2-D tags take the general path
    tags, scores, xy = bench.synthetic_candidates(rng)
    perm = rng.permutation(tags.shape[1])
    tags2 = np.concatenate([tags, tags * 0.5], axis=2)[:, perm]
    ours, _ = group_joints(tags2, scores[:, perm], xy[:, perm], order)
    assert np.array_equal(ours, bench.reference_group(tags2, scores[:, perm], xy[:, perm], order))

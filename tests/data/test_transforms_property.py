"""Property test: image markers follow their keypoints through every augmentation.

A Gaussian marker is drawn for every keypoint in its own image channel (three keypoints per RGB image),
the transform warps those images with the parameters it drew, and the intensity centroid of each marker
in the output must land on the keypoint position the transform reports for it — within 1 px — with the
left/right labels swapped under flips (the marker of ``left_wrist`` is found where the output says
``right_wrist`` is). Seeded random loops cover many parameter draws.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from lightning_pose.data.transforms import (
    BottomUpParams,
    BottomUpTransform,
    CropParams,
    TopDownTransform,
)
from lightning_pose.skeletons import COCO, MPII

NO_PHOTO = {"color_jitter_prob": 0.0, "blur_prob": 0.0, "noise_prob": 0.0, "occlusion_prob": 0.0}
SIGMA = 2.0  # marker std in image pixels
IMG_W, IMG_H = 320, 240


def _marker_images(points: np.ndarray, width: int = IMG_W, height: int = IMG_H) -> list[np.ndarray]:
    """One Gaussian blob per point, three points per uint8 RGB image (channel c of image i = point 3i+c)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    images = []
    for start in range(0, len(points), 3):
        img = np.zeros((height, width, 3), np.uint8)
        for c, (x, y) in enumerate(points[start : start + 3]):
            blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * SIGMA**2))
            img[..., c] = np.rint(255 * blob).astype(np.uint8)
        images.append(img)
    return images


def _centroids(outputs: list[np.ndarray], n: int) -> np.ndarray:
    """Intensity centroids ``(n, 2)`` of the markers (NaN when the marker left the output)."""
    out = np.full((n, 2), np.nan)
    for i in range(n):
        ch = outputs[i // 3][..., i % 3].astype(np.float64)
        ch[ch < 8] = 0.0  # ignore interpolation dust
        total = ch.sum()
        if total > 0:
            yy, xx = np.mgrid[0 : ch.shape[0], 0 : ch.shape[1]]
            out[i] = [(ch * xx).sum() / total, (ch * yy).sum() / total]
    return out


def _inside(p: np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray:
    x_ok = (p[:, 0] >= margin) & (p[:, 0] <= size[0] - 1 - margin)
    return x_ok & (p[:, 1] >= margin) & (p[:, 1] <= size[1] - 1 - margin)


def _random_person(rng: np.random.Generator, k: int) -> np.ndarray:
    kp = np.zeros((k, 3))
    kp[:, 0] = rng.uniform(110, 210, k)
    kp[:, 1] = rng.uniform(50, 190, k)
    kp[:, 2] = 2
    return kp


def _check_topdown(t: TopDownTransform, kp: np.ndarray, params: CropParams, flip_indices: np.ndarray) -> int:
    """Run the transform on the marker images; returns the number of markers checked."""
    images = _marker_images(kp[:, :2])
    results = [t(img, params.center, params.scale, kp, params=params) for img in images]
    reported = results[0].keypoints  # the same params -> the same keypoints for every marker image
    for r in results[1:]:
        np.testing.assert_array_equal(r.keypoints, reported)
    found = _centroids([r.image for r in results], len(kp))
    # marker of input joint i must sit where the output reports joint j with flip_indices[j] == i
    out_index = flip_indices if params.flip else np.arange(len(kp))
    expected = reported[out_index, :2]  # row i: reported position of marker i
    zoom = t.input_size[0] / params.scale[0]
    ok = _inside(expected, t.input_size, margin=4 * SIGMA * zoom + 2)
    np.testing.assert_allclose(
        found[ok], expected[ok], atol=1.0, err_msg=f"markers do not follow the keypoints for {params}"
    )
    return int(ok.sum())


@pytest.mark.parametrize(
    "name, aug",
    [
        ("scale", {"scale_factor": 0.35, "rotation_factor": 0.0, "flip_prob": 0.0, "half_body_prob": 0.0}),
        (
            "rotation",
            {
                "scale_factor": 0.0,
                "rotation_factor": 45.0,
                "rotation_prob": 1.0,
                "flip_prob": 0.0,
                "half_body_prob": 0.0,
            },
        ),
        (
            "shift",
            {
                "scale_factor": 0.0,
                "rotation_factor": 0.0,
                "shift_factor": 0.2,
                "shift_prob": 1.0,
                "flip_prob": 0.0,
                "half_body_prob": 0.0,
            },
        ),
        ("flip", {"scale_factor": 0.0, "rotation_factor": 0.0, "flip_prob": 1.0, "half_body_prob": 0.0}),
        ("half_body", {"scale_factor": 0.0, "rotation_factor": 0.0, "flip_prob": 0.0, "half_body_prob": 1.0}),
        (
            "composite",
            {
                "scale_factor": 0.35,
                "rotation_factor": 45.0,
                "rotation_prob": 1.0,
                "shift_factor": 0.15,
                "shift_prob": 0.5,
                "flip_prob": 0.5,
                "half_body_prob": 0.3,
            },
        ),
    ],
)
def test_topdown_markers_follow_keypoints(name: str, aug: dict) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    t = TopDownTransform(COCO, (96, 128), {**aug, **NO_PHOTO}, seed=7)
    flip_indices = np.asarray(COCO.flip_indices)
    checked, flips, halves = 0, 0, 0
    for _ in range(12):
        kp = _random_person(rng, COCO.num_keypoints)
        center, scale = t.base_center_scale([100.0, 40.0, 120.0, 160.0])
        params = t.sample_params(center, scale, kp)
        flips += params.flip
        halves += params.half_body
        checked += _check_topdown(t, kp, params, flip_indices)
    assert checked >= 12 * 8, f"too few markers inside the crops ({checked})"
    if name == "flip":
        assert flips == 12
    if name == "half_body":
        assert halves == 12
    if name == "composite":
        assert 0 < flips < 12


def test_flip_swaps_left_and_right_labels_explicitly() -> None:
    t = TopDownTransform(
        COCO,
        (96, 128),
        {"flip_prob": 1.0, "scale_factor": 0.0, "rotation_factor": 0.0, "half_body_prob": 0.0, **NO_PHOTO},
    )
    kp = _random_person(np.random.default_rng(3), 17)
    center, scale = t.base_center_scale([100.0, 40.0, 120.0, 160.0])
    params = t.sample_params(center, scale, kp)
    images = _marker_images(kp[:, :2])
    results = [t(img, center, scale, kp, params=params) for img in images]
    found = _centroids([r.image for r in results], 17)
    lw, rw = COCO.index("left_wrist"), COCO.index("right_wrist")
    np.testing.assert_allclose(found[lw], results[0].keypoints[rw, :2], atol=1.0)
    np.testing.assert_allclose(found[rw], results[0].keypoints[lw, :2], atol=1.0)


def test_mpii_flip_pairs_follow_markers() -> None:
    t = TopDownTransform(
        MPII,
        (128, 128),
        {"flip_prob": 1.0, "rotation_factor": 30.0, "rotation_prob": 1.0, "half_body_prob": 0.0, **NO_PHOTO},
        seed=1,
    )
    rng = np.random.default_rng(11)
    for _ in range(4):
        kp = _random_person(rng, 16)
        center, scale = t.base_center_scale([100.0, 40.0, 120.0, 160.0])
        assert _check_topdown(t, kp, t.sample_params(center, scale, kp), np.asarray(MPII.flip_indices)) >= 8


def _check_bottomup(t: BottomUpTransform, kp: np.ndarray, params: BottomUpParams) -> int:
    n, k = kp.shape[:2]
    flat = kp.reshape(-1, 3)
    results = [t(img, kp, params=params) for img in _marker_images(flat[:, :2])]
    reported = results[0].keypoints  # (N, K, 3)
    found = _centroids([r.image for r in results], n * k).reshape(n, k, 2)
    flip = np.asarray(t.keypoint_set.flip_indices)
    idx = flip if params.flip else np.arange(k)
    expected = reported[:, idx, :2]  # marker (n, i) is reported at joint idx[i]
    zoom = t.input_size[0] / IMG_W / params.scale
    ok = _inside(expected.reshape(-1, 2), t.input_size, margin=4 * SIGMA * zoom + 2)
    np.testing.assert_allclose(
        found.reshape(-1, 2)[ok],
        expected.reshape(-1, 2)[ok],
        atol=1.0,
        err_msg=f"bottom-up markers do not follow the keypoints for {params}",
    )
    return int(ok.sum())


def test_bottomup_markers_follow_keypoints() -> None:
    t = BottomUpTransform(
        COCO,
        (256, 192),
        {"scale_range": (0.75, 1.5), "max_rotation": 30.0, "max_translate": 0.2, "flip_prob": 0.5, **NO_PHOTO},
        seed=3,
    )
    rng = np.random.default_rng(5)
    checked, flips = 0, 0
    for _ in range(6):
        kp = np.stack([_random_person(rng, 17), _random_person(rng, 17)])
        kp[..., 0] += rng.uniform(-90, 90, (2, 1))
        params = t.sample_params()
        flips += params.flip
        checked += _check_bottomup(t, kp, params)
    forced = BottomUpParams(scale=1.2, rotation=-25.0, translation=(0.1, -0.05), flip=True)
    checked += _check_bottomup(t, np.stack([_random_person(rng, 17)]), forced)
    assert checked >= 6 * 20
    assert flips > 0

"""Unit tests of the top-down / bottom-up transforms (settings, distributions, inverse maps, masks)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lightning_pose.data import geometry as g
from lightning_pose.data.transforms import (
    BottomUpParams,
    BottomUpTransform,
    CropParams,
    TopDownAugmentation,
    TopDownTransform,
    box_polygon,
    denormalize_image,
    normalize_image,
)
from lightning_pose.skeletons import COCO

NO_PHOTO = {"color_jitter_prob": 0.0, "blur_prob": 0.0, "noise_prob": 0.0, "occlusion_prob": 0.0}


def _gradient_image(w: int = 320, h: int = 240) -> tuple[np.ndarray, callable]:
    def f(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 10 + 0.3 * x + 0.5 * y

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.repeat(np.rint(f(xx, yy))[..., None], 3, axis=2).astype(np.uint8)
    return img, f


def test_crop_to_image_is_the_exact_inverse_of_the_warp() -> None:
    img, f = _gradient_image()
    t = TopDownTransform(COCO, (48, 64), {"rotation_prob": 1.0, "flip_prob": 0.5, **NO_PHOTO}, seed=0)
    for _ in range(20):
        c, s = t.base_center_scale([120.0, 60.0, 80.0, 120.0])
        r = t(img, c, s, None)
        np.testing.assert_allclose(
            g.compose_affine(r.crop_to_image, r.image_to_crop), [[1, 0, 0], [0, 1, 0]], atol=1e-12
        )
        # every crop pixel shows the image at crop_to_image(pixel)  (cv2 pixel-centre convention)
        vv, uu = np.mgrid[0:64, 0:48].astype(np.float64)
        src = g.apply_affine(r.crop_to_image, np.stack([uu, vv], -1))
        inside = (src[..., 0] > 1) & (src[..., 0] < 318) & (src[..., 1] > 1) & (src[..., 1] < 238)
        assert inside.sum() > 100
        expected = f(src[..., 0], src[..., 1])
        assert np.abs(r.image[..., 0][inside] - expected[inside]).max() <= 1.0


def test_disabled_augmentation_is_the_plain_centred_crop() -> None:
    t = TopDownTransform(COCO, (192, 256), None)
    assert not t.augmentation.enabled
    kp = np.zeros((17, 3))
    kp[:, :2] = np.random.default_rng(0).uniform(50, 150, (17, 2))
    kp[:, 2] = 2
    kp[3, 2] = 0
    c, s = t.base_center_scale([50.0, 50.0, 100.0, 100.0])
    img = np.zeros((300, 300, 3), np.uint8)
    r = t(img, c, s, kp)
    assert r.params.rotation == 0 and not r.params.flip and not r.params.half_body
    np.testing.assert_allclose(r.params.scale, [125.0, 125.0 / 0.75])
    np.testing.assert_allclose(g.apply_affine(r.crop_to_image, [[95.5, 127.5]]), [[100.0, 100.0]], atol=1e-9)
    expected = g.apply_affine(g.crop_matrix(c, s, 0.0, (192, 256)), kp[:, :2])
    np.testing.assert_allclose(r.keypoints[kp[:, 2] > 0, :2], expected[kp[:, 2] > 0], atol=1e-9)
    np.testing.assert_array_equal(r.keypoints[3], [0, 0, 0])  # unlabelled -> zeros
    np.testing.assert_array_equal(r.keypoints[:, 2], kp[:, 2])


def test_visibility_is_kept_outside_the_crop() -> None:
    t = TopDownTransform(COCO, (192, 256), None)
    kp = np.tile([[60.0, 60.0, 2.0]], (17, 1))
    kp[0] = [1000.0, 1000.0, 1.0]
    r = t(np.zeros((100, 100, 3), np.uint8), *t.base_center_scale([50.0, 50.0, 20.0, 20.0]), kp)
    assert r.keypoints[0, 2] == 1 and r.keypoints[0, 0] > 192


def test_hrnet_scale_and_rotation_distributions() -> None:
    t = TopDownTransform(
        COCO,
        (192, 256),
        {
            "scale_factor": 0.25,
            "rotation_factor": 30.0,
            "rotation_prob": 0.6,
            "flip_prob": 0.5,
            "half_body_prob": 0.0,
            **NO_PHOTO,
        },
        seed=1,
    )
    base = np.array([100.0, 100.0])
    draws = [t.sample_params(np.zeros(2), base) for _ in range(3000)]
    ratios = np.array([p.scale[0] / 100.0 for p in draws])
    rots = np.array([p.rotation for p in draws])
    flips = np.array([p.flip for p in draws])
    assert ratios.min() >= 0.75 - 1e-12 and ratios.max() <= 1.25 + 1e-12
    # clip(N(1, 0.25), 0.75, 1.25): P(at a bound) = 2 * P(|z| > 1) = 0.317
    assert abs(np.mean(np.isclose(ratios, 0.75) | np.isclose(ratios, 1.25)) - 0.317) < 0.04
    assert np.abs(rots).max() <= 60.0 + 1e-12
    assert abs(np.mean(rots != 0) - 0.6) < 0.04
    rotated = rots[rots != 0]
    assert abs(np.std(rotated) - 30.0 * 0.9558) < 2.5  # std of N(0, rf) clipped at +-2 rf
    assert abs(flips.mean() - 0.5) < 0.04


def test_half_body_needs_more_than_min_joints_and_uses_the_chosen_half() -> None:
    aug = {
        "half_body_prob": 1.0,
        "half_body_upper_prob": 1.0,
        "scale_factor": 0.0,
        "rotation_factor": 0.0,
        "flip_prob": 0.0,
        **NO_PHOTO,
    }
    t = TopDownTransform(COCO, (192, 256), aug)
    rng = np.random.default_rng(0)
    kp = np.zeros((17, 3))
    kp[:, :2] = rng.uniform(0, 200, (17, 2))
    kp[:8, 2] = 2  # exactly 8 labelled: not more than half_body_min_joints
    base_c, base_s = np.array([100.0, 100.0]), np.array([150.0, 200.0])
    p = t.sample_params(base_c, base_s, kp)
    assert not p.half_body
    np.testing.assert_allclose(p.center, base_c)
    kp[:, 2] = 2
    p = t.sample_params(base_c, base_s, kp)
    assert p.half_body
    upper = kp[list(COCO.upper_body), :2]
    np.testing.assert_allclose(p.center, upper.mean(axis=0))
    w, h = upper.max(0) - upper.min(0)
    np.testing.assert_allclose(p.scale, g.fix_aspect_ratio((w, h), 0.75) * 1.5)
    t_low = TopDownTransform(COCO, (192, 256), {**aug, "half_body_upper_prob": 0.0})
    p = t_low.sample_params(base_c, base_s, kp)
    np.testing.assert_allclose(p.center, kp[COCO.lower_body, :2].mean(axis=0))


def test_augmentation_config_validation_and_defaults() -> None:
    aug = TopDownAugmentation.from_config({"scale_factor": 0.3})
    assert aug.enabled and aug.scale_factor == 0.3 and aug.rotation_factor == 45.0 and aug.padding == 1.25
    assert not aug.disabled().enabled and aug.disabled().padding == aug.padding
    with pytest.raises(ValueError, match="unknown top-down augmentation option"):
        TopDownAugmentation.from_config({"scale": 0.3})
    with pytest.raises(ValueError, match="flip_prob"):
        TopDownAugmentation.from_config({"flip_prob": 1.5})
    assert not TopDownAugmentation.from_config(None, enabled=False).enabled


def test_photometric_changes_pixels_not_geometry() -> None:
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    kp = np.tile([[100.0, 100.0, 2.0]], (17, 1))
    geo = {"scale_factor": 0.0, "rotation_factor": 0.0, "flip_prob": 0.0, "half_body_prob": 0.0}
    plain = TopDownTransform(COCO, (64, 64), {**geo, **NO_PHOTO})
    photo = TopDownTransform(
        COCO,
        (64, 64),
        {
            **geo,
            **NO_PHOTO,
            "color_jitter_prob": 1.0,
            "brightness": 0.5,
            "occlusion_prob": 1.0,
            "occlusion_max_size": 0.5,
        },
    )
    c, s = plain.base_center_scale([50.0, 50.0, 100.0, 100.0])
    a, b = plain(img, c, s, kp), photo(img, c, s, kp)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.image_to_crop, b.image_to_crop)
    assert np.mean(a.image != b.image) > 0.2


def test_reseed_reproduces_the_draws() -> None:
    t = TopDownTransform(COCO, (192, 256), {"occlusion_prob": 0.5})
    img = np.random.default_rng(0).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    c, s = t.base_center_scale([20.0, 20.0, 80.0, 80.0])
    t.reseed(5)
    first = [t(img, c, s, None) for _ in range(3)]
    t.reseed(5)
    again = [t(img, c, s, None) for _ in range(3)]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.image_to_crop, y.image_to_crop)


def test_bgr_input_gives_rgb_crop() -> None:
    img = np.zeros((50, 50, 3), np.uint8)
    img[..., 0] = 200  # red in RGB
    t = TopDownTransform(COCO, (16, 16), None)
    c, s = t.base_center_scale([10.0, 10.0, 30.0, 30.0])
    rgb = t(img, c, s, None).image
    bgr = t(img[..., ::-1].copy(), c, s, None, bgr_input=True).image
    np.testing.assert_array_equal(rgb, bgr)
    assert rgb[8, 8, 0] == 200 and rgb[8, 8, 2] == 0


def test_normalize_round_trip() -> None:
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    norm = normalize_image(img)
    assert norm.shape == (3, 5, 7) and norm.dtype == np.float32
    np.testing.assert_allclose(norm[0, 2, 3], (img[2, 3, 0] / 255 - 0.485) / 0.229, rtol=1e-5)
    np.testing.assert_array_equal(denormalize_image(norm), img)


def test_bottomup_without_augmentation_is_resize_and_pad() -> None:
    t = BottomUpTransform(COCO, (512, 512), None)
    img = np.full((480, 640, 3), 100, np.uint8)
    kp = np.zeros((1, 17, 3))
    kp[0, :, :2] = [[320.0, 240.0]] * 17
    kp[0, :, 2] = 2
    r = t(img, kp)
    np.testing.assert_allclose(r.image_to_input, g.resize_pad_matrix((640, 480), (512, 512)), atol=1e-12)
    np.testing.assert_allclose(r.keypoints[0, 0, :2], [(320 + 0.5) * 0.8 - 0.5, (240 + 0.5) * 0.8 - 0.5 + 64])
    assert r.image[10, 256].max() == 0 and r.image[256, 256].min() == 100  # padding band / content
    np.testing.assert_allclose(g.compose_affine(r.input_to_image, r.image_to_input), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_bottomup_mask_zeroes_ignored_regions() -> None:
    t = BottomUpTransform(COCO, (256, 256), None)
    img = np.zeros((200, 300, 3), np.uint8)
    crowd_box = [40.0, 30.0, 80.0, 60.0]
    rle_mask = np.zeros((200, 300), np.uint8)
    rle_mask[150:190, 200:290] = 1
    params = BottomUpParams(scale=1.1, rotation=20.0, translation=(0.05, 0.0), flip=True)
    r = t(img, np.zeros((0, 17, 3)), [box_polygon(crowd_box)], rle_mask, params=params)
    # reference: rasterise the ignore regions at image resolution and warp them (nearest)
    ref_img = rle_mask.copy()
    ref_img[30:91, 40:121] = 1
    ref = cv2.warpAffine(ref_img, r.image_to_input, (256, 256), flags=cv2.INTER_NEAREST)
    agree = np.mean((r.mask == 0) == (ref > 0))
    assert agree > 0.99
    assert (r.mask == 0).sum() > 0.9 * (ref > 0).sum()
    centre = g.apply_affine(r.image_to_input, [[80.0, 60.0]])[0]
    assert r.mask[int(round(centre[1])), int(round(centre[0]))] == 0
    assert r.mask.dtype == np.uint8 and set(np.unique(r.mask)) <= {0, 1}


def test_bottomup_flip_swaps_channels_and_mirrors() -> None:
    t = BottomUpTransform(COCO, (200, 200), None)
    kp = np.zeros((1, 17, 3))
    kp[0, :, 0] = np.arange(17) * 10.0
    kp[0, :, 1] = 50.0
    kp[0, :, 2] = 2
    img = np.zeros((200, 200, 3), np.uint8)
    plain = t(img, kp, params=BottomUpParams())
    flipped = t(img, kp, params=BottomUpParams(flip=True))
    fi = np.asarray(COCO.flip_indices)
    np.testing.assert_allclose(flipped.keypoints[0, :, 0], 199 - plain.keypoints[0, fi, 0], atol=1e-9)
    np.testing.assert_allclose(flipped.keypoints[0, :, 1], plain.keypoints[0, fi, 1], atol=1e-9)


def test_crop_params_are_used_verbatim() -> None:
    t = TopDownTransform(COCO, (32, 32), {"flip_prob": 1.0})
    p = CropParams(np.array([10.0, 10.0]), np.array([32.0, 32.0]), 0.0, False)
    r = t(np.zeros((20, 20, 3), np.uint8), p.center, p.scale, None, params=p)
    assert r.params is p
    np.testing.assert_allclose(r.image_to_crop, g.crop_matrix([10, 10], [32, 32], 0, (32, 32)))

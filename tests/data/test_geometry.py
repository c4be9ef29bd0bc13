"""Box / affine maths of lightning_pose.data.geometry against hand-computed cases and OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lightning_pose.data import geometry as g


def test_fix_aspect_ratio_grows_the_short_side() -> None:
    np.testing.assert_allclose(g.fix_aspect_ratio((30, 80), 0.75), [60, 80])  # too narrow -> widen
    np.testing.assert_allclose(g.fix_aspect_ratio((90, 80), 0.75), [90, 120])  # too wide -> taller
    np.testing.assert_allclose(g.fix_aspect_ratio((60, 80), 0.75), [60, 80])
    with pytest.raises(ValueError):
        g.fix_aspect_ratio((1, 1), 0.0)


def test_box_to_center_scale_hand_case() -> None:
    c, s = g.box_to_center_scale([10, 20, 30, 80], 192 / 256)
    np.testing.assert_allclose(c, [25.0, 60.0])
    np.testing.assert_allclose(s, [60 * 1.25, 80 * 1.25])
    c, s = g.box_to_center_scale([0, 0, 100, 50], 1.0, padding=1.0)
    np.testing.assert_allclose(c, [50, 25])
    np.testing.assert_allclose(s, [100, 100])
    with pytest.raises(ValueError, match="non-positive"):
        g.box_to_center_scale([0, 0, 0, 10], 1.0)


def test_mpii_center_scale_matches_hrnet() -> None:
    # HRNet: c_y += 15 s; s *= 1.25; box side s * 200 px
    c, s = g.mpii_center_scale([100.0, 100.0], 2.0)
    np.testing.assert_allclose(c, [100.0, 130.0])
    np.testing.assert_allclose(s, [500.0, 500.0])
    c, s = g.mpii_center_scale([100.0, 100.0], 2.0, aspect_ratio=0.75)
    np.testing.assert_allclose(s, [500.0, 500.0 / 0.75])
    with pytest.raises(ValueError):
        g.mpii_center_scale([0, 0], -1.0)


def test_points_to_center_scale_half_body() -> None:
    pts = np.array([[0.0, 0.0], [10.0, 40.0], [20.0, 20.0]])
    c, s = g.points_to_center_scale(pts, 0.75, padding=1.5)
    np.testing.assert_allclose(c, [10.0, 20.0])  # mean, as HRNet
    np.testing.assert_allclose(s, [30.0 * 1.5, 40.0 * 1.5])
    assert g.points_to_center_scale(pts[:1], 0.75) is None


def test_crop_matrix_hand_case_pixel_centres() -> None:
    # box centre (100, 50), 200 x 100 px -> 100 x 50 output: factor 0.5, box edges to output edges
    m = g.crop_matrix([100, 50], [200, 100], 0.0, (100, 50))
    np.testing.assert_allclose(m, [[0.5, 0, -0.5], [0, 0.5, -0.5]], atol=1e-12)
    # the box spans c +- s / 2 = [0, 200] x [0, 100] (continuous); its edges land on the input edges
    np.testing.assert_allclose(g.apply_affine(m, [[0.0, 0.0]]), [[-0.5, -0.5]], atol=1e-12)
    np.testing.assert_allclose(g.apply_affine(m, [[200.0, 100.0]]), [[99.5, 49.5]], atol=1e-12)
    np.testing.assert_allclose(g.apply_affine(m, [[100, 50]]), [[49.5, 24.5]], atol=1e-12)


def test_crop_matrix_rotation_is_counter_clockwise_and_matches_cv2() -> None:
    m = g.crop_matrix([50, 50], [101, 101], 90.0, (101, 101))
    # a point right of the centre goes up on screen (smaller y) for a positive angle
    np.testing.assert_allclose(g.apply_affine(m, [[60, 50]]), [[50, 40]], atol=1e-9)
    for angle in (-37.0, 12.5, 170.0):
        w, h = 64, 48
        ref = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
        ours = g.crop_matrix(((w - 1) / 2, (h - 1) / 2), (w, h), angle, (w, h))
        np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_crop_matrix_is_warpaffine_compatible() -> None:
    img = np.zeros((60, 80), np.uint8)
    img[20, 30] = 255
    m = g.crop_matrix([30, 20], [20, 20], 0.0, (21, 21))  # one image px -> 1.05 input px
    m_int = g.crop_matrix([30, 20], [21, 21], 0.0, (21, 21))  # exactly one to one
    out = cv2.warpAffine(img, m_int, (21, 21), flags=cv2.INTER_LINEAR)
    assert np.unravel_index(out.argmax(), out.shape) == (10, 10)
    np.testing.assert_allclose(g.apply_affine(m_int, [[30, 20]]), [[10, 10]], atol=1e-12)
    np.testing.assert_allclose(g.apply_affine(m, [[30, 20]]), [[10, 10]], atol=1e-12)


def test_inverse_and_composition_identity_random() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = g.crop_matrix(
            rng.uniform(-500, 500, 2),
            rng.uniform(5, 900, 2),
            rng.uniform(-180, 180),
            (int(rng.integers(16, 512)), int(rng.integers(16, 512))),
        )
        inv = g.invert_affine(m)
        np.testing.assert_allclose(g.compose_affine(m, inv), [[1, 0, 0], [0, 1, 0]], atol=1e-9)
        np.testing.assert_allclose(g.compose_affine(inv, m), [[1, 0, 0], [0, 1, 0]], atol=1e-9)
        pts = rng.uniform(-1000, 1000, (7, 2))
        np.testing.assert_allclose(g.apply_affine(inv, g.apply_affine(m, pts)), pts, atol=1e-9)
    np.testing.assert_allclose(g.invert_affine(m), np.linalg.inv(g.to_homogeneous(m))[:2], atol=1e-9)
    with pytest.raises(ValueError, match="singular"):
        g.invert_affine(np.zeros((2, 3)))


def test_compose_order_and_flip() -> None:
    f = g.flip_matrix(100)
    np.testing.assert_allclose(g.apply_affine(f, [[0, 5], [99, 7]]), [[99, 5], [0, 7]])
    t = np.array([[1.0, 0, 10], [0, 1, 0]])
    # compose(A, B) applies B first
    np.testing.assert_allclose(g.apply_affine(g.compose_affine(f, t), [[0, 0]]), [[89, 0]])
    np.testing.assert_allclose(g.apply_affine(g.compose_affine(t, f), [[0, 0]]), [[109, 0]])


def test_flip_of_image_equals_flip_of_crop() -> None:
    # crop(c', s, -r) o flip_image == flip_input o crop(c, s, r): flip tests need no shift in the input frame
    img_w, size = 640, (192, 256)
    c, s, r = np.array([200.3, 150.7]), np.array([150.0, 200.0]), 23.0
    lhs = g.compose_affine(g.crop_matrix([img_w - 1 - c[0], c[1]], s, -r, size), g.flip_matrix(img_w))
    rhs = g.compose_affine(g.flip_matrix(size[0]), g.crop_matrix(c, s, r, size))
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)


def test_resize_pad_matrix_hand_case() -> None:
    m = g.resize_pad_matrix((640, 480), (512, 512))  # factor 0.8, 384 px tall, 64 px bands
    np.testing.assert_allclose(
        g.apply_affine(m, [[-0.5, -0.5], [639.5, 479.5]]), [[-0.5, 63.5], [511.5, 447.5]], atol=1e-9
    )


def test_apply_affine_shapes() -> None:
    m = g.crop_matrix([0, 0], [10, 10], 0, (10, 10))
    assert g.apply_affine(m, np.zeros((3, 4, 2))).shape == (3, 4, 2)
    with pytest.raises(ValueError):
        g.apply_affine(m, np.zeros((3, 3)))

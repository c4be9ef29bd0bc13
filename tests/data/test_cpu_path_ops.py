"""The faster ops of the CPU data path give the same bits as what they replace (issue 14 part 1).

(A per-channel ``cv2.LUT`` normalisation was tried: 2x faster in isolation, but slower inside the pipeline,
so ``to_normalized_tensor`` stays the torch formula; its tests pin the values any faster version must keep.)
The seeded-sample fingerprints (test_sample_fingerprints.py) check the whole pipeline end to end; these tests check
each op against its reference directly, on inputs that reach the edge cases (saturation, empty noise, odd shapes).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.data.datasets.tensors import _INV_STD_255, _MEAN_255, to_normalized_tensor
from lightning_pose.data.transforms import PhotometricAugmentation, build_photometric, normalize_image
from lightning_pose.data.transforms.photometric import add_truncated_noise, apply_photometric
from lightning_pose.data.transforms.topdown import _clip


@pytest.mark.parametrize("shape", [(256, 192, 3), (1, 1, 3), (7, 5, 3), (64, 64, 3)])
def test_normalisation_is_bit_identical_to_the_formula(shape: tuple) -> None:
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    img.reshape(-1, 3)[:256, 0] = np.arange(256)[: img.size // 3]  # every grey level where the image is big enough
    ref = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().sub_(_MEAN_255).mul_(_INV_STD_255)
    out = to_normalized_tensor(img)
    assert out.dtype == torch.float32 and out.shape == (3, shape[0], shape[1]) and out.is_contiguous()
    assert torch.equal(out, ref)
    assert np.array_equal(out.numpy(), normalize_image(img))


def test_normalisation_of_a_strided_view_and_bad_input() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    view = img[:, ::2]
    assert torch.equal(to_normalized_tensor(view), torch.from_numpy(normalize_image(np.ascontiguousarray(view))))
    with pytest.raises(ValueError, match="uint8"):
        to_normalized_tensor(img.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        to_normalized_tensor(img[:, :, :2])


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [rng.integers(0, 256, (64, 48, 3), dtype=np.uint8) for _ in range(n)]
    out[1][:] = 255  # saturated: brightness / noise clip at the top
    out[2][:] = 0
    return out


def test_ops_without_compose_give_what_compose_gives() -> None:
    settings = PhotometricAugmentation(
        color_jitter_prob=0.7, blur_prob=0.5, noise_prob=0.5, occlusion_prob=0.5, hue=0.05
    )
    ours, ref = build_photometric(settings), build_photometric(settings)
    ours.set_random_seed(11)
    ref.set_random_seed(11)
    changed = 0
    for img in _images(40):
        a = apply_photometric(ours, img.copy())
        b = ref(image=img.copy())["image"]
        assert a.dtype == np.uint8 and np.array_equal(a, b)
        changed += int(not np.array_equal(a, img))
    assert changed > 10  # the ops did run


def test_gauss_noise_draws_the_albumentations_noise_law() -> None:
    """Our float32 noise map has albumentations' law: the same mean, spread and 2x2-pixel grain on a flat grey
    image (statistics over 300 applications each; the values themselves differ: float32 vs float64 draws)."""
    import albumentations as A

    settings = PhotometricAugmentation(color_jitter_prob=0.0, blur_prob=0.0, noise_prob=1.0, noise_std=0.3)
    (ours,) = build_photometric(settings).transforms
    assert isinstance(ours, A.GaussNoise) and type(ours) is not A.GaussNoise
    ref = A.GaussNoise(std_range=(0.0, 0.3), noise_scale_factor=settings.noise_scale_factor, p=1.0)
    ours.set_random_seed(5)
    ref.set_random_seed(5)
    img = np.full((64, 48, 3), 128, np.uint8)
    stats = []
    for op in (ours, ref):
        d = np.stack([op(image=img)["image"].astype(np.float64) - 128.0 for _ in range(300)])
        assert d.shape == (300, 64, 48, 3)
        # mean, spread, neighbour differences along rows / columns (the grain), channel independence
        stats.append(
            [
                d.mean(),
                d.std(),
                np.abs(np.diff(d, axis=1)).mean(),
                np.abs(np.diff(d, axis=2)).mean(),
                np.corrcoef(d[..., 0].ravel(), d[..., 1].ravel())[0, 1],
            ]
        )
    (m1, s1, r1, c1, x1), (m2, s2, r2, c2, x2) = stats
    assert abs(m1 - m2) < 0.5 and abs(s1 / s2 - 1) < 0.05 and abs(r1 / r2 - 1) < 0.05 and abs(c1 / c2 - 1) < 0.05
    assert abs(x1) < 0.02 and abs(x2) < 0.02
    assert s1 > 10  # noise was added (std 0.3 x 255 at most)
    again = pickle.loads(pickle.dumps(ours))  # DataLoader workers started by spawn unpickle the pipeline
    assert type(again) is type(ours)


def test_add_truncated_noise_against_albumentations_add_noise() -> None:
    from albumentations.augmentations.pixel.functional import add_noise

    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    for noise in (
        np.zeros(img.shape, np.float32),
        rng.normal(0, 5, img.shape).astype(np.float32),
        rng.normal(0, 400, img.shape).astype(np.float32),
        np.abs(rng.normal(0, 9, img.shape)),
        np.full(img.shape, -0.999, np.float32),
        np.full(img.shape, 1e6, np.float32),
    ):
        got = add_truncated_noise(img, noise)
        assert got.dtype == np.uint8 and np.array_equal(got, add_noise(img, noise))


def test_scalar_clip_equals_numpy_clip() -> None:
    values = np.random.default_rng(3).standard_normal(20000) * 60.0
    assert all(_clip(float(v), -90.0, 90.0) == float(np.clip(v, -90.0, 90.0)) for v in values)
    assert _clip(5.0, 1.0, 1.0) == 1.0


def test_cached_centre_and_size_are_fresh_copies(shared_data: Path) -> None:
    from lightning_pose.data.datasets import TopDownDataset
    from lightning_pose.data.readers import read_coco

    data = shared_data / "coco"
    ds = TopDownDataset(read_coco(data / "test_coco.json", data).records, "coco", (96, 128), {}, seed=0)
    c, s = ds.center_scale(0)
    expected = ds.transform.base_center_scale(np.asarray(ds.items[0].bbox))
    assert np.array_equal(c, expected[0]) and np.array_equal(s, expected[1])
    c += 100.0
    s *= 2.0
    c2, s2 = ds.center_scale(0)
    assert np.array_equal(c2, expected[0]) and np.array_equal(s2, expected[1])


def _jitter_reference(
    img: np.ndarray, brightness: float, contrast: float, saturation: float, order: list
) -> np.ndarray:
    """torchvision's colour jitter maths in float64, op by op, without clipping or rounding between the ops."""
    w = np.array([0.299, 0.587, 0.114])
    y = img.astype(np.float64)
    for op in order:
        if op == 0:
            y = y * brightness
        elif op == 1:
            y = y * contrast + (1.0 - contrast) * float((y @ w).mean())
        elif op == 2:
            y = saturation * y + (1.0 - saturation) * (y @ w)[..., None]
    return y


def test_fused_color_jitter_is_the_colour_maths_rounded_once() -> None:
    import albumentations as A

    settings = PhotometricAugmentation(
        color_jitter_prob=1.0, brightness=0.4, contrast=0.4, saturation=0.4, blur_prob=0.0, noise_prob=0.0
    )
    (ours,) = build_photometric(settings).transforms
    assert isinstance(ours, A.ColorJitter) and type(ours) is not A.ColorJitter
    ours.set_random_seed(7)
    rng = np.random.default_rng(4)
    orders = set()
    for k in range(60):
        # mid-range images never saturate (the reference does not clip); every fifth one does
        hi = 256 if k % 5 == 0 else 170
        img = rng.integers(0 if hi == 256 else 60, hi, (24, 20, 3), dtype=np.uint8)
        p = ours.get_params()
        orders.add(tuple(p["order"]))
        got = ours.apply(img, **p)
        want = np.clip(_jitter_reference(img, p["brightness"], p["contrast"], p["saturation"], p["order"]), 0, 255)
        assert got.dtype == np.uint8 and got.shape == img.shape
        # one rounding of the exact value (+ cv2.transform's uint8 path: coefficients in 1/1024 fixed point)
        assert np.abs(got - want).max() < 1.0, (k, p)
    assert len(orders) > 5  # the order of the ops is drawn, and used
    again = pickle.loads(pickle.dumps(ours))  # spawn-started workers unpickle the pipeline
    assert type(again) is type(ours)


def test_fused_color_jitter_keeps_albumentations_for_hue_and_identity() -> None:
    import albumentations as A

    img = np.random.default_rng(1).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    settings = PhotometricAugmentation(color_jitter_prob=1.0, hue=0.1, blur_prob=0.0, noise_prob=0.0)
    (ours,) = build_photometric(settings).transforms
    ref = A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1, p=1.0)
    ours.set_random_seed(2)
    ref.set_random_seed(2)
    for _ in range(10):
        assert np.array_equal(ours(image=img)["image"], ref(image=img)["image"])
    assert ours.apply(img, 1.0, 1.0, 1.0, 0.0, [0, 1, 2, 3]) is img


def test_float_crop_matrix_compose_and_inverse_match_the_numpy_formulas() -> None:
    from lightning_pose.data import geometry

    rng = np.random.default_rng(8)
    for _ in range(300):
        c, s = rng.uniform(-50, 700, 2), rng.uniform(5, 900, 2)
        r = float(rng.normal() * 60) if rng.random() < 0.7 else 0.0
        th = np.deg2rad(r)
        lin = np.diag([192 / s[0], 256 / s[1]]) @ np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
        want = np.hstack([lin, (np.array([95.5, 127.5]) - lin @ c)[:, None]])
        got = geometry.crop_matrix(c, s, r, (192, 256))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
        flip = geometry.flip_matrix(640)
        h = np.vstack([got, [0, 0, 1]]) @ np.vstack([flip, [0, 0, 1]])
        np.testing.assert_allclose(geometry.compose_affine(got, flip), h[:2], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(
            geometry.invert_affine(got), np.linalg.inv(np.vstack([got, [0, 0, 1]]))[:2], atol=1e-9
        )
    with pytest.raises(ValueError, match="non-finite"):
        geometry.crop_matrix((np.nan, 1.0), (10.0, 10.0), 0.0, (4, 4))
    with pytest.raises(ValueError, match="positive"):
        geometry.crop_matrix((1.0, 1.0), (10.0, 0.0), 0.0, (4, 4))
    with pytest.raises(ValueError, match="singular"):
        geometry.invert_affine(np.zeros((2, 3)))


def test_coarse_dropout_draws_the_albumentations_hole_law_and_paints_hashed_uniform_colours() -> None:
    """Our CoarseDropout draws its holes with Python scalars: the same law as albumentations' (hole count, sizes and
    corners; statistics over 4,000 draws each), every hole inside the image, and it paints exactly its holes."""
    import albumentations as A

    from lightning_pose.data.transforms.photometric import hole_colours

    settings = PhotometricAugmentation(color_jitter_prob=0.0, blur_prob=0.0, noise_prob=0.0, occlusion_prob=1.0)
    (ours,) = build_photometric(settings).transforms
    assert isinstance(ours, A.CoarseDropout) and type(ours) is not A.CoarseDropout
    ref = A.CoarseDropout(
        num_holes_range=(1, 3), hole_height_range=(0.05, 0.25), hole_width_range=(0.05, 0.25), fill=0, p=1.0
    )
    ours.set_random_seed(3)
    ref.set_random_seed(3)
    shape = (64, 48, 3)
    stats = []
    for op in (ours, ref):
        counts, boxes = [], []
        for _ in range(4000):
            holes = op.get_params_dependent_on_data({"shape": shape}, {})["holes"]
            counts.append(len(holes))
            boxes.extend(np.asarray(holes).tolist())
        b = np.array(boxes, dtype=np.float64)
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= 48).all() and (b[:, 3] <= 64).all()
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        assert w.min() >= 2 and h.min() >= 3 and w.max() <= 12 and h.max() <= 16  # int(size x [0.05, 0.25])
        stats.append([np.bincount(counts, minlength=4)[1:] / 4000, h.mean(), w.mean(), b[:, 0].mean(), b[:, 1].mean()])
    (n1, h1, w1, x1, y1), (n2, h2, w2, x2, y2) = stats
    assert np.abs(n1 - n2).max() < 0.04 and np.abs(n1 - 1 / 3).max() < 0.04
    assert abs(h1 - h2) < 0.2 and abs(w1 - w2) < 0.15 and abs(x1 - x2) < 0.6 and abs(y1 - y2) < 0.8

    img = np.full(shape, 7, np.uint8)
    painted = 0
    for _ in range(30):
        p = ours.get_params_dependent_on_data({"shape": shape}, {})
        a = ours.apply(img, **p)
        inside = np.zeros(shape[:2], bool)
        for x0, y0, x1, y1 in p["holes"].tolist():
            inside[y0:y1, x0:x1] = True
        assert np.array_equal(a[~inside], img[~inside])  # nothing outside the holes changes
        colours = hole_colours(int(p["seed"]), len(p["holes"]), 3)
        x0, y0, x1, y1 = p["holes"][-1].tolist()  # the last hole is painted last: its colour shows everywhere in it
        assert (a[y0:y1, x0:x1] == np.array(colours[-1], np.uint8)).all()
        painted += int(inside.any())
    assert painted == 30
    assert np.array_equal(img, np.full(shape, 7, np.uint8))  # the input is not modified
    colours = np.array(hole_colours(12345, 20000, 3))
    assert colours.min() == 0 and colours.max() == 255 and abs(colours.mean() - 127.5) < 1.5
    assert hole_colours(5, 3, 3) == hole_colours(5, 3, 3) != hole_colours(6, 3, 3)
    again = pickle.loads(pickle.dumps(ours))
    assert type(again) is type(ours)


def test_rgb_decoding_gives_the_bgr_decode_reversed_and_the_same_samples(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenCV >= 4.10 decodes straight to RGB (no conversion pass); the pixels are the BGR decode's, channels
    reversed, at full and reduced resolution, and a dataset's samples are the same bits either way."""
    import cv2

    from lightning_pose.data.datasets import TopDownDataset
    from lightning_pose.data.readers import read_coco
    from lightning_pose.data.transforms import image_io

    if image_io._IMREAD_RGB is None:
        pytest.skip("this OpenCV has no IMREAD_COLOR_RGB")
    file = sorted((shared_data / "coco").rglob("*.jpg"))[0]
    for f in (1, 2, 4, 8):
        rgb, is_bgr = image_io.read_image(file, downscale=f)
        flags, _ = image_io.decode_flags(f)
        bgr = cv2.imread(str(file), flags & ~image_io._IMREAD_RGB | cv2.IMREAD_COLOR)
        assert not is_bgr and rgb.shape == bgr.shape and np.array_equal(rgb, bgr[..., ::-1]), f
    with pytest.raises(ValueError, match="downscale"):
        image_io.decode_flags(3)

    result = read_coco(shared_data / "coco" / "test_coco.json", shared_data / "coco")
    aug = {"shift_prob": 0.5, "occlusion_prob": 0.5}

    def samples() -> list[dict]:
        ds = TopDownDataset(result.records, "coco", (96, 128), aug, seed=3)
        return [ds[i] for i in range(len(ds))]

    direct = samples()
    monkeypatch.setattr(image_io, "_IMREAD_RGB", None)  # as with OpenCV < 4.10: BGR decode + conversion
    assert image_io.decode_flags(1) == (cv2.IMREAD_COLOR, True)
    converted = samples()
    for a, b in zip(direct, converted):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["keypoints"], b["keypoints"])

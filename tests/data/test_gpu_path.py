"""The device (GPU) augmentation path, run on CPU tensors: same crops, keypoints and ``crop_to_image`` as the CPU path.

* geometry: Gaussian markers drawn at the keypoints are warped by the batched ``grid_sample`` with the CPU path's
  drawn parameters; their centroids land on the keypoints the CPU transform reports (1 px), and the warped pixels
  match ``cv2.warpAffine``'s;
* the bytes dataset on the real COCO JPEGs: ``keypoints`` identical and ``crop_to_image`` bitwise equal to the CPU
  dataset's for the same seed (full geometric augmentation), pixels within rounding of the CPU crop with the
  photometric ops off;
* photometric ops with known parameters, errors naming the file, the loader options;
* a short training run through ``augment_on: gpu`` on demo data learns (slow).
"""

from __future__ import annotations

import colorsys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.data.datasets import TopDownDataset
from lightning_pose.data.datasets.gpu_augment import (
    augment_batch,
    decode_images,
    normalize,
    photometric,
    warp_images,
)
from lightning_pose.data.datasets.topdown_bytes import EncodedImages, TopDownBytesDataset, collate_encoded
from lightning_pose.data.records import DatasetError
from lightning_pose.data.transforms import TopDownTransform, denormalize_image
from lightning_pose.data.transforms.gpu_params import draw_photometric_params
from lightning_pose.data.transforms.photometric import PhotometricAugmentation
from lightning_pose.errors import ConfigError
from lightning_pose.skeletons import COCO

NO_PHOTO = {"color_jitter_prob": 0.0, "blur_prob": 0.0, "noise_prob": 0.0, "occlusion_prob": 0.0}
SIGMA = 2.0
IMG_W, IMG_H = 320, 240


def _marker_images(points: np.ndarray) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:IMG_H, 0:IMG_W].astype(np.float64)
    images = []
    for start in range(0, len(points), 3):
        img = np.zeros((IMG_H, IMG_W, 3), np.uint8)
        for c, (x, y) in enumerate(points[start : start + 3]):
            img[..., c] = np.rint(255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * SIGMA**2))).astype(np.uint8)
        images.append(img)
    return images


def _centroids(crops: np.ndarray, n: int) -> np.ndarray:
    """``crops`` ``(M, H, W, 3)``: marker i is channel i % 3 of crop i // 3; NaN when it left the crop."""
    out = np.full((n, 2), np.nan)
    yy, xx = np.mgrid[0 : crops.shape[1], 0 : crops.shape[2]]
    for i in range(n):
        ch = crops[i // 3, ..., i % 3].astype(np.float64)
        ch[ch < 8] = 0.0
        if ch.sum() > 0:
            out[i] = [(ch * xx).sum() / ch.sum(), (ch * yy).sum() / ch.sum()]
    return out


@pytest.mark.parametrize(
    "name, aug, size",
    [
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
            (96, 128),
        ),
        (
            "flip_rotation",
            {
                "scale_factor": 0.2,
                "rotation_factor": 30.0,
                "rotation_prob": 1.0,
                "flip_prob": 1.0,
                "half_body_prob": 0.0,
            },
            (96, 128),
        ),
        # the crop shrinks the image >= 2x: the device path block-averages by 2 first (the CPU path's reduced decoding)
        (
            "reduced",
            {
                "scale_factor": 0.1,
                "rotation_factor": 30.0,
                "rotation_prob": 1.0,
                "flip_prob": 0.5,
                "half_body_prob": 0.0,
            },
            (48, 64),
        ),
    ],
)
def test_device_warp_markers_follow_cpu_keypoints(name: str, aug: dict, size: tuple) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    t = TopDownTransform(COCO, size, {**aug, **NO_PHOTO}, seed=7)
    w_in, h_in = size
    flip_indices = np.asarray(COCO.flip_indices)
    checked, flips, worst_mad = 0, 0, 0.0
    for _ in range(8):
        kp = np.zeros((17, 3))
        kp[:, 0], kp[:, 1], kp[:, 2] = rng.uniform(110, 210, 17), rng.uniform(50, 190, 17), 2
        center, scale = t.base_center_scale([100.0, 40.0, 120.0, 160.0])
        params = t.sample_params(center, scale, kp)
        flips += params.flip
        images = _marker_images(kp[:, :2])
        cpu = [t(img, center, scale, kp, params=params) for img in images]
        c2i = torch.from_numpy(np.stack([r.crop_to_image for r in cpu]))
        f = t.decode_downscale(params)
        assert f == (2 if name == "reduced" else 1)
        warped = warp_images(
            [torch.from_numpy(im).permute(2, 0, 1).contiguous() for im in images], c2i, size, [f] * len(images)
        )
        crops = warped.permute(0, 2, 3, 1).numpy()
        # pixels: the CPU crop is cv2's (fixed-point coordinates, rounded to uint8), from the full-resolution image
        for r, g in zip(cpu, crops if f == 1 else []):
            diff = np.abs(r.image.astype(np.float64) - g)
            worst_mad = max(worst_mad, float(diff.mean()))
            assert diff.max() <= 4.0
        found = _centroids(crops, 17)
        reported = cpu[0].keypoints
        expected = reported[flip_indices if params.flip else np.arange(17), :2]
        zoom = w_in / params.scale[0]
        margin = 4 * SIGMA * zoom + 2
        ok = (
            (expected[:, 0] >= margin)
            & (expected[:, 0] <= w_in - 1 - margin)
            & (expected[:, 1] >= margin)
            & (expected[:, 1] <= h_in - 1 - margin)
        )
        np.testing.assert_allclose(found[ok], expected[ok], atol=1.0, err_msg=f"device warp markers for {params}")
        checked += int(ok.sum())
    assert checked >= 8 * 8
    assert worst_mad <= 0.5, f"mean |device - cv2| {worst_mad:.3f} grey levels"  # measured <= 0.25
    if name == "flip_rotation":
        assert flips == 8


@pytest.fixture(scope="module")
def coco_records(shared_data: Path) -> list:
    from lightning_pose.data.readers import read_coco

    return read_coco(shared_data / "coco" / "test_coco.json", shared_data / "coco").records


GEOMETRY = {
    "scale_factor": 0.35,
    "rotation_factor": 45.0,
    "rotation_prob": 0.6,
    "flip_prob": 0.5,
    "half_body_prob": 0.3,
    "shift_factor": 0.1,
    "shift_prob": 0.5,
}


def test_bytes_dataset_matches_cpu_dataset_on_coco_jpegs(coco_records: list) -> None:
    """Same seed, same index order: identical keypoints, bitwise crop_to_image, pixels within rounding."""
    torch.manual_seed(0)  # the augmentation streams mix in torch.initial_seed()
    aug = {**GEOMETRY, **NO_PHOTO}
    cpu = TopDownDataset(coco_records, "coco", (96, 128), aug, seed=5, reduced_decoding=False)
    dev = TopDownBytesDataset(coco_records, "coco", (96, 128), aug, seed=5, reduced_decoding=False)
    n = len(cpu)
    assert n == len(dev) >= 10
    cpu_samples = [cpu[i] for i in range(n)]
    batch = augment_batch(collate_encoded([dev[i] for i in range(n)]), (96, 128))
    assert set(batch) == set(cpu_samples[0]), "the device path returns exactly the CPU sample keys"
    assert batch["image"].shape == (n, 3, 128, 96) and batch["image"].dtype == torch.float32
    flips = 0
    for i, s in enumerate(cpu_samples):
        assert torch.equal(batch["crop_to_image"][i], s["crop_to_image"])
        assert torch.equal(batch["keypoints"][i], s["keypoints"])
        assert torch.equal(batch["gt_keypoints"][i], s["gt_keypoints"])
        assert bool(batch["flipped"][i]) == bool(s["flipped"])
        flips += int(s["flipped"])
        a = denormalize_image(s["image"].numpy()).astype(np.float64)
        b = denormalize_image(batch["image"][i].numpy()).astype(np.float64)
        diff = np.abs(a - b)
        assert diff.mean() <= 0.5 and diff.max() <= 4, f"sample {i}: mean {diff.mean():.3f} max {diff.max()}"
    assert 0 < flips < n


@pytest.mark.parametrize("reduced", [True, False])
def test_bytes_dataset_matches_cpu_dataset_on_mpii_with_reduced_decoding(shared_data: Path, reduced: bool) -> None:
    """MPII persons are large: most crops shrink their image >= 2x, so the CPU path decodes those JPEGs at 1/2 or 1/4
    (DCT scaling) and the device path block-averages by 2 or 4 (measured: mean |diff| <= 0.23, max 12 grey levels
    there; mean < 0.01, max 1 without reduction)."""
    from lightning_pose.data.readers import read_mpii

    torch.manual_seed(0)  # the augmentation streams mix in torch.initial_seed()
    records = read_mpii(shared_data / "mpii" / "test_mpii.json", shared_data / "mpii").records
    aug = {**NO_PHOTO, "scale_factor": 0.25, "rotation_factor": 30.0, "flip_prob": 0.5}
    cpu = TopDownDataset(records, "mpii", (256, 256), aug, seed=1, reduced_decoding=reduced)
    dev = TopDownBytesDataset(records, "mpii", (256, 256), aug, seed=1, reduced_decoding=reduced)
    samples = collate_encoded([dev[i] for i in range(len(dev))])
    factors = samples["encoded_image"].params["downscale"].tolist()
    assert (max(factors) > 1) if reduced else factors == [1] * 5
    batch = augment_batch(samples, (256, 256))
    for i in range(len(cpu)):
        s = cpu[i]
        assert torch.equal(batch["crop_to_image"][i], s["crop_to_image"])
        assert torch.equal(batch["keypoints"][i], s["keypoints"])
        diff = np.abs(
            denormalize_image(s["image"].numpy()).astype(np.float64)
            - denormalize_image(batch["image"][i].numpy()).astype(np.float64)
        )
        assert diff.mean() <= 0.5 and diff.max() <= (24 if factors[i] > 1 else 4), (i, diff.mean(), diff.max())


def test_photometric_params_follow_the_settings() -> None:
    rng = np.random.default_rng(0)
    always = PhotometricAugmentation(
        color_jitter_prob=1.0,
        hue=0.1,
        blur_prob=1.0,
        blur_max_kernel=7,
        noise_prob=1.0,
        occlusion_prob=1.0,
        occlusion_max_holes=3,
        occlusion_max_size=0.3,
    )
    for _ in range(50):
        p = draw_photometric_params(always, (96, 128), rng)
        assert p["photo_jitter"][0] == 1 and 0.8 <= p["photo_jitter"][1] <= 1.2 and abs(p["photo_jitter"][4]) <= 0.1
        assert p["photo_blur"][0] == 1 and p["photo_blur"][1] in (3, 5, 7) and 0.5 <= p["photo_blur"][2] <= 3.0
        assert p["photo_noise"][0] == 1 and 0 <= p["photo_noise"][1] <= 0.04
        holes = p["photo_holes"][p["photo_holes"][:, 2] > 0]
        assert 1 <= len(holes) <= 3
        assert (holes[:, 0] >= 0).all() and (holes[:, 2] <= 96).all() and (holes[:, 3] <= 128).all()
    off = draw_photometric_params(always, (96, 128), rng, enabled=False)
    assert off["photo_jitter"].tolist() == [0, 1, 1, 1, 0] and not off["photo_holes"].any()


def _params(n: int, jitter=None, blur=None, noise=None, holes=None) -> dict:
    out = {
        "jitter": torch.tensor([[0, 1, 1, 1, 0.0]] * n),
        "blur": torch.tensor([[0, 1, 0.0]] * n),
        "noise": torch.tensor([[0, 0, 0.5]] * n),
        "holes": torch.zeros(n, 2, 4),
    }
    for key, value in (("jitter", jitter), ("blur", blur), ("noise", noise), ("holes", holes)):
        if value is not None:
            out[key][0] = torch.tensor(value, dtype=torch.float32)
    return out


def test_photometric_ops_with_known_parameters() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 24, generator=g) * 0.5 + 0.25
    p = _params(2, jitter=[1, 1.2, 1, 1, 0])
    y = photometric(x, p["jitter"], p["blur"], p["noise"], p["holes"])
    torch.testing.assert_close(y[0], x[0] * 1.2)
    assert torch.equal(y[1], x[1]), "a sample that drew nothing is unchanged"
    # saturation 0 -> grey; contrast 0 -> the grey mean everywhere
    p = _params(2, jitter=[1, 1, 1, 0, 0])
    y = photometric(x, p["jitter"], p["blur"], p["noise"], p["holes"])
    torch.testing.assert_close(y[0, 0], y[0, 2])
    p = _params(2, jitter=[1, 1, 0, 1, 0])
    y = photometric(x, p["jitter"], p["blur"], p["noise"], p["holes"])
    assert float(y[0].std()) < 1e-6
    # hue against colorsys
    p = _params(2, jitter=[1, 1, 1, 1, 0.3])
    y = photometric(x, p["jitter"], p["blur"], p["noise"], p["holes"])
    for i, j in ((0, 0), (5, 7), (31, 23)):
        h, s, v = colorsys.rgb_to_hsv(*x[0, :, i, j].tolist())
        np.testing.assert_allclose(y[0, :, i, j].numpy(), colorsys.hsv_to_rgb((h + 0.3) % 1, s, v), atol=1e-5)
    # blur: a constant image stays constant (reflect border), an impulse spreads with unit mass
    const = torch.full((2, 3, 16, 16), 0.4)
    p = _params(2, blur=[1, 5, 1.0])
    torch.testing.assert_close(photometric(const, p["jitter"], p["blur"], p["noise"], p["holes"]), const)
    imp = torch.zeros(2, 3, 16, 16)
    imp[:, :, 8, 8] = 1.0
    y = photometric(imp, p["jitter"], p["blur"], p["noise"], p["holes"])
    assert y[0, 0].sum().item() == pytest.approx(1.0, abs=1e-5) and (y[0, 0] > 0).sum() == 25
    torch.testing.assert_close(y[0, 0], y[0, 0].T)
    # noise: std as drawn
    grey = torch.full((2, 3, 64, 64), 0.5)
    p = _params(2, noise=[1, 0.05, 1.0])
    y = photometric(grey, p["jitter"], p["blur"], p["noise"], p["holes"], generator=g)
    assert float((y[0] - 0.5).std()) == pytest.approx(0.05, rel=0.1)
    # occlusion: only the hole changes
    p = _params(2, holes=[[2, 3, 10, 12], [0, 0, 0, 0]])
    y = photometric(x, p["jitter"], p["blur"], p["noise"], p["holes"], generator=g)
    inside = torch.zeros(32, 24, dtype=torch.bool)
    inside[3:12, 2:10] = True
    assert torch.equal(y[0][:, ~inside], x[0][:, ~inside]) and not torch.equal(y[0][:, inside], x[0][:, inside])
    # ImageNet normalisation equals the CPU path's
    img = (torch.rand(1, 3, 4, 4, generator=g) * 255).round()
    back = denormalize_image(normalize(img / 255.0)[0].numpy())
    np.testing.assert_array_equal(back, img[0].permute(1, 2, 0).numpy().astype(np.uint8))


def test_bad_image_bytes_name_the_file(tmp_path: Path, shared_data: Path) -> None:
    good = (shared_data / "coco" / "000000000785.jpg").read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[:2] + b"\x00" * 64)
    enc = EncodedImages(
        [
            torch.frombuffer(bytearray(good), dtype=torch.uint8),
            torch.frombuffer(bytearray(broken.read_bytes()), dtype=torch.uint8),
        ],
        [str(shared_data / "coco" / "000000000785.jpg"), str(broken)],
        ["image 785", "image 7"],
    )
    with pytest.raises(DatasetError, match=r"broken\.jpg.*image 7.*cannot decode"):
        decode_images(enc)
    with pytest.raises(DatasetError, match=r"000000000785\.jpg.*decoded image is 640x425 px but the annotation says"):
        decode_images(EncodedImages(enc.data[:1], enc.files[:1], ["image 785"]), torch.tensor([[640, 480]]))


def test_loader_options_and_their_validation(shared_data: Path) -> None:
    from lightning_pose.data.datamodules import COCODataModule

    ann, images = str(shared_data / "coco" / "test_coco.json"), str(shared_data / "coco")
    kw = dict(
        root=images,
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=(96, 128),
        batch_size=4,
    )
    with pytest.raises(ConfigError, match="prefetch_factor=4 needs num_workers > 0"):
        COCODataModule(num_workers=0, prefetch_factor=4, **kw)
    with pytest.raises(ConfigError, match="augment_on must be 'cpu' or 'gpu'"):
        COCODataModule(num_workers=0, augment_on="tpu", **kw)
    with pytest.raises(ConfigError, match="mode: topdown only"):
        COCODataModule(num_workers=0, augment_on="gpu", mode="bottomup", **kw)
    dm = COCODataModule(
        num_workers=1, prefetch_factor=3, pin_memory=True, persistent_workers=True, augment_on="gpu", **kw
    )
    loader = dm.train_dataloader()
    assert (loader.prefetch_factor, loader.pin_memory, loader.persistent_workers) == (3, True, True)
    assert isinstance(loader.dataset, TopDownBytesDataset) and loader.collate_fn is collate_encoded
    # the datamodule's hook (what Lightning calls after moving the batch) builds the standard batch
    batch = collate_encoded([loader.dataset[i] for i in range(4)])
    out = dm.on_after_batch_transfer(batch, 0)
    assert out["image"].shape == (4, 3, 128, 96) and torch.isfinite(out["image"]).all()
    assert "encoded_image" not in out and "photo_holes" not in out


@pytest.mark.slow
def test_training_through_the_gpu_path_learns(demo_cache: Path) -> None:
    """~64 demo images, 60 steps of a narrow SimpleBaseline through augment_on: gpu (photometric defaults on):
    PCK@0.2 on the val split rises far above the untrained model's (measured 0.16 -> 0.84), the loss falls."""
    import lightning as L

    from lightning_pose.data.datamodules import DemoDataModule
    from lightning_pose.tasks import SimpleBaselineTask

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    dm = DemoDataModule(
        num_train=64,
        num_val=16,
        image_size=(128, 128),
        input_size=(64, 64),
        batch_size=16,
        num_workers=0,
        augment_on="gpu",
        augmentation={"rotation_factor": 20.0, "half_body_prob": 0.0},
    )

    def optimizer(params: object) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=3e-3)

    task = SimpleBaselineTask(
        backbone="lcnet_050",
        deconv_channels=(32, 32),
        keypoint_set=dm.keypoint_set,
        input_size=dm.input_size,
        optimizer=optimizer,
        flip_test=False,
    )
    common = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    before = L.Trainer(**common).validate(task, datamodule=dm, verbose=False)[0]["val/PCK@0.2"]
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):  # noqa: ANN001
            assert batch["image"].shape == (16, 3, 64, 64), "the task sees the decoded, augmented batch"
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(max_epochs=10, check_val_every_n_epoch=100, callbacks=[Record()], **common)
    trainer.fit(task, datamodule=dm)
    after = trainer.validate(task, datamodule=dm, verbose=False)[0]["val/PCK@0.2"]
    assert trainer.global_step >= 40
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert after >= max(0.5, before + 0.3), f"PCK@0.2 {before:.3f} -> {after:.3f}"

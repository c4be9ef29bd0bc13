"""Seeded samples stay bit-identical through refactors of the transforms and datasets.

The fingerprints below were computed on main before the transform base (``transforms/base.py``) existed: SHA-256
(first 16 hex digits) of every tensor of every sample (key, dtype, shape, bytes), for top-down COCO crops (train with
photometric + occlusion + shift augmentation, val), bottom-up COCO images (train with occlusion, val) and top-down MPII
crops, read from the shared samples with ``torch.manual_seed(0)`` in the main process; the last entry of each list is
sample 0 drawn again (the stream continues). Re-recorded deliberately when the pixel maths changed on purpose (issue 14 part 1: colour jitter as one affine colour map), never to make a refactor pass. Image decoding and warps come from OpenCV, the photometric noise from
albumentations: with other versions of these libraries than the recorded ones the pixels may legitimately differ,
so the test is skipped then.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

#: library versions the fingerprints were computed with (cv2, albumentations, numpy)
VERSIONS = ("5.0.0", "2.0.8", "2.4.6")

FINGERPRINTS = {
    "topdown_coco_train": [
        "e16c3ed8d9e8a136",
        "fa0b005cf518aca3",
        "0d228512a3e692a0",
        "0ebaa5ecac2a28d3",
        "fa5516657509d9a0",
        "9caf1be64f291cab",
        "5b407d26cce9d39c",
        "540d6071d2ff9c74",
        "82ea2f2c43f51266",
        "7ca88a7f01254e47",
        "b0571051fdbd94da",
        "eeb328c9cdd941e4",
        "37c38974aee83047",
    ],
    "topdown_coco_val": [
        "aa517d87fa8d1dd4",
        "466eb7264521f970",
        "0548adb6cc237e90",
        "fe7acccc30047f03",
        "7083855efe24bd47",
        "e3aaaca9c0c59de2",
        "cca8c4c8fe8da02d",
        "e3b45af4dc99b251",
        "0c1e77a89ad048f7",
        "eb655cf5b104b6cc",
        "12a04335577b1cad",
        "8701bfd2b1dd5012",
        "aa517d87fa8d1dd4",
    ],
    "bottomup_coco_train": [
        "c5bdc50bb76fa9e7",
        "46506a63296b6dab",
        "55361d5ec749decb",
        "7437df2c1a98829d",
        "c54e78fa4f6f2e95",
    ],
    "bottomup_coco_val": [
        "2c6c22fbbc898293",
        "69b6a7d7506828bf",
        "be58ac9240fbb8fe",
        "080fc9285e5df1ca",
        "2c6c22fbbc898293",
    ],
    "topdown_mpii_train": [
        "e7037e151a595977",
        "c135d50a61534cc1",
        "976b861e0a512353",
        "3b507f4a733c414f",
        "7172b00910b80b3d",
        "05422a90b87cc209",
    ],
}


def _digest(sample: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(sample):
        value = sample[key]
        a = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _versions() -> tuple[str, str, str]:
    import albumentations
    import cv2

    return cv2.__version__, albumentations.__version__, np.__version__


def _datamodules(shared: Path) -> dict:
    from lightning_pose.data.datamodules import COCODataModule, MPIIDataModule

    ann, images = str(shared / "coco" / "test_coco.json"), str(shared / "coco")
    coco = dict(root="unused", train_ann=ann, train_images=images, val_ann=ann, val_images=images, num_workers=0)
    aug = {"occlusion_prob": 0.5, "noise_prob": 0.5, "shift_prob": 0.5, "shift_factor": 0.1}
    return {
        "topdown_coco": COCODataModule(input_size=(96, 128), augmentation=aug, **coco),
        "bottomup_coco": COCODataModule(
            input_size=(128, 128), mode="bottomup", augmentation={"occlusion_prob": 0.5}, **coco
        ),
        "topdown_mpii": MPIIDataModule(
            root="unused",
            train_ann=str(shared / "mpii" / "test_mpii.json"),
            train_images=str(shared / "mpii"),
            input_size=(64, 64),
            num_workers=0,
        ),
    }


def test_seeded_samples_are_bit_identical(shared_data: Path) -> None:
    if _versions() != VERSIONS:
        pytest.skip(f"fingerprints recorded with cv2/albumentations/numpy {VERSIONS}, found {_versions()}")
    torch.manual_seed(0)
    got = {}
    for name, dm in _datamodules(shared_data).items():
        for split in ("train",) if name == "topdown_mpii" else ("train", "val"):
            ds = dm.dataset(split)
            got[f"{name}_{split}"] = [_digest(ds[i]) for i in range(len(ds))] + [_digest(ds[0])]
    for key, expected in FINGERPRINTS.items():
        assert got[key] == expected, (
            f"{key}: seeded samples changed (first differing index "
            f"{next(i for i, (a, b) in enumerate(zip(got[key], expected)) if a != b)})"
        )

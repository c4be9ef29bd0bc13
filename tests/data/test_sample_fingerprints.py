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
        "3525626ee90bd7fc",
        "c94f7b6e68a6ef33",
        "813e7b29ad9a8e69",
        "5f3b8281e73359bf",
        "ce54a41ba8499124",
        "2ef0db73f3d6ab88",
        "27dfa0cba6a00fa5",
        "2f0b8bf40b8395da",
        "4a8191216ab7cd88",
        "e81eababc4820f46",
        "1543fbb74a6ba854",
        "9ce3489775ab297d",
        "5b79852114dc49d5",
    ],
    "topdown_coco_val": [
        "46664c45576b8168",
        "a8e1351a532ef5f3",
        "c8580bc9e34233af",
        "fff6abc9e009d9da",
        "66987a618dafb339",
        "9fa6fdcb06282886",
        "132fc61f9899ce5c",
        "7c0cb6aa667f4059",
        "1d43b03d42da97c7",
        "e9139874c9ef97e1",
        "1201490436993f1b",
        "f0116ca12183ddc3",
        "46664c45576b8168",
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
        "0258607e59bad208",
        "7e799a44c686b1be",
        "4dab51f4a2991a15",
        "cc30217d1fd66d23",
        "9bc991dc6982de20",
        "8d8a7f9693eeed57",
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

"""Seeded samples stay bit-identical through refactors of the transforms and datasets.

The fingerprints below were computed on main before the transform base (``transforms/base.py``) existed: SHA-256
(first 16 hex digits) of every tensor of every sample (key, dtype, shape, bytes), for top-down COCO crops (train with
photometric + occlusion + shift augmentation, val), bottom-up COCO images (train with occlusion, val) and top-down MPII
crops, read from the shared samples with ``torch.manual_seed(0)`` in the main process; the last entry of each list is
sample 0 drawn again (the stream continues). Re-recorded deliberately when the pixel maths changed on purpose (issue 14 part 1: colour jitter as one affine colour map; uint8 top-down images; crop matrices in plain floats,
last-bit differences; occlusion colours hashed from the op seed; session 5: the Gaussian-noise map drawn in float32,
which changed exactly the 7 noised samples of ``topdown_coco_train``: with noise off, old and new code gave the same
13 fingerprints), never to make a refactor pass. Image decoding and warps come from OpenCV, the photometric noise from
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
        "bea4a202ce73eb90",
        "fa0b005cf518aca3",
        "3db737148912fcec",
        "5a131605708675a8",
        "d5473a66b0037af7",
        "9caf1be64f291cab",
        "e1ac29ce5cae5db8",
        "ecd84559db901b50",
        "879d052246dd484b",
        "7ca88a7f01254e47",
        "738535630633bd39",
        "9a76e9c88da42a8e",
        "f8773a3ec6f17c79",
    ],
    "topdown_coco_val": [
        "ae534914870f636f",
        "744866aa258a9ca8",
        "6bfeefdaf94bb378",
        "62e531cbb504d966",
        "a7ebaf9b3b73812c",
        "65f27bb9396ef9e7",
        "8c4d813efb7245e9",
        "d9d9dff0dfa1c64d",
        "97fb599b364480e0",
        "a70cc4c1b65a8b0e",
        "9073cd8a99145283",
        "dd276acdb00fe024",
        "ae534914870f636f",
    ],
    "bottomup_coco_train": [
        "c477374a1ab94713",
        "bbb3b661034c50fd",
        "4864939aca031303",
        "902392ef01962521",
        "ba251131189f11af",
    ],
    "bottomup_coco_val": [
        "ea28eb5fd8fac923",
        "d99041b4aa1f23d4",
        "ee1542126d7d27cc",
        "163534f3099bc6a8",
        "ea28eb5fd8fac923",
    ],
    "topdown_mpii_train": [
        "889dea0c3dd6468c",
        "07cf856097f194cf",
        "976b861e0a512353",
        "3b507f4a733c414f",
        "fb6138d7db8a849b",
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

"""Seeded samples stay bit-identical through refactors of the transforms and datasets.

The fingerprints below were computed on main before the transform base (``transforms/base.py``) existed: SHA-256
(first 16 hex digits) of every tensor of every sample (key, dtype, shape, bytes), for top-down COCO crops (train with
photometric + occlusion + shift augmentation, val), bottom-up COCO images (train with occlusion, val) and top-down MPII
crops, read from the shared samples with ``torch.manual_seed(0)`` in the main process; the last entry of each list is
sample 0 drawn again (the stream continues). Re-recorded deliberately when the pixel maths changed on purpose (issue 14 part 1: colour jitter as one affine colour map; uint8 top-down images; crop matrices in plain floats,
last-bit differences; occlusion colours hashed from the op seed; session 5: the Gaussian-noise map drawn in float32,
which changed exactly the 7 noised samples of ``topdown_coco_train``: with noise off, old and new code gave the same
13 fingerprints; session 6: OpenCV 5.1.0, which a fresh install now pulls and whose decoder or warps change the pixels
of 22 of the 43 samples with the old code as well, together with the noise field drawn by ``cv2.randn`` and the
occlusion holes drawn with Python scalars, which changed only noised or occluded training samples: val samples and
every sample's geometry stayed the same), never to make a refactor pass. Image decoding and warps come from OpenCV, the photometric noise from
albumentations: with other versions of these libraries than the recorded ones the pixels may legitimately differ,
so the pixel test is skipped then; the geometry of the same samples (keypoints, matrices, metadata: no OpenCV in
them) is checked whatever OpenCV and albumentations are installed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

#: library versions the fingerprints were computed with (cv2, albumentations, numpy)
VERSIONS = ("5.1.0", "2.0.8", "2.4.6")

FINGERPRINTS = {
    "topdown_coco_train": [
        "bea4a202ce73eb90",
        "19db39663e6671b8",
        "30f77822c8697032",
        "73d4fd8938445d60",
        "ea720fab432e1a7a",
        "9caf1be64f291cab",
        "8d95957d14e2f544",
        "33e6117ea0c76f7f",
        "44ab5182ba33604f",
        "eae9f1ad48cd6b65",
        "62c1090e3039e274",
        "ae56887dbc502b79",
        "02574aae2a62d090",
    ],
    "topdown_coco_val": [
        "ae534914870f636f",
        "d20ce68995beace2",
        "06c69822221fbd4b",
        "72d74df353a77dd4",
        "0cea940183e2a3ae",
        "27503a4a14a03b46",
        "cb94ee3fab76cf21",
        "53a71e760c7ed640",
        "37b257fe109969c7",
        "5798ddd8100cffe6",
        "5b8ded28efc538fe",
        "dd276acdb00fe024",
        "ae534914870f636f",
    ],
    "bottomup_coco_train": [
        "cbf35e2d34c1443b",
        "90b49cf6fc8e00c9",
        "b6ecf4bf8fa73cd1",
        "6cd0fcb4def13693",
        "b20312b8366c3aaf",
    ],
    "bottomup_coco_val": [
        "ea28eb5fd8fac923",
        "d99041b4aa1f23d4",
        "ee1542126d7d27cc",
        "163534f3099bc6a8",
        "ea28eb5fd8fac923",
    ],
    "topdown_mpii_train": [
        "05f49fb0d430aa34",
        "07cf856097f194cf",
        "976b861e0a512353",
        "3b507f4a733c414f",
        "d9c185c0d8bc00ee",
        "11ca049173041dfb",
    ],
}

#: the same samples without their OpenCV pixels (``_geometry_digest``); recorded with numpy VERSIONS[2]
GEOMETRY_FINGERPRINTS = {
    "topdown_coco_train": [
        "265d14b725331464",
        "84df83610074f6a1",
        "27505ce692ab7170",
        "5aa92912781b5433",
        "e8fa28052b56363e",
        "1874514fd6df96e0",
        "5535e68445caece8",
        "b6aeb77815569f37",
        "2af65b39235bf125",
        "1915ac3ce5feefc7",
        "3f06cc23da9bcb39",
        "82394a67f23dbfc9",
        "ab8f86a015228e7a",
    ],
    "topdown_coco_val": [
        "e256a80dbee8ef68",
        "ab9837298ee53e94",
        "1f4be1feccee259a",
        "ad01c7a844849e69",
        "a1162ba07395ddb6",
        "c6d420fc4a95d9e6",
        "95d11d871d75c57b",
        "fbfaa06c23405445",
        "9a635d58900b701a",
        "ff35be8ecf596f3f",
        "91ccaaa31dae18bd",
        "2e92e29fc5e5d80f",
        "e256a80dbee8ef68",
    ],
    "bottomup_coco_train": [
        "835a01730eb4a6f3",
        "8f0ab756e37b6353",
        "17972a4bdfb5c164",
        "f16d0259bbd9c1f3",
        "441e2d15112c2f6e",
    ],
    "bottomup_coco_val": [
        "e6fa6e4dd89837e4",
        "24bee89a3d0fff39",
        "3c83375a892e2097",
        "a4a998df37491e73",
        "e6fa6e4dd89837e4",
    ],
    "topdown_mpii_train": [
        "9d248d071738d417",
        "e019f7799bae43db",
        "2a163c6e939c21f5",
        "7d65678dee78252a",
        "eac5044c3b8baf27",
        "8c60694291b97a10",
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


def _geometry_digest(sample: dict) -> str:
    """:func:`_digest` of the keys whose values do not come from OpenCV's pixel maths (all but ``image`` and
    ``mask``): keypoints, matrices, boxes, ids, flips, drawn by the transforms' numpy generators."""
    return _digest({k: v for k, v in sample.items() if k not in ("image", "mask")})


def _draw_all(shared: Path, digest) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    got = {}
    for name, dm in _datamodules(shared).items():
        for split in ("train",) if name == "topdown_mpii" else ("train", "val"):
            ds = dm.dataset(split)
            got[f"{name}_{split}"] = [digest(ds[i]) for i in range(len(ds))] + [digest(ds[0])]
    return got


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


def _check(got: dict[str, list[str]], expected_all: dict[str, list[str]]) -> None:
    for key, expected in expected_all.items():
        assert got[key] == expected, (
            f"{key}: seeded samples changed (first differing index "
            f"{next(i for i, (a, b) in enumerate(zip(got[key], expected)) if a != b)})"
        )


def test_seeded_samples_are_bit_identical(shared_data: Path) -> None:
    if _versions() != VERSIONS:
        pytest.skip(f"fingerprints recorded with cv2/albumentations/numpy {VERSIONS}, found {_versions()}")
    _check(_draw_all(shared_data, _digest), FINGERPRINTS)


def test_seeded_sample_geometry_is_identical_with_any_opencv(shared_data: Path) -> None:
    """The keypoints, matrices and metadata of the seeded samples do not depend on OpenCV or albumentations, so this
    half of the check runs whatever versions a fresh install pulls (only numpy's generators are pinned)."""
    if np.__version__ != VERSIONS[2]:
        pytest.skip(f"geometry fingerprints recorded with numpy {VERSIONS[2]}, found {np.__version__}")
    _check(_draw_all(shared_data, _geometry_digest), GEOMETRY_FINGERPRINTS)

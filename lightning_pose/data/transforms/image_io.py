"""Image decoding and ImageNet normalisation (numpy + cv2)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from lightning_pose.data.records import DataProblem, DatasetError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "read_image_bgr",
    "read_image_rgb",
    "read_image",
    "decode_flags",
    "normalize_image",
    "denormalize_image",
]

#: ImageNet channel mean / std of RGB values in [0, 1].
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

_MEAN_255 = (IMAGENET_MEAN * 255.0).astype(np.float32)
_INV_STD_255 = (1.0 / (IMAGENET_STD * 255.0)).astype(np.float32)


def read_image_bgr(path: str | Path, record: str = "", flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file with ``cv2.imread`` into ``(H, W, 3)`` uint8 **BGR** (with the default ``flags``).

    ``flags`` may ask for a reduced-resolution decode (``cv2.IMREAD_REDUCED_COLOR_{2,4,8}``) or, through
    :func:`decode_flags` / :func:`read_image`, for RGB output.

    Raises:
        DatasetError: naming the file (and ``record`` when given) if the file is missing or cannot be decoded.
    """
    img = cv2.imread(os.fspath(path), flags)  # no Path object per call: its parsing cost ~1 % of a sample
    if img is None:
        p = Path(path)
        problem = "image file does not exist" if not p.exists() else "cv2.imread could not decode the image"
        raise DatasetError(
            DataProblem(
                file=str(p),
                record=record or f"image {p.name}",
                problem=problem,
                kind="missing_image" if not p.exists() else "unreadable_image",
            )
        )
    return img


#: ``cv2.IMREAD_COLOR_RGB`` (OpenCV >= 4.10: the decoder writes RGB itself, at the cost of a BGR decode), else None
_IMREAD_RGB: int | None = getattr(cv2, "IMREAD_COLOR_RGB", None)
_REDUCED_BGR = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_flags(downscale: int = 1) -> tuple[int, bool]:
    """``(cv2.imread flags, is_bgr)`` decoding a colour image at ``1/downscale`` resolution (1, 2, 4 or 8; JPEG DCT
    scaling), straight to RGB where this OpenCV can (``is_bgr`` False), else to BGR (``is_bgr`` True)."""
    if downscale not in _REDUCED_BGR:
        raise ValueError(f"downscale must be 1, 2, 4 or 8, got {downscale}")
    flags = _REDUCED_BGR[downscale]
    if _IMREAD_RGB is None:
        return flags, True
    return (flags & ~cv2.IMREAD_COLOR) | _IMREAD_RGB, False


def read_image(path: str | Path, record: str = "", downscale: int = 1) -> tuple[np.ndarray, bool]:
    """Decode an image file into ``(image, is_bgr)``: ``(H, W, 3)`` uint8 (at ``1/downscale`` resolution for a
    JPEG), RGB when this OpenCV decodes to RGB itself (``is_bgr`` False; no colour-conversion pass), else BGR.

    Raises:
        DatasetError: as :func:`read_image_bgr`.
    """
    flags, is_bgr = decode_flags(downscale)
    return read_image_bgr(path, record, flags), is_bgr


def read_image_rgb(path: str | Path, record: str = "") -> np.ndarray:
    """Decode an image file into ``(H, W, 3)`` uint8 **RGB** (decoded to RGB, or ``cv2.imread`` + BGR->RGB)."""
    img, is_bgr = read_image(path, record)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if is_bgr else img


def normalize_image(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 ``(x / 255 - mean) / std`` (ImageNet statistics)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    out = (image.astype(np.float32) - _MEAN_255) * _INV_STD_255
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def denormalize_image(image: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize_image`: ``(3, H, W)`` float -> ``(H, W, 3)`` uint8 RGB (rounded, clipped).

    A ``(3, H, W)`` **uint8** array is an image that was never normalised (a CPU-path top-down sample's ``image``):
    it is only transposed (a copy)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr.transpose(1, 2, 0))
    arr = arr.astype(np.float32, copy=False)
    rgb = arr.transpose(1, 2, 0) / _INV_STD_255 + _MEAN_255
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

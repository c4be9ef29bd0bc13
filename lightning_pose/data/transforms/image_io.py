"""Image decoding and ImageNet normalisation (numpy + cv2)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lightning_pose.data.records import DataProblem, DatasetError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "read_image_bgr",
    "read_image_rgb",
    "normalize_image",
    "denormalize_image",
]

#: ImageNet channel mean / std of RGB values in [0, 1].
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

_MEAN_255 = (IMAGENET_MEAN * 255.0).astype(np.float32)
_INV_STD_255 = (1.0 / (IMAGENET_STD * 255.0)).astype(np.float32)


def read_image_bgr(path: str | Path, record: str = "", flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode an image file with ``cv2.imread`` into ``(H, W, 3)`` uint8 **BGR**.

    ``flags`` may ask for a reduced-resolution decode (``cv2.IMREAD_REDUCED_COLOR_{2,4,8}``).

    Raises:
        DatasetError: naming the file (and ``record`` when given) if the file is missing or cannot be decoded.
    """
    p = Path(path)
    img = cv2.imread(str(p), flags)
    if img is None:
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


def read_image_rgb(path: str | Path, record: str = "") -> np.ndarray:
    """Decode an image file into ``(H, W, 3)`` uint8 **RGB** (``cv2.imread`` + BGR->RGB)."""
    return cv2.cvtColor(read_image_bgr(path, record), cv2.COLOR_BGR2RGB)


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

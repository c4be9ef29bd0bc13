"""Image decoding and ImageNet normalisation (numpy + cv2)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

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
    "DecodeBuffer",
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


#: written at the end of a :class:`DecodeBuffer` view before a decode into it: still there afterwards = not decoded
_SENTINEL = np.frombuffer(b"\x5a\xa5\x3c\xc3\x96\x69\x0f\xf0", dtype=np.uint8)


class DecodeBuffer:
    """Reusable destination memory for decoding images, one block per thread, grown to the largest image seen.

    ``cv2.imread`` into memory that was written before (warm pages and caches) is ~10 % faster than into a fresh
    allocation, whose pages the kernel must first map and zero (measured: 1.47 against 1.64 ms for a 640x480 JPEG).
    The image it returns is **overwritten by the next decode in the same thread**: only for a caller that consumes
    the image before decoding another (a dataset's ``__getitem__`` warping it into a crop). Pickles empty (a
    DataLoader worker builds its own)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def view(self, shape: tuple[int, int, int]) -> np.ndarray:
        """A C-contiguous uint8 array of ``shape`` over this thread's block (grown when too small)."""
        n = int(shape[0]) * int(shape[1]) * int(shape[2])
        block = getattr(self._local, "block", None)
        if block is None or block.size < n:
            block = self._local.block = np.empty(n, dtype=np.uint8)
        return block[:n].reshape(shape)

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._local = threading.local()


def read_image(
    path: str | Path,
    record: str = "",
    downscale: int = 1,
    buffer: DecodeBuffer | None = None,
    shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, bool]:
    """Decode an image file into ``(image, is_bgr)``: ``(H, W, 3)`` uint8 (at ``1/downscale`` resolution for a
    JPEG), RGB when this OpenCV decodes to RGB itself (``is_bgr`` False; no colour-conversion pass), else BGR.

    With a ``buffer`` and the expected decoded ``shape`` ``(H, W)`` (from the annotation), the image is decoded into
    the buffer's memory (see :class:`DecodeBuffer`: the result is overwritten by the next decode of that thread).
    ``cv2.imread`` into given memory does not report a failure (it leaves the memory as it was): a sentinel at the
    end of the memory, which a decode overwrites with the last pixels, tells; whenever the decode into the buffer
    did not happen (wrong size, missing or undecodable file, the sentinel still there) the file is decoded the
    plain way, which raises the usual error or returns the image as it is (the caller checks its size).

    Raises:
        DatasetError: as :func:`read_image_bgr`.
    """
    flags, is_bgr = decode_flags(downscale)
    if buffer is not None and shape is not None and shape[0] > 0 and shape[1] > 0:
        into = buffer.view((int(shape[0]), int(shape[1]), 3))
        tail = into.reshape(-1)[-_SENTINEL.size :]
        if tail.size == _SENTINEL.size:
            tail[:] = _SENTINEL
            try:
                img = cv2.imread(os.fspath(path), into, flags)
            except cv2.error:  # the file's size differs from ``shape``
                img = None
            if img is into and not np.array_equal(tail, _SENTINEL):
                return img, is_bgr
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

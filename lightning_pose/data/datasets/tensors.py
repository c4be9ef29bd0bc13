"""Sample image tensors: uint8 crops for the workers, ImageNet normalisation on the batch's device.

The CPU top-down path returns its crop as a ``(3, H_in, W_in)`` uint8 RGB tensor (:func:`to_uint8_tensor`): a
worker then copies a quarter of the bytes of a float crop, and skips the float maths. The datamodule's
``on_after_batch_transfer`` (and, for batches that did not come through a datamodule, the tasks' steps) turn the
batch's uint8 ``image`` into the normalised float32 the networks take (:func:`normalize_batch`), on the device the
batch is on. The values are those of :func:`to_normalized_tensor` bit for bit (the same float32 ops).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from lightning_pose.data.transforms.image_io import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["to_normalized_tensor", "to_uint8_tensor", "normalize_images", "normalize_batch"]

_MEAN_255 = torch.from_numpy(IMAGENET_MEAN * 255.0).view(3, 1, 1)
_INV_STD_255 = torch.from_numpy(1.0 / (IMAGENET_STD * 255.0)).view(3, 1, 1)


def _check_uint8_hwc(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")


def to_normalized_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 tensor ``(x / 255 - mean) / std`` (ImageNet).

    Same values as :func:`lightning_pose.data.transforms.normalize_image`, about 3x faster (one
    channel-first copy of the uint8 data, then in-place float ops).
    """
    _check_uint8_hwc(image)
    return normalize_images(to_uint8_tensor(image))


def to_uint8_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` contiguous uint8 tensor (grey levels 0..255, not normalised)."""
    _check_uint8_hwc(image)
    out = torch.empty((3, image.shape[0], image.shape[1]), dtype=torch.uint8)
    planes = out.numpy()
    # cv2.split writes the three planes into the tensor's memory: about half the time of numpy's transposing copy
    dst = [planes[0], planes[1], planes[2]]
    written = cv2.split(image, dst)
    if any(a is not b for a, b in zip(written, dst)):  # cv2 allocated its own planes (never seen): copy them
        np.copyto(planes, np.stack(written))
    return out


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB ``(..., 3, H, W)`` (grey levels) -> float32 ``(x / 255 - mean) / std`` (ImageNet), on the images'
    device: ``(x - 255 mean) * (1 / (255 std))`` in float32, the values of :func:`to_normalized_tensor`."""
    if images.dtype != torch.uint8 or images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(f"expected uint8 (..., 3, H, W) images, got {images.dtype} {tuple(images.shape)}")
    mean = _MEAN_255.to(images.device, non_blocking=True)
    inv_std = _INV_STD_255.to(images.device, non_blocking=True)
    return images.float().sub_(mean).mul_(inv_std)


def normalize_batch(batch: Any) -> Any:
    """A batch (or sample) dict whose ``image`` is uint8 (the CPU top-down path) -> a shallow copy with the image
    normalised (:func:`normalize_images`); any other batch (already float32, e.g. bottom-up samples or the device
    path's output; not a dict) is returned as is."""
    if isinstance(batch, dict):
        image = batch.get("image")
        if isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
            return {**batch, "image": normalize_images(image)}
    return batch

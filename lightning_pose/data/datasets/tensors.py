"""Sample tensors: fast ImageNet normalisation of uint8 crops."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from lightning_pose.data.transforms.image_io import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["to_normalized_tensor"]

_MEAN_255 = torch.from_numpy(IMAGENET_MEAN * 255.0).view(3, 1, 1)
_INV_STD_255 = torch.from_numpy(1.0 / (IMAGENET_STD * 255.0)).view(3, 1, 1)

#: per channel, the float32 value ``(v - 255 mean) / (255 std)`` of every grey level ``v`` in 0..255, computed with
#: the same float32 operations (subtract, then multiply) as the element-wise formula, so a look-up gives the same bits
_LUTS = [np.ascontiguousarray(row).reshape(256, 1) for row in
         (torch.arange(256, dtype=torch.float32).view(1, 1, 256).sub(_MEAN_255).mul(_INV_STD_255)).view(3, 256).numpy()]


def to_normalized_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 tensor ``(x / 255 - mean) / std`` (ImageNet).

    Same values (bit for bit) as ``(float32(x) - 255 mean) * (1 / (255 std))`` element-wise, i.e. as
    :func:`lightning_pose.data.transforms.normalize_image`, about 2x faster than that formula in torch: one
    ``cv2.transpose`` of the ``(H W, 3)`` pixels into 3 uint8 planes, then one ``cv2.LUT`` per channel with the 256
    normalised values of that channel, written straight into the ``(3, H, W)`` float32 output.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    planes = cv2.transpose(image.reshape(h * w, 3))  # (3, H W) uint8, one contiguous row per channel
    out = np.empty((3, h * w), dtype=np.float32)
    for c in range(3):
        cv2.LUT(planes[c], _LUTS[c], dst=out[c])
    return torch.from_numpy(out).view(3, h, w)

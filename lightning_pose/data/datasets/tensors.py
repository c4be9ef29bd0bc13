"""Sample tensors: fast ImageNet normalisation of uint8 crops."""

from __future__ import annotations

import numpy as np
import torch

from lightning_pose.data.transforms.image_io import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["to_normalized_tensor"]

_MEAN_255 = torch.from_numpy(IMAGENET_MEAN * 255.0).view(3, 1, 1)
_INV_STD_255 = torch.from_numpy(1.0 / (IMAGENET_STD * 255.0)).view(3, 1, 1)


def to_normalized_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 tensor ``(x / 255 - mean) / std`` (ImageNet).

    Same values as :func:`lightning_pose.data.transforms.normalize_image`, about 3x faster (one
    channel-first copy of the uint8 data, then in-place float ops).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return chw.float().sub_(_MEAN_255).mul_(_INV_STD_255)

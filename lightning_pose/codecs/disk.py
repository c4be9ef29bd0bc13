"""Binary disk targets for the hybrid detector (Bulat & Tzimiropoulos-style part detection).

The disk of joint ``k`` is centred at its heatmap-frame position ``(x / s_x, y / s_y)`` (convention A, float, no
rounding; ``s = input / heatmap`` per axis) and covers the heatmap pixels whose centres lie within ``radius``
heatmap px: ``(i - x/s_x)^2 + (j - y/s_y)^2 <= radius^2``. With ``radius = 1.5`` and an integer centre this is the
3x3 block around it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.base import as_size, check_keypoints, check_maps
from lightning_pose.codecs.decode import heatmap_maximum, quarter_offset

__all__ = ["DiskCodec"]


class DiskCodec:
    """Keypoints (input frame) <-> binary disk targets for sigmoid cross-entropy (a
    :class:`~lightning_pose.codecs.base.Codec`; decoding reads the probability maps like heatmaps).

    Args:
        input_size: ``(W_in, H_in)`` in px (width first).
        heatmap_size: ``(W_h, H_h)`` in px (width first).
        radius: disk radius in heatmap px (> 0).
    """

    target_keys = ("disks", "weights")

    def __init__(self, input_size: Sequence[int], heatmap_size: Sequence[int], radius: float = 1.5) -> None:
        self.input_size = as_size(input_size, "DiskCodec input_size")
        self.heatmap_size = as_size(heatmap_size, "DiskCodec heatmap_size")
        if not (math.isfinite(float(radius)) and float(radius) > 0):
            raise ValueError(f"DiskCodec: radius must be a positive finite number, got {radius!r}")
        self.radius = float(radius)

    def __repr__(self) -> str:
        return f"DiskCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, radius={self.radius})"

    @property
    def stride(self) -> tuple[float, float]:
        """``(W_in / W_h, H_in / H_h)``: input px per heatmap px."""
        return (self.input_size[0] / self.heatmap_size[0], self.input_size[1] / self.heatmap_size[1])

    def encode(self, keypoints: Tensor) -> dict[str, Tensor]:
        """Binary disks and weights (``{"disks", "weights"}``).

        Args:
            keypoints: ``(B, K, 3)`` = (x, y, v) in input-frame px.

        Returns:
            ``disks`` ``(B, K, H_h, W_h)`` with values in {0, 1} (zero maps for weight-0 joints) and ``weights``
            ``(B, K)``: 1 where ``v > 0`` and the disk covers at least one heatmap pixel. Floating dtype of the
            keypoints (float32 for integer input).
        """
        xy, labelled, _ = check_keypoints(keypoints, "DiskCodec.encode")
        out_dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
        w, h = self.heatmap_size
        sx, sy = self.stride
        centres = xy / xy.new_tensor([sx, sy])
        dx = torch.arange(w, device=xy.device, dtype=xy.dtype) - centres[..., 0:1]  # (B, K, W)
        dy = torch.arange(h, device=xy.device, dtype=xy.dtype) - centres[..., 1:2]  # (B, K, H)
        d2 = dy.unsqueeze(-1) ** 2 + dx.unsqueeze(-2) ** 2  # (B, K, H, W)
        disks = (d2 <= self.radius**2) & labelled[..., None, None]
        weights = disks.flatten(2).any(dim=-1)
        return {"disks": disks.to(out_dtype), "weights": weights.to(out_dtype)}

    def decode(self, probs: Tensor) -> tuple[Tensor, Tensor]:
        """Detection probability maps -> input-frame coordinates and scores.

        Args:
            probs: ``(B, K, H_h, W_h)`` part probabilities (``sigmoid`` of the detection logits), values in [0, 1].

        Returns:
            ``coords`` ``(B, K, 2)`` input-frame px: the maximum with the quarter-pixel offset towards the higher
            neighbour, in convention A (``x_in = x_h * s_x``); ``scores`` ``(B, K)``: the maximum probability.
            Joints whose maximum is ``<= 0`` get ``(0, 0)``.
        """
        check_maps(probs, "DiskCodec.decode")
        if tuple(probs.shape[-2:]) != (self.heatmap_size[1], self.heatmap_size[0]):
            raise ValueError(
                f"DiskCodec.decode: maps are {tuple(probs.shape[-2:])} (H, W) but the codec expects "
                f"{(self.heatmap_size[1], self.heatmap_size[0])}"
            )
        px, py, scores = heatmap_maximum(probs)
        x, y = quarter_offset(probs, px, py)
        sx, sy = self.stride
        coords = torch.stack([x * sx, y * sy], dim=-1)
        coords = torch.where((scores > 0).unsqueeze(-1), coords, torch.zeros_like(coords))
        return coords, scores

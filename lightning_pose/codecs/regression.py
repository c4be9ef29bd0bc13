"""Regression codec: input-frame keypoints <-> normalised coordinates (DeepPose / RLE / integral labels).

Normalised coordinates are ``(x / W_in, y / H_in)`` with ``x, y`` in 0-based input-frame px, so the input pixel
centres span ``[0, (W_in - 1) / W_in]``. The image flip ``x -> W_in - 1 - x`` reads ``x_n -> 1 - x_n - 1 / W_in``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.base import as_size, check_keypoints
from lightning_pose.codecs.flip import flip_normalized_coords

__all__ = ["RegressionCodec"]


class RegressionCodec:
    """Keypoints (input frame) <-> normalised regression targets (a :class:`~lightning_pose.codecs.base.Codec`).

    Args:
        input_size: ``(W_in, H_in)`` network input size in px (width first).
    """

    target_keys = ("coords", "weights")

    def __init__(self, input_size: Sequence[int] = (192, 256)) -> None:
        self.input_size = as_size(input_size, "RegressionCodec input_size")

    def __repr__(self) -> str:
        return f"RegressionCodec(input_size={self.input_size})"

    def encode(self, keypoints: Tensor) -> dict[str, Tensor]:
        """Normalised targets and weights.

        Args:
            keypoints: ``(B, K, 3)`` = (x, y, v) in input-frame px.

        Returns:
            ``{"coords", "weights"}``: ``coords`` ``(B, K, 2)`` = ``(x / W_in, y / H_in)`` (non-finite coordinates
            of unlabelled joints become 0); ``weights`` ``(B, K)`` = 1 where ``v > 0`` and ``0 <= x <= W_in - 1``,
            ``0 <= y <= H_in - 1``.
            Both in the keypoints' floating dtype (float32 for integer input).
        """
        xy, labelled, _ = check_keypoints(keypoints, "RegressionCodec.encode")
        out_dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
        w, h = self.input_size
        inside = (xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= h - 1)
        targets = xy / xy.new_tensor([w, h])
        return {"coords": targets.to(out_dtype), "weights": (labelled & inside).to(out_dtype)}

    def to_pixels(self, coords: Tensor) -> Tensor:
        """Normalised ``(..., 2)`` coordinates -> input-frame px ``(x * W_in, y * H_in)``."""
        if not isinstance(coords, Tensor) or coords.shape[-1] != 2 or not coords.is_floating_point():
            raise ValueError(
                f"RegressionCodec.decode: expected floating (..., 2) coordinates, got "
                f"{tuple(getattr(coords, 'shape', ()))} {getattr(coords, 'dtype', type(coords).__name__)}"
            )
        w, h = self.input_size
        return coords * coords.new_tensor([w, h])

    def decode(self, coords: Tensor, sigma: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Normalised coordinates -> input-frame px and scores.

        Args:
            coords: ``(B, K, 2)`` (or ``(..., 2)``) normalised ``(x / W_in, y / H_in)``.
            sigma: optional RLE scales ``(..., 2)`` in the same normalised units.

        Returns:
            ``coords`` ``(..., 2)`` input-frame px ``(x * W_in, y * H_in)``; ``scores`` ``(...)``: ``1 - mean(sigma)``
            (the RLE confidence, as mmpose) when ``sigma`` is given, else ones.
        """
        px = self.to_pixels(coords)
        if sigma is None:
            return px, torch.ones(px.shape[:-1], dtype=px.dtype, device=px.device)
        if tuple(sigma.shape) != tuple(coords.shape):
            raise ValueError(
                f"RegressionCodec.decode: sigma {tuple(sigma.shape)} must match coords {tuple(coords.shape)}"
            )
        return px, 1.0 - sigma.to(px.dtype).mean(dim=-1)

    def flip_back(self, coords: Tensor, flip_indices: Sequence[int]) -> Tensor:
        """Normalised outputs for the flipped input -> outputs for the unflipped input.

        ``x -> 1 - x - 1 / W_in`` on column 0, then joints permuted with ``flip_indices``.

        Args:
            coords: ``(B, K, D)``, ``D >= 2``: normalised (x, y, ...); extra columns (e.g. RLE sigmas) are only
                permuted.
            flip_indices: length-K permutation.
        """
        return flip_normalized_coords(coords, flip_indices, self.input_size[0])

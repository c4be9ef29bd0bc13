"""Gaussian heatmap codec (MSRA/HRNet convention A, optional DARK unbiased encoding, optional CPM background).

Frames (see :mod:`lightning_pose.codecs` for the full reasoning):

* input frame: 0-based pixels of the network input, ``input_size = (W_in, H_in)``;
* heatmap frame: 0-based heatmap pixels, ``heatmap_size = (W_h, H_h)``, stride ``s = W_in / W_h`` per axis
  (may be non-integer); heatmap pixel ``h`` sits at input ``x = h * s`` (convention A).

Encoding puts the Gaussian peak at ``mu = floor(x / s + 0.5)`` (round half up; HRNet writes ``int()``, which
truncates towards zero and differs only for out-of-map negative positions), or at the float ``x / s`` when
``unbiased``. Decoding returns ``x_in = x_h * s``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.base import Size, as_size, check_keypoints, check_maps
from lightning_pose.codecs.decode import dark_refine, gaussian_blur, heatmap_maximum, quarter_offset
from lightning_pose.codecs.flip import FLIP_SHIFTS, flip_heatmaps, heatmap_flip_shift

__all__ = ["HeatmapCodec", "gaussian_heatmaps", "background_channel"]

DECODERS = ("argmax", "quarter", "dark")


def gaussian_heatmaps(centres: Tensor, valid: Tensor, heatmap_size: Size, sigma: float) -> tuple[Tensor, Tensor]:
    """Unnormalised Gaussians (peak 1) truncated to a square window of radius ``3 * sigma``.

    Args:
        centres: ``(B, K, 2)`` Gaussian centres in heatmap px (integers for convention A, floats when unbiased).
        valid: ``(B, K)`` bool; invalid joints get all-zero maps.
        heatmap_size: ``(W_h, H_h)``.
        sigma: standard deviation in heatmap px.

    Returns:
        ``maps`` ``(B, K, H_h, W_h)`` (dtype of ``centres``): ``exp(-((i-cx)^2 + (j-cy)^2) / (2 sigma^2))`` for
        ``|i - cx| <= 3 sigma`` and ``|j - cy| <= 3 sigma``, else 0; ``inside`` ``(B, K)`` bool, true when the window
        contains at least one heatmap pixel.
    """
    w, h = heatmap_size
    dtype, device = centres.dtype, centres.device
    radius = 3.0 * sigma
    xs = torch.arange(w, device=device, dtype=dtype)
    ys = torch.arange(h, device=device, dtype=dtype)
    dx = xs - centres[..., 0:1]  # (B, K, W)
    dy = ys - centres[..., 1:2]  # (B, K, H)
    in_x = dx.abs() <= radius
    in_y = dy.abs() <= radius
    zero = torch.zeros((), device=device, dtype=dtype)
    gx = torch.where(in_x, torch.exp(-(dx * dx) / (2.0 * sigma * sigma)), zero)
    gy = torch.where(in_y, torch.exp(-(dy * dy) / (2.0 * sigma * sigma)), zero)
    inside = in_x.any(dim=-1) & in_y.any(dim=-1)
    keep = (valid & inside).to(dtype)
    maps = gy.unsqueeze(-1) * gx.unsqueeze(-2) * keep[..., None, None]
    return maps, inside


def background_channel(heatmaps: Tensor) -> Tensor:
    """CPM background target ``max(0, 1 - max_k H_k)``: ``(B, K, H, W) -> (B, 1, H, W)``."""
    return (1.0 - heatmaps.amax(dim=1, keepdim=True)).clamp(min=0.0)


class HeatmapCodec:
    """Keypoints (input frame) <-> Gaussian heatmaps; decoding and flip-back (a
    :class:`~lightning_pose.codecs.base.Codec`).

    Args:
        input_size: ``(W_in, H_in)`` network input size in px (width first).
        heatmap_size: ``(W_h, H_h)`` heatmap size in px (width first).
        sigma: Gaussian sigma in heatmap px.
        unbiased: centre the Gaussian at the float position ``x / s`` (DARK) instead of ``floor(x / s + 0.5)``.
        decode: ``"argmax"`` (integer maximum), ``"quarter"`` (+- 0.25 px towards the higher neighbour) or ``"dark"``
            (blur + Newton step on the log map; pair with ``unbiased=True``).
        blur_kernel: DARK modulation kernel (odd, heatmap px); 0 or 1 disables the blur.
        background: append the CPM background channel to targets and expect it (last channel) in predictions.
        num_keypoints: K. Needed only to let :meth:`decode` accept both K and K+1 channels when ``background``
            is set; without it, a background codec refuses to guess and raises.
        flip_shift: default shift mode of :meth:`flip_back`: ``"exact"`` (``1 - W_h/W_in`` heatmap px, correct for
            this convention), ``"pixel"`` (HRNet's 1 px) or ``"none"``.
    """

    target_keys = ("heatmaps", "weights", "channel_weights")

    def __init__(
        self,
        input_size: Sequence[int] = (192, 256),
        heatmap_size: Sequence[int] = (48, 64),
        sigma: float = 2.0,
        *,
        unbiased: bool = False,
        decode: str = "quarter",
        blur_kernel: int = 11,
        background: bool = False,
        num_keypoints: int | None = None,
        flip_shift: str = "exact",
    ) -> None:
        self.input_size = as_size(input_size, "HeatmapCodec input_size")
        self.heatmap_size = as_size(heatmap_size, "HeatmapCodec heatmap_size")
        if not (math.isfinite(float(sigma)) and float(sigma) > 0):
            raise ValueError(f"HeatmapCodec: sigma must be a positive finite number, got {sigma!r}")
        self.sigma = float(sigma)
        self.unbiased = bool(unbiased)
        if decode not in DECODERS:
            raise ValueError(f"HeatmapCodec: decode must be one of {DECODERS}, got {decode!r}")
        self.decode_mode = decode
        blur_kernel = int(blur_kernel)
        if blur_kernel < 0 or (blur_kernel > 1 and blur_kernel % 2 == 0):
            raise ValueError(f"HeatmapCodec: blur_kernel must be 0, 1 or an odd int >= 3, got {blur_kernel}")
        self.blur_kernel = blur_kernel
        if decode == "dark" and min(self.heatmap_size) < 3:
            raise ValueError(f"HeatmapCodec: DARK needs heatmaps of at least 3x3, got {self.heatmap_size}")
        self.background = bool(background)
        if num_keypoints is not None and int(num_keypoints) <= 0:
            raise ValueError(f"HeatmapCodec: num_keypoints must be positive, got {num_keypoints}")
        self.num_keypoints = None if num_keypoints is None else int(num_keypoints)
        if flip_shift not in FLIP_SHIFTS:
            raise ValueError(f"HeatmapCodec: flip_shift must be one of {FLIP_SHIFTS}, got {flip_shift!r}")
        self.flip_shift = flip_shift

    def __repr__(self) -> str:
        return (
            f"HeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, sigma={self.sigma}, "
            f"unbiased={self.unbiased}, decode={self.decode_mode!r}, blur_kernel={self.blur_kernel}, "
            f"background={self.background}, num_keypoints={self.num_keypoints}, flip_shift={self.flip_shift!r})"
        )

    @property
    def stride(self) -> tuple[float, float]:
        """``(W_in / W_h, H_in / H_h)``: input px per heatmap px along x and y."""
        return (self.input_size[0] / self.heatmap_size[0], self.input_size[1] / self.heatmap_size[1])

    # ------------------------------------------------------------------ encode
    def encode(self, keypoints: Tensor) -> dict[str, Tensor]:
        """Gaussian targets for input-frame keypoints.

        Args:
            keypoints: ``(B, K, 3)`` = (x, y, v), x/y in input-frame px, v COCO visibility (0/1/2).

        Returns:
            ``heatmaps`` ``(B, K(+1), H_h, W_h)``: peak-1 Gaussians (sigma heatmap px, window radius ``3 sigma``) at
            ``floor(x/s + 0.5)`` or, if ``unbiased``, at ``x/s``; joints with weight 0 have all-zero maps; with
            ``background`` the last channel is ``max(0, 1 - max_k H_k)``.
            ``weights`` ``(B, K)``: 1 where ``v > 0`` and the window overlaps the map, else 0.
            ``channel_weights`` ``(B, K(+1))``: the weight of every heatmap channel (``weights``, then 1 for the
            background channel, which is supervised everywhere as in CPM).
            All in the keypoints' floating dtype (float32 for integer input).
        """
        xy, labelled, _ = check_keypoints(keypoints, "HeatmapCodec.encode")
        if self.num_keypoints is not None and keypoints.shape[1] != self.num_keypoints:
            raise ValueError(
                f"HeatmapCodec.encode: got {keypoints.shape[1]} keypoints per sample, the codec was built for "
                f"num_keypoints={self.num_keypoints}"
            )
        out_dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
        sx, sy = self.stride
        centres = xy / xy.new_tensor([sx, sy])
        if not self.unbiased:
            centres = torch.floor(centres + 0.5)
        maps, inside = gaussian_heatmaps(centres, labelled, self.heatmap_size, self.sigma)
        weight = (labelled & inside).to(out_dtype)
        channel_weight = weight
        if self.background:
            maps = torch.cat([maps, background_channel(maps)], dim=1)
            channel_weight = torch.cat([weight, weight.new_ones(weight.shape[0], 1)], dim=1)
        return {"heatmaps": maps.to(out_dtype), "weights": weight, "channel_weights": channel_weight}

    # ------------------------------------------------------------------ decode
    def _joint_maps(self, heatmaps: Tensor, where: str) -> Tensor:
        check_maps(heatmaps, where)
        c = heatmaps.shape[1]
        if self.num_keypoints is not None:
            k = self.num_keypoints
            if c == k:
                return heatmaps
            if c == k + 1 and self.background:
                return heatmaps[:, :k]
            expected = f"{k} or {k + 1}" if self.background else f"{k}"
            raise ValueError(f"{where}: got {c} channels, expected {expected} (num_keypoints={k})")
        if self.background:
            raise ValueError(
                f"{where}: a background codec cannot tell K from K+1 channels ({c} given); construct it with "
                "num_keypoints=K"
            )
        return heatmaps

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Heatmaps -> input-frame coordinates and scores.

        Args:
            heatmaps: ``(B, K, H_h, W_h)``, or ``(B, K+1, H_h, W_h)`` whose last (background) channel is dropped.

        Returns:
            ``coords`` ``(B, K, 2)`` input-frame px ``(x_h * s_x, y_h * s_y)`` (float32, float64 for float64 maps);
            ``scores`` ``(B, K)`` = the map maxima. Joints whose maximum is ``<= 0`` get coords ``(0, 0)`` (HRNet).
        """
        maps = self._joint_maps(heatmaps, "HeatmapCodec.decode")
        if tuple(maps.shape[-2:]) != (self.heatmap_size[1], self.heatmap_size[0]):
            raise ValueError(
                f"HeatmapCodec.decode: heatmaps are {tuple(maps.shape[-2:])} (H, W) but the codec expects "
                f"{(self.heatmap_size[1], self.heatmap_size[0])}"
            )
        px, py, scores = heatmap_maximum(maps)
        if self.decode_mode == "quarter":
            x, y = quarter_offset(maps, px, py)
        elif self.decode_mode == "dark":
            smooth = gaussian_blur(maps, self.blur_kernel) if self.blur_kernel > 1 else maps
            x, y = dark_refine(smooth, px, py)
        else:
            dtype = torch.float64 if maps.dtype == torch.float64 else torch.float32
            x, y = px.to(dtype), py.to(dtype)
        sx, sy = self.stride
        coords = torch.stack([x * sx, y * sy], dim=-1)
        coords = torch.where((scores > 0).unsqueeze(-1), coords, torch.zeros_like(coords))
        return coords, scores

    # ------------------------------------------------------------------ flip
    def flip_back(self, heatmaps: Tensor, flip_indices: Sequence[int], *, shift: str | None = None) -> Tensor:
        """Heatmaps predicted on the horizontally flipped input -> aligned with the unflipped input.

        Flips W, permutes joint channels (channel ``i`` <- flipped channel ``flip_indices[i]``) and shifts right by
        ``1 - W_h / W_in`` heatmap px (``shift="exact"``, default from the constructor), which maps the
        convention-A position of ``W_in - 1 - x`` exactly onto that of ``x`` (cubic interpolation between columns;
        peaks beyond the border are continued by log-quadratic extrapolation, see :func:`shift_maps_x`). A trailing
        background channel (``K + 1`` channels, ``background=True``) is flipped and shifted, not permuted.

        Returns:
            ``(B, K(+1), H_h, W_h)`` in float32 (float64 for float64 input).

        Args:
            heatmaps: ``(B, K(+1), H_h, W_h)``.
            flip_indices: length-K permutation (``KeypointSet.flip_indices``).
            shift: ``"exact"``, ``"pixel"`` (HRNet/mmpose 1 px) or ``"none"``; ``None`` = the codec's ``flip_shift``.
        """
        check_maps(heatmaps, "HeatmapCodec.flip_back")
        k = len(flip_indices)
        c = heatmaps.shape[1]
        if c == k:
            has_bg = False
        elif c == k + 1 and self.background:
            has_bg = True
        else:
            raise ValueError(
                f"HeatmapCodec.flip_back: {c} channels do not match {k} flip_indices"
                + (" (+1 background)" if self.background else "")
            )
        mode = self.flip_shift if shift is None else shift
        amount = heatmap_flip_shift(self.input_size[0], self.heatmap_size[0], mode)
        if mode == "exact" and self.heatmap_size[0] >= 3:
            interpolation, border = "cubic", "extrapolate"
        else:  # HRNet's integer shift replicates the border column
            interpolation, border = "linear", "replicate"
        return flip_heatmaps(
            heatmaps, flip_indices, amount, background=has_bg, interpolation=interpolation, border=border
        )

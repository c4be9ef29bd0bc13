"""Integral regression codec: soft-argmax over heatmap logits (with the Debias correction), targets and flip-back.

Grid: heatmap column ``i`` has normalised position ``i / W`` and row ``j`` has ``j / H``, the same normalisation as
:class:`~lightning_pose.codecs.RegressionCodec` (``x_in / W_in``) for a heatmap at stride ``W_in / W`` in
convention A (column ``i`` sits at input ``x = i * W_in / W``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.base import as_size, check_maps, work_dtype
from lightning_pose.codecs.flip import flip_heatmaps
from lightning_pose.codecs.heatmap import HeatmapCodec
from lightning_pose.codecs.regression import RegressionCodec

__all__ = ["soft_argmax", "IntegralCodec"]


def soft_argmax(logits: Tensor, *, beta: float = 1.0, debias: bool = False) -> tuple[Tensor, Tensor]:
    """Expected location under ``P = softmax(beta * logits)`` taken over each ``H x W`` map.

    ``x = sum P * i / W``, ``y = sum P * j / H``.

    Debias (Gu et al., ICCV21): the softmax of a map whose background logits are 0 mixes the peak with a uniform
    background of mass ``H W`` (each ``exp(0) = 1``). With ``C = mean(exp(beta * logits))`` over the map and the
    background mean ``m_x = (W - 1) / (2 W)`` (the mean of the grid ``i / W``), the foreground expectation is
    ``x_fg = (C x - m_x) / (C - 1)`` (same for y). This is exact for a map that is 0 except on the foreground
    (e.g. a one-hot logit map); with ``m = 0.5`` it is the published ``C/(C-1) (x - 1/(2C))``. Computed in the log
    domain (no overflow); where ``C <= 1 + 1e-6`` (no foreground above the background) the plain estimate is kept.

    Args:
        logits: ``(B, K, H, W)`` raw scores.
        beta: softmax temperature multiplier (> 0).
        debias: apply the Debias correction.

    Returns:
        ``coords`` ``(B, K, 2)`` normalised ``(x, y)`` (input px = ``coords * (W_in, H_in)``) and ``probs``
        ``(B, K, H, W)`` (the plain softmax), both in the working dtype (float32, or float64 for float64 input).
    """
    check_maps(logits, "soft_argmax")
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"soft_argmax: beta must be a positive finite number, got {beta}")
    b, k, h, w = logits.shape
    dtype = work_dtype(logits.dtype)
    z = logits.to(dtype).reshape(b, k, h * w) * beta
    probs = torch.softmax(z, dim=-1).reshape(b, k, h, w)
    gx = torch.arange(w, device=logits.device, dtype=dtype) / w
    gy = torch.arange(h, device=logits.device, dtype=dtype) / h
    x = (probs.sum(dim=-2) * gx).sum(dim=-1)
    y = (probs.sum(dim=-1) * gy).sum(dim=-1)
    if debias:
        log_c = torch.logsumexp(z, dim=-1) - math.log(h * w)
        inv_c = torch.exp(-log_c)
        ok = log_c > 1e-6
        denom = torch.where(ok, 1.0 - inv_c, torch.ones_like(inv_c))
        mx, my = (w - 1) / (2.0 * w), (h - 1) / (2.0 * h)
        x = torch.where(ok, (x - mx * inv_c) / denom, x)
        y = torch.where(ok, (y - my * inv_c) / denom, y)
    return torch.stack([x, y], dim=-1), probs


class IntegralCodec:
    """Integral regression (Sun et al., ECCV18): keypoints <-> normalised coordinates of a soft-argmax over heatmap
    logits (a :class:`~lightning_pose.codecs.base.Codec`).

    The network outputs logits ``(B, K, H_h, W_h)``; :meth:`integrate` turns them into ``{"coords", "probs"}``
    (normalised input-frame coordinates ``(x / W_in, y / H_in)`` and the softmax maps), the outputs the loss,
    the flip test and :meth:`decode` work on.

    Args:
        input_size: ``(W_in, H_in)`` in px (width first).
        heatmap_size: ``(W_h, H_h)`` of the logit maps in px (width first).
        beta: softmax temperature multiplier (> 0).
        debias: the debiased soft-argmax (Gu et al.).
        heatmap_sigma: when set, :meth:`encode` also returns the Gaussian targets (sigma in heatmap px) of the
            auxiliary heatmap loss (IPR-style), as ``heatmaps`` / ``heatmap_weights``.
    """

    target_keys: tuple[str, ...] = ("coords", "weights")

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int],
        *,
        beta: float = 1.0,
        debias: bool = False,
        heatmap_sigma: float | None = None,
    ) -> None:
        self.input_size = as_size(input_size, "IntegralCodec input_size")
        self.heatmap_size = as_size(heatmap_size, "IntegralCodec heatmap_size")
        if not (math.isfinite(float(beta)) and float(beta) > 0):
            raise ValueError(f"IntegralCodec: beta must be a positive finite number, got {beta!r}")
        self.beta, self.debias = float(beta), bool(debias)
        self.regression = RegressionCodec(self.input_size)
        self.heatmap = (
            None
            if heatmap_sigma is None
            else HeatmapCodec(self.input_size, self.heatmap_size, sigma=float(heatmap_sigma))
        )
        if self.heatmap is not None:
            self.target_keys = ("coords", "weights", "heatmaps", "heatmap_weights")

    def __repr__(self) -> str:
        return (
            f"IntegralCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, beta={self.beta}, "
            f"debias={self.debias}, heatmap_sigma={None if self.heatmap is None else self.heatmap.sigma})"
        )

    def encode(self, keypoints: Tensor) -> dict[str, Tensor]:
        """``coords`` ``(B, K, 2)`` normalised and ``weights`` ``(B, K)`` (as :class:`RegressionCodec`), plus
        ``heatmaps`` ``(B, K, H_h, W_h)`` / ``heatmap_weights`` ``(B, K)`` with ``heatmap_sigma``."""
        out = self.regression.encode(keypoints)
        if self.heatmap is not None:
            hm = self.heatmap.encode(keypoints)
            out.update(heatmaps=hm["heatmaps"], heatmap_weights=hm["weights"])
        return out

    def integrate(self, logits: Tensor) -> dict[str, Tensor]:
        """Logits ``(B, K, h, w)`` -> ``{"coords": (B, K, 2) normalised, "probs": (B, K, h, w), "logits"}``
        (differentiable: the loss is taken on these coordinates). The grid is the maps' own (``i / w``), so maps of
        any stride give normalised input coordinates; ``heatmap_size`` only sizes the auxiliary targets."""
        coords, probs = soft_argmax(logits, beta=self.beta, debias=self.debias)
        return {"coords": coords, "probs": probs, "logits": logits}

    def flip_back(self, outputs: dict[str, Tensor], flip_indices: Sequence[int]) -> dict[str, Tensor]:
        """Outputs of the flipped input -> aligned with the unflipped input: coordinates by the exact normalised
        flip (``x -> 1 - x - 1 / W_in``, joints permuted); probability maps mirrored column for column and permuted
        (no sub-pixel shift: they only give the scores, the maximum)."""
        probs = flip_heatmaps(outputs["probs"], flip_indices, 0.0, interpolation="linear", border="replicate")
        return {"coords": self.regression.flip_back(outputs["coords"], flip_indices), "probs": probs}

    def merge_flip(
        self, outputs: dict[str, Tensor], flipped: dict[str, Tensor], flip_indices: Sequence[int]
    ) -> dict[str, Tensor]:
        """Flip test: the average of the direct outputs and the flipped-back ones (``coords`` and ``probs``)."""
        back = self.flip_back(flipped, flip_indices)
        return {
            "coords": 0.5 * (outputs["coords"] + back["coords"]),
            "probs": 0.5 * (outputs["probs"] + back["probs"].to(outputs["probs"].dtype)),
        }

    def decode(self, coords: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
        """``coords`` ``(B, K, 2)`` normalised and ``probs`` ``(B, K, H_h, W_h)`` -> input-frame px ``(B, K, 2)``
        and scores ``(B, K)`` = the maximum of each probability map."""
        check_maps(probs, "IntegralCodec.decode")
        px, _ = self.regression.decode(coords)
        return px, probs.flatten(2).amax(dim=-1)

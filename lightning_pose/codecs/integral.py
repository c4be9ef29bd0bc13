"""Soft-argmax (integral regression) over heatmap logits, with the Debias correction.

Grid: heatmap column ``i`` has normalised position ``i / W`` and row ``j`` has ``j / H``, the same normalisation as
:class:`~lightning_pose.codecs.RegressionCodec` (``x_in / W_in``) for a heatmap at stride ``W_in / W`` in
convention A (column ``i`` sits at input ``x = i * W_in / W``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_pose.codecs.base import check_maps, work_dtype

__all__ = ["soft_argmax"]


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

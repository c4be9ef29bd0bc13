"""Heatmap decoding in the heatmap frame: argmax, quarter-pixel offset, DARK refinement, scores.

All functions work on ``(B, K, H, W)`` heatmaps and return coordinates in the **heatmap frame**: 0-based heatmap
pixels, pixel centres at integers, ``(x, y)`` order. :class:`~lightning_pose.codecs.HeatmapCodec` converts them to the
input frame (``x_in = x_h * stride``); see :mod:`lightning_pose.codecs` for the convention.
Everything is vectorised over B and K; no Python loop over joints or samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_pose.codecs.base import check_maps, extend_log_quadratic, gather_maps, work_dtype

__all__ = [
    "heatmap_maximum",
    "heatmap_scores",
    "quarter_offset",
    "gaussian_blur",
    "blur_sigma",
    "dark_refine",
]


def heatmap_scores(heatmaps: Tensor) -> Tensor:
    """Per-joint score = maximum value of each map, ``(B, K, H, W) -> (B, K)`` (same dtype as the maps).

    Used as the keypoint confidence for heatmap decoders and for soft-argmax heads (pass the heatmap or the
    softmax probabilities, whichever the method reports).
    """
    check_maps(heatmaps, "heatmap_scores")
    return heatmaps.amax(dim=(-2, -1))


def heatmap_maximum(heatmaps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Integer argmax of every map.

    Args:
        heatmaps: ``(B, K, H, W)``.

    Returns:
        ``px`` ``(B, K)`` long column index, ``py`` ``(B, K)`` long row index (heatmap frame, 0-based), and
        ``scores`` ``(B, K)`` = the map maxima. Ties resolve to the first maximum in row-major order.
    """
    check_maps(heatmaps, "heatmap_maximum")
    b, k, h, w = heatmaps.shape
    if h * w == 0:
        raise ValueError(f"heatmap_maximum: empty heatmaps of shape {tuple(heatmaps.shape)}")
    scores, index = heatmaps.reshape(b, k, h * w).max(dim=-1)
    return index % w, torch.div(index, w, rounding_mode="floor"), scores


def quarter_offset(heatmaps: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
    """Move each integer maximum a quarter pixel towards its higher neighbour, per axis (HRNet / Newell).

    ``x = px + 0.25 * sign(h[py, px+1] - h[py, px-1])`` when both neighbours exist (``0 < px < W-1``), otherwise
    ``x = px`` (same for y). HRNet tests ``1 < px < W-1``, which also skips the valid column 1; we do not.

    Args:
        heatmaps: ``(B, K, H, W)``.
        px, py: ``(B, K)`` long argmax indices.

    Returns:
        ``x, y`` ``(B, K)`` float heatmap-frame coordinates (working dtype of the maps).
    """
    _, _, h, w = heatmaps.shape
    dtype = work_dtype(heatmaps.dtype)
    maps = heatmaps.to(dtype)
    has_x = (px > 0) & (px < w - 1)
    has_y = (py > 0) & (py < h - 1)
    dx = gather_maps(maps, (px + 1).clamp(max=w - 1), py) - gather_maps(maps, (px - 1).clamp(min=0), py)
    dy = gather_maps(maps, px, (py + 1).clamp(max=h - 1)) - gather_maps(maps, px, (py - 1).clamp(min=0))
    x = px.to(dtype) + 0.25 * torch.where(has_x, torch.sign(dx), torch.zeros_like(dx))
    y = py.to(dtype) + 0.25 * torch.where(has_y, torch.sign(dy), torch.zeros_like(dy))
    return x, y


def blur_sigma(kernel: int) -> float:
    """Gaussian sigma (heatmap px) of a ``kernel`` x ``kernel`` blur, OpenCV's rule for ``sigma=0``:
    ``0.3 * ((kernel - 1) * 0.5 - 1) + 0.8`` (2.0 for the DARK default kernel 11)."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


BLUR_BORDERS = ("extrapolate", "zero")


def gaussian_blur(heatmaps: Tensor, kernel: int, *, border: str = "extrapolate", eps: float = 1e-10) -> Tensor:
    """Separable Gaussian blur of every map (DARK's "distribution modulation").

    Args:
        heatmaps: ``(B, K, H, W)`` (``H, W >= 3`` for ``border="extrapolate"``).
        kernel: odd kernel size (>= 3); sigma from :func:`blur_sigma`. The kernel is normalised to sum 1.
        border: what the kernel reads outside the map. ``"zero"`` is the reference DARK behaviour; it drags peaks
            within ~4 px of the border up to 1 heatmap px inwards (measured with sigma 2, kernel 11).
            ``"extrapolate"`` (default) continues each map beyond its border with
            :func:`~lightning_pose.codecs.base.extend_log_quadratic` (exact for Gaussian peaks, capped at
            ``e * max``; border value replicated where the border is not log-concave), which removes that bias.
        eps: floor applied before logs.

    Returns:
        Blurred maps ``(B, K, H, W)`` in the working dtype (float32, or float64 for float64 input).
        The overall scale is irrelevant to DARK (it works on ``log``), so maps are not rescaled.
    """
    check_maps(heatmaps, "gaussian_blur")
    if kernel < 3 or kernel % 2 == 0:
        raise ValueError(f"gaussian_blur: kernel must be an odd int >= 3, got {kernel}")
    if border not in BLUR_BORDERS:
        raise ValueError(f"gaussian_blur: border must be one of {BLUR_BORDERS}, got {border!r}")
    dtype = work_dtype(heatmaps.dtype)
    h, w = heatmaps.shape[-2:]
    x = heatmaps.to(dtype)
    r = kernel // 2
    if border == "zero":  # the rows of the band matrix that multiply the (zero) padding are simply dropped
        x = x @ _band_matrix(w, kernel, dtype, x.device)[r : r + w]
        x = x.transpose(-1, -2) @ _band_matrix(h, kernel, dtype, x.device)[r : r + h]
        return x.transpose(-1, -2)
    if h < 3 or w < 3:
        raise ValueError(f"gaussian_blur: border='extrapolate' needs maps of at least 3x3, got {h}x{w}")
    cap = torch.log(x.amax(dim=(-2, -1), keepdim=True).clamp(min=eps)) + 1.0  # (B, K, 1, 1)
    x = extend_log_quadratic(x, r, cap, eps) @ _band_matrix(w, kernel, dtype, x.device)  # (B, K, H, W)
    x = extend_log_quadratic(x.transpose(-1, -2), r, cap, eps) @ _band_matrix(h, kernel, dtype, x.device)
    return x.transpose(-1, -2)


def _band_matrix(n: int, kernel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(n + 2r, n)`` matrix ``M[p, i] = g[p - i]`` (normalised Gaussian taps, ``0 <= p - i <= 2r``).

    ``padded @ M`` blurs the last dim of a row padded by ``r = kernel // 2`` on both sides (a 1-D convolution as a
    matrix product, much faster than ``conv2d`` with one channel on CPU).
    """
    r = kernel // 2
    sigma = blur_sigma(kernel)
    t = torch.arange(-r, r + 1, device=device, dtype=dtype)
    g = torch.exp(-(t * t) / (2.0 * sigma * sigma))
    g = g / g.sum()
    offset = torch.arange(n + 2 * r, device=device)[:, None] - torch.arange(n, device=device)[None, :]
    inside = (offset >= 0) & (offset <= 2 * r)
    return torch.where(inside, g[offset.clamp(0, 2 * r)], torch.zeros((), dtype=dtype, device=device))


def dark_refine(
    heatmaps: Tensor, px: Tensor, py: Tensor, *, max_offset: float = 1.0, eps: float = 1e-10
) -> tuple[Tensor, Tensor]:
    """DARK sub-pixel refinement (Zhang et al., CVPR20): one Newton step on ``log(heatmap)``.

    The log of a Gaussian is a quadratic, so the maximum of a quadratic fitted to the 3x3 neighbourhood is exact
    for Gaussian maps. Derivatives use 3-point central differences (step 1) around a stencil centre
    ``c = clamp(p, 1, W-2)``: at the border the stencil moves inwards (exact for a quadratic, whereas the reference
    implementation needs ``2 <= p <= W-3`` and skips border joints) and the step is taken from ``c``:
    ``x = c - Hess^-1 grad``. The step is applied only where the Hessian is negative definite (a real maximum) and the
    result is clipped to ``p +- max_offset`` heatmap px (a trust region; the true maximum of a unimodal map lies within
    one pixel of its integer argmax). Pass maps blurred with :func:`gaussian_blur` for network outputs.

    Args:
        heatmaps: ``(B, K, H, W)`` with ``H, W >= 3`` (typically blurred).
        px, py: ``(B, K)`` long integer maxima (of the unblurred maps).
        max_offset: trust-region half width in heatmap px.
        eps: values are clamped to ``>= eps`` before the log.

    Returns:
        ``x, y`` ``(B, K)`` float heatmap-frame coordinates (working dtype).
    """
    _, _, h, w = heatmaps.shape
    if h < 3 or w < 3:
        raise ValueError(f"dark_refine: heatmaps must be at least 3x3, got {h}x{w}")
    dtype = work_dtype(heatmaps.dtype)
    maps = heatmaps.to(dtype)
    cx = px.clamp(1, w - 2)
    cy = py.clamp(1, h - 2)

    def f(dx: int, dy: int) -> Tensor:  # log of the map at the stencil point (cx + dx, cy + dy)
        return torch.log(gather_maps(maps, cx + dx, cy + dy).clamp(min=eps))

    f0 = f(0, 0)
    fx = 0.5 * (f(1, 0) - f(-1, 0))
    fy = 0.5 * (f(0, 1) - f(0, -1))
    fxx = f(1, 0) - 2.0 * f0 + f(-1, 0)
    fyy = f(0, 1) - 2.0 * f0 + f(0, -1)
    fxy = 0.25 * (f(1, 1) - f(-1, 1) - f(1, -1) + f(-1, -1))
    det = fxx * fyy - fxy * fxy
    ok = (fxx < 0) & (det > 0) & torch.isfinite(det)
    safe_det = torch.where(ok, det, torch.ones_like(det))
    step_x = -(fyy * fx - fxy * fy) / safe_det
    step_y = -(fxx * fy - fxy * fx) / safe_det
    pxf, pyf = px.to(dtype), py.to(dtype)
    x = (cx.to(dtype) + step_x).clamp(pxf - max_offset, pxf + max_offset)
    y = (cy.to(dtype) + step_y).clamp(pyf - max_offset, pyf + max_offset)
    return torch.where(ok, x, pxf), torch.where(ok, y, pyf)

"""Flip-back of heatmaps and coordinates predicted on a horizontally flipped input.

The image-frame flip is ``x -> W_in - 1 - x`` (pixel centres at integers). For heatmaps in convention A
(heatmap column ``h`` sits at input ``x = h * s``, ``s = W_in / W_h``) a plain ``flip(-1)`` of the map sends input
``x`` to ``(W_h - 1) * s - x``, i.e. ``s - 1`` input px = ``1 - 1/s`` heatmap px short of the true flip
(0.75 heatmap px = 3 input px at stride 4, 0.875 at stride 8, 0 at stride 1). :func:`flip_heatmaps` therefore
shifts the flipped maps right by ``heatmap_flip_shift(W_in, W_h) = 1 - W_h / W_in`` heatmap px ("exact": cubic
interpolation between columns, Gaussian-peak extrapolation across the border). The customary HRNet/mmpose integer
shift of one pixel ("pixel") over-corrects by ``1/s`` heatmap px (+1 input px); "none" leaves the ``-(1 - 1/s)``
error.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.base import check_flip_indices, check_maps, extend_log_quadratic, work_dtype

__all__ = [
    "FLIP_SHIFTS",
    "SHIFT_INTERPOLATIONS",
    "SHIFT_BORDERS",
    "heatmap_flip_shift",
    "shift_maps_x",
    "flip_heatmaps",
    "flip_normalized_coords",
]

FLIP_SHIFTS = ("exact", "pixel", "none")


def heatmap_flip_shift(input_width: int, heatmap_width: int, mode: str = "exact") -> float:
    """Rightward shift (heatmap px) that aligns a flipped convention-A heatmap with the unflipped input.

    ``"exact"``: ``1 - W_h / W_in`` (derivation in the module docstring); ``"pixel"``: 1.0; ``"none"``: 0.0.
    """
    if mode == "exact":
        return 1.0 - heatmap_width / input_width
    if mode == "pixel":
        return 1.0
    if mode == "none":
        return 0.0
    raise ValueError(f"flip shift must be one of {FLIP_SHIFTS}, got {mode!r}")


SHIFT_INTERPOLATIONS = ("cubic", "linear")
SHIFT_BORDERS = ("extrapolate", "replicate")


def _catmull_rom_weights(t: float) -> tuple[float, float, float, float]:
    """Cubic-convolution (Keys, a = -0.5) weights of the samples at -1, 0, 1, 2 for a position ``t`` in [0, 1)."""
    t2, t3 = t * t, t * t * t
    return (
        -0.5 * t3 + t2 - 0.5 * t,
        1.5 * t3 - 2.5 * t2 + 1.0,
        -1.5 * t3 + 2.0 * t2 + 0.5 * t,
        0.5 * t3 - 0.5 * t2,
    )


def shift_maps_x(
    maps: Tensor,
    shift: float,
    *,
    interpolation: str = "cubic",
    border: str = "extrapolate",
    eps: float = 1e-10,
) -> Tensor:
    """Translate maps by ``shift`` pixels along W (positive = right): ``out[..., w] = maps(w - shift)``.

    Integer shifts copy columns. Fractional shifts interpolate: ``"cubic"`` (Catmull-Rom, 4 taps, exact for
    quadratics) or ``"linear"`` (2 taps). For sigma-2 Gaussian targets both move the DARK-decoded peak by at most
    ~0.015 heatmap px (measured, flip test of the unit tests). Columns read from beyond the map come from
    ``border``: ``"extrapolate"`` continues Gaussian-like peaks across the border
    (:func:`~lightning_pose.codecs.base.extend_log_quadratic`, needs ``W >= 3``) so a peak that sat just outside
    the map is recovered; ``"replicate"`` repeats the border column (for ``shift = 1`` exactly HRNet's
    ``out[..., 1:] = out[..., :-1]``).

    Args:
        maps: ``(..., H, W)`` floating tensor (at least 2-D).
        shift: shift in pixels of the map's own grid.
        interpolation: ``"cubic"`` or ``"linear"``.
        border: ``"extrapolate"`` or ``"replicate"``.
        eps: floor before logs in the extrapolation.

    Returns:
        Shifted maps, same shape; working dtype of the input (float32/float64).
    """
    if not math.isfinite(shift):
        raise ValueError(f"shift_maps_x: shift must be finite, got {shift}")
    if interpolation not in SHIFT_INTERPOLATIONS:
        raise ValueError(f"shift_maps_x: interpolation must be one of {SHIFT_INTERPOLATIONS}, got {interpolation!r}")
    if border not in SHIFT_BORDERS:
        raise ValueError(f"shift_maps_x: border must be one of {SHIFT_BORDERS}, got {border!r}")
    if maps.dim() < 2:
        raise ValueError(f"shift_maps_x: expected maps of shape (..., H, W), got {tuple(maps.shape)}")
    if shift == 0.0:
        return maps
    w = maps.shape[-1]
    n = math.floor(shift)
    frac = shift - n
    if frac == 0.0:
        taps = [(-n, 1.0)]
    elif interpolation == "linear":
        taps = [(-n, 1.0 - frac), (-n - 1, frac)]
    else:
        # position w - shift = (w - n - 1) + t with t = 1 - frac in (0, 1)
        wm1, w0, w1, w2 = _catmull_rom_weights(1.0 - frac)
        taps = [(-n - 2, wm1), (-n - 1, w0), (-n, w1), (-n + 1, w2)]
    pad = max(abs(o) for o, _ in taps)
    dtype = maps.dtype
    cols = torch.arange(w, device=maps.device)
    if border == "extrapolate":
        if w < 3:
            raise ValueError(f"shift_maps_x: border='extrapolate' needs W >= 3, got {w}")
        cap = torch.log(maps.amax(dim=(-2, -1), keepdim=True).clamp(min=eps)) + 1.0
        source = extend_log_quadratic(maps, pad, cap, eps)
        rows = [cols + o + pad for o, _ in taps]
    else:
        source = maps
        rows = [(cols + o).clamp(0, w - 1) for o, _ in taps]
    # the shift as one matrix product: out[..., c] = sum_p source[..., p] * matrix[p, c]
    matrix = torch.zeros(source.shape[-1], w, dtype=dtype, device=maps.device)
    for r, (_, weight) in zip(rows, taps):
        matrix.index_put_((r, cols), torch.full((w,), weight, dtype=dtype, device=maps.device), accumulate=True)
    return source @ matrix


def flip_heatmaps(
    heatmaps: Tensor,
    flip_indices: Sequence[int],
    shift: float,
    *,
    background: bool = False,
    interpolation: str = "cubic",
    border: str = "extrapolate",
) -> Tensor:
    """Heatmaps predicted on the flipped input -> heatmaps aligned with the unflipped input.

    Flips W, permutes the joint channels (output channel ``i`` = flipped channel ``flip_indices[i]``), then shifts
    right by ``shift`` heatmap px (:func:`heatmap_flip_shift`).

    Args:
        heatmaps: ``(B, K, H, W)``, or ``(B, K+1, H, W)`` with ``background=True`` (the last channel is the
            joint-independent background; it is flipped and shifted but not permuted).
        flip_indices: length-K permutation.
        shift: rightward shift in heatmap px.
        background: whether the last channel is a background channel.
        interpolation, border: see :func:`shift_maps_x`.

    Returns:
        ``(B, C, H, W)`` in the working dtype (float32, or float64 for float64 input).
    """
    check_maps(heatmaps, "flip_heatmaps")
    c = heatmaps.shape[1]
    k = c - 1 if background else c
    idx = check_flip_indices(flip_indices, k, "flip_heatmaps")
    if background:
        idx = idx + [k]
    perm = torch.as_tensor(idx, device=heatmaps.device, dtype=torch.long)
    out = heatmaps.to(work_dtype(heatmaps.dtype)).flip(-1).index_select(1, perm)
    return shift_maps_x(out, shift, interpolation=interpolation, border=border)


def flip_normalized_coords(coords: Tensor, flip_indices: Sequence[int], input_width: int) -> Tensor:
    """Regression outputs predicted on the flipped input -> outputs for the unflipped input.

    On normalised coordinates ``x = x_in / W_in`` the image flip ``x_in -> W_in - 1 - x_in`` reads
    ``x -> 1 - x - 1 / W_in`` (mmpose ``shift_coords=True``); then joints are permuted with ``flip_indices``.

    Args:
        coords: ``(B, K, D)`` with ``D >= 2``; column 0 is normalised x and is flipped, the other columns
            (y, and e.g. RLE sigmas) are only permuted.
        flip_indices: length-K permutation.
        input_width: ``W_in`` in pixels.
    """
    if coords.dim() != 3 or coords.shape[-1] < 2:
        raise ValueError(f"flip_normalized_coords: expected (B, K, D>=2) coordinates, got {tuple(coords.shape)}")
    idx = check_flip_indices(flip_indices, coords.shape[1], "flip_normalized_coords")
    perm = torch.as_tensor(idx, device=coords.device, dtype=torch.long)
    out = coords.index_select(1, perm)
    x = 1.0 - out[..., :1] - 1.0 / input_width
    return torch.cat([x, out[..., 1:]], dim=-1)

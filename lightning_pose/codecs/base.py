"""The :class:`Codec` contract every codec follows, and the codecs' shared helpers (size parsing, input validation,
working dtype).

Nothing here defines a coordinate convention; the conventions are documented in
:mod:`lightning_pose.codecs` and implemented in the codec modules.

The contract (after mmpose's ``BaseKeypointCodec``)
---------------------------------------------------
* ``encode(keypoints, ...) -> dict[str, Tensor]``: input-frame keypoints ``(B, K, 3)`` = (x, y, v) in px
  (bottom-up: ``(B, N, K, 3)``) -> named training targets and their weights. Every codec names its keys in
  ``target_keys``; weight tensors are ``(B, K)`` (or per channel) with 1 = supervise, 0 = ignore.
* ``decode(outputs...) -> (coords, scores)``: network outputs -> ``coords (B, K, 2)`` in **input-frame px** and
  ``scores (B, K)`` (bottom-up: ``(B, P, K, 2)`` and ``(B, P, K)``, one row per detected person).
* ``input_size``: ``(W_in, H_in)`` in px, width first.
* Invalid input raises ``ValueError`` naming the codec method and the problem.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor

__all__ = [
    "Codec",
    "Size",
    "as_size",
    "check_keypoints",
    "check_maps",
    "check_flip_indices",
    "work_dtype",
    "gather_maps",
    "extend_log_quadratic",
]

Size = tuple[int, int]


@runtime_checkable
class Codec(Protocol):
    """What every codec provides (see the module docstring for units and frames)."""

    #: names of the tensors :meth:`encode` returns
    target_keys: ClassVar[tuple[str, ...]]
    input_size: Size

    def encode(self, keypoints: Tensor, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """Input-frame keypoints (px) -> named targets and weights."""
        ...

    def decode(self, *outputs: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """Network outputs -> ``(coords (B, K, 2) input-frame px, scores (B, K))``."""
        ...


def as_size(value: Sequence[int] | int, name: str) -> Size:
    """Parse a ``(width, height)`` pair (width first) of positive integers; an int means a square size."""
    if isinstance(value, int):
        value = (value, value)
    try:
        w, h = (int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a (width, height) pair of ints, got {value!r}") from exc
    if w <= 0 or h <= 0 or (w, h) != tuple(value):
        raise ValueError(f"{name} must be a (width, height) pair of positive ints, got {value!r}")
    return w, h


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Floating dtype used for internal arithmetic: float64 stays float64, everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_keypoints(keypoints: Tensor, where: str) -> tuple[Tensor, Tensor, Tensor]:
    """Validate input-frame keypoints ``(B, K, 3)`` = (x, y, v) and split them.

    Returns:
        ``xy`` ``(B, K, 2)`` in the working dtype with non-finite entries of unlabelled joints replaced by 0,
        ``labelled`` ``(B, K)`` bool (``v > 0``) and ``finite`` ``(B, K)`` bool.

    Raises:
        ValueError: wrong shape/dtype, or a labelled joint (``v > 0``) with a non-finite coordinate.
    """
    if not isinstance(keypoints, Tensor):
        raise ValueError(f"{where}: keypoints must be a torch.Tensor, got {type(keypoints).__name__}")
    if keypoints.dim() != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"{where}: keypoints must have shape (B, K, 3) = (x, y, v), got {tuple(keypoints.shape)}")
    if keypoints.is_complex() or keypoints.dtype == torch.bool:
        raise ValueError(f"{where}: keypoints must be real numbers, got dtype {keypoints.dtype}")
    kp = keypoints.to(work_dtype(keypoints.dtype))
    xy, v = kp[..., :2], kp[..., 2]
    labelled = v > 0
    finite = torch.isfinite(xy).all(dim=-1)
    bad = labelled & ~finite
    if bool(bad.any()):
        b, k = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{where}: keypoint {k} of sample {b} is labelled (v={float(v[b, k])}) but has non-finite "
            f"coordinates {xy[b, k].tolist()}"
        )
    xy = torch.where(finite[..., None], xy, torch.zeros_like(xy))
    return xy, labelled, finite


def check_maps(maps: Tensor, where: str) -> None:
    """Require a floating ``(B, C, H, W)`` tensor."""
    if not isinstance(maps, Tensor):
        raise ValueError(f"{where}: expected a torch.Tensor, got {type(maps).__name__}")
    if maps.dim() != 4:
        raise ValueError(f"{where}: expected maps of shape (B, C, H, W), got {tuple(maps.shape)}")
    if not maps.is_floating_point():
        raise ValueError(f"{where}: expected a floating tensor, got dtype {maps.dtype}")


def check_flip_indices(flip_indices: Sequence[int], num_keypoints: int, where: str) -> list[int]:
    """Validate ``flip_indices``: a permutation of ``range(K)``; ``flip_indices[i]`` is the channel that channel ``i``
    becomes under a horizontal flip."""
    try:
        idx = [int(i) for i in flip_indices]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: flip_indices must be a sequence of ints, got {flip_indices!r}") from exc
    if len(idx) != num_keypoints:
        raise ValueError(f"{where}: flip_indices has {len(idx)} entries but there are {num_keypoints} keypoints")
    if sorted(idx) != list(range(num_keypoints)):
        raise ValueError(f"{where}: flip_indices {idx} is not a permutation of 0..{num_keypoints - 1}")
    return idx


def gather_maps(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Values ``maps[b, k, y[b, k], x[b, k]]`` for integer pixel indices.

    Args:
        maps: ``(B, K, H, W)``.
        x, y: ``(B, K)`` integer (long) column / row indices, already inside ``[0, W-1]`` / ``[0, H-1]``.

    Returns:
        ``(B, K)`` values in the dtype of ``maps``.
    """
    b, k, h, w = maps.shape
    flat = maps.reshape(b, k, h * w)
    index = (y * w + x).unsqueeze(-1)
    return torch.gather(flat, 2, index).squeeze(-1)


def extend_log_quadratic(maps: Tensor, r: int, cap: Tensor, eps: float = 1e-10) -> Tensor:
    """Pad the last dim by ``r`` values on both sides, continuing Gaussian-like peaks across the border.

    For each 1-D slice, the 3 outermost values ``a, b, c`` (distance 2, 1, 0 from the border) define a quadratic in
    ``log`` space; where it is strictly concave (``log a - 2 log b + log c < 0``) the padding is
    ``exp(quadratic)`` at distance ``1..r`` beyond the border, capped at ``exp(cap)``; elsewhere the border value is
    replicated. ``log`` of a Gaussian is a quadratic, so a Gaussian peak is continued exactly, including a peak
    whose maximum lies beyond the last pixel.

    Args:
        maps: ``(..., N)`` floating tensor, ``N >= 3``.
        r: number of values added on each side (>= 0).
        cap: log-space upper bound, broadcastable to ``(..., r)`` (e.g. ``log(max) + 1`` per map).
        eps: values are clamped to ``>= eps`` before the log (only for the extrapolation test/values).

    Returns:
        ``(..., N + 2 r)`` tensor, same dtype and device.
    """
    if r < 0:
        raise ValueError(f"extend_log_quadratic: r must be >= 0, got {r}")
    if maps.shape[-1] < 3:
        raise ValueError(f"extend_log_quadratic: need at least 3 values along the last dim, got {maps.shape[-1]}")
    if r == 0:
        return maps
    t = torch.arange(1, r + 1, device=maps.device, dtype=maps.dtype)

    def side(a: Tensor, b: Tensor, c: Tensor, border: Tensor) -> Tensor:
        f2 = a - 2.0 * b + c
        f1 = 0.5 * (c - a) + f2  # outward slope at the border value
        ext = c.unsqueeze(-1) + f1.unsqueeze(-1) * t + 0.5 * f2.unsqueeze(-1) * t * t
        ext = torch.exp(torch.minimum(ext, cap))
        return torch.where((f2 < 0).unsqueeze(-1), ext, border.unsqueeze(-1).expand_as(ext))

    logr = torch.log(maps[..., -3:].clamp(min=eps))
    logl = torch.log(maps[..., :3].clamp(min=eps))
    right = side(logr[..., 0], logr[..., 1], logr[..., 2], maps[..., -1])
    left = side(logl[..., 2], logl[..., 1], logl[..., 0], maps[..., 0]).flip(-1)
    return torch.cat([left, maps, right], dim=-1)

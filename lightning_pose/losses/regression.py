"""Coordinate losses for direct regression (DeepPose, cascade stages, soft-argmax coordinates).

Coordinates are ``(B, K, 2)`` in any frame as long as ``pred`` and ``target`` share it; the package passes
normalised input-frame coordinates ``(x / W_in, y / H_in)``, so ``beta`` of the smooth L1 is in those units too.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lightning_pose.losses._checks import check_pred_target_weight, check_reduction

__all__ = ["coordinate_loss"]

_KINDS = ("l1", "l2", "smooth_l1")


def coordinate_loss(
    pred: Tensor, target: Tensor, weight: Tensor | None, kind: str = "l1", beta: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Weighted per-coordinate L1, squared L2 or smooth L1 between keypoint coordinates.

    Elementwise loss ``l(d)`` of ``d = pred - target`` (``|d|``, ``d^2``, or smooth L1 with threshold ``beta``:
    ``0.5 d^2 / beta`` if ``|d| < beta`` else ``|d| - 0.5 beta``), multiplied by ``weight[b, k]``.
    For 0/1 weights this equals mmpose's ``L1Loss/MSELoss/SmoothL1Loss(use_target_weight=True)``, which compare
    ``pred * w`` with ``target * w``.

    Args:
        pred, target: ``(B, K, 2)`` (any trailing coordinate dimension ``D`` is accepted).
        weight: ``(B, K)`` joint weights or ``None`` (all ones).
        kind: ``"l1"``, ``"l2"`` (squared error, DeepPose) or ``"smooth_l1"``.
        beta: smooth-L1 threshold (same units as the coordinates); must be > 0.
        reduction: ``"mean"`` over all ``B*K*D`` elements including zero-weight joints (mmpose), ``"sum"``,
            or ``"none"`` (``(B, K)``: sum over the D coordinates, times weight).
    """
    check_reduction("coordinate_loss", reduction)
    check_pred_target_weight("coordinate_loss", pred, target, weight, 3)
    if kind not in _KINDS:
        raise ValueError(f"coordinate_loss: kind must be one of {_KINDS}, got {kind!r}")
    diff = pred - target
    if kind == "l1":
        elem = diff.abs()
    elif kind == "l2":
        elem = diff.pow(2)
    else:
        if beta <= 0:
            raise ValueError(f"coordinate_loss: smooth_l1 beta must be > 0, got {beta}")
        elem = F.smooth_l1_loss(pred, target, reduction="none", beta=beta)
    if weight is not None:
        elem = elem * weight.to(elem.dtype).unsqueeze(-1)
    if reduction == "none":
        return elem.sum(dim=-1)
    return elem.sum() if reduction == "sum" else elem.mean()

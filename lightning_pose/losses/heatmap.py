"""Heatmap losses: weighted MSE (mmpose ``KeypointMSELoss``), multi-stage intermediate supervision, weighted BCE.

All heatmap tensors are ``(B, K, H, W)`` in the heatmap frame (whatever stride the codec uses; the losses never
look at coordinates). ``weight`` is the per-joint target weight ``(B, K)`` from the codec (0 = unlabelled or outside
the map, 1 = supervised; fractional values scale the joint's contribution). ``weight=None`` means all ones.

Reductions (documented per function):
    ``"mean"``: mean over **all** ``B*K*H*W`` elements, including zero-weight joints (mmpose / HRNet convention, so
    the value does not depend on how many joints are labelled);
    ``"sum"``: sum over all elements;
    ``"none"``: per-joint loss ``(B, K)`` = weighted mean over the ``H*W`` pixels of that joint.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_pose.losses._checks import check_pred_target_weight, check_reduction

__all__ = ["weighted_mse_heatmap", "multi_stage_heatmap_loss", "weighted_bce_heatmap"]


def _reduce(elementwise: Tensor, weight: Tensor | None, reduction: str) -> Tensor:
    """``elementwise`` (B, K, H, W) times ``weight`` (B, K) reduced as documented in the module docstring."""
    per_joint = elementwise.mean(dim=(2, 3))  # (B, K)
    if weight is not None:
        per_joint = per_joint * weight.to(per_joint.dtype)
    if reduction == "none":
        return per_joint
    if reduction == "sum":
        return per_joint.sum() * (elementwise.shape[2] * elementwise.shape[3])
    return per_joint.mean()


def weighted_mse_heatmap(pred: Tensor, target: Tensor, weight: Tensor | None, reduction: str = "mean") -> Tensor:
    """Squared error between heatmaps, each joint scaled by its weight.

    ``mean((pred - target)^2 * weight[b, k])`` over ``B, K, H, W`` for ``reduction="mean"`` -- exactly mmpose's
    ``KeypointMSELoss(use_target_weight=True)`` and twice HRNet's ``JointsMSELoss`` (which has an extra 0.5).

    Args:
        pred, target: ``(B, K, H, W)`` heatmaps (same shape).
        weight: ``(B, K)`` joint weights or ``None``.
        reduction: ``"mean"`` (scalar), ``"sum"`` (scalar) or ``"none"`` (``(B, K)`` per-joint pixel mean x weight).
    """
    check_reduction("weighted_mse_heatmap", reduction)
    check_pred_target_weight("weighted_mse_heatmap", pred, target, weight, 4)
    return _reduce((pred - target).pow(2), weight, reduction)


def weighted_bce_heatmap(
    logits: Tensor, target: Tensor, weight: Tensor | None, reduction: str = "mean", pos_weight: float | None = None
) -> Tensor:
    """Pixel-wise sigmoid binary cross-entropy (Bulat & Tzimiropoulos part detection), joints scaled by weight.

    Per pixel ``-(p * t * log sigmoid(z) + (1 - t) * log(1 - sigmoid(z)))`` with ``p = pos_weight`` (1 when None),
    computed stably from the logits ``z``; then reduced like :func:`weighted_mse_heatmap`.

    Args:
        logits: ``(B, K, H, W)`` raw detection scores.
        target: ``(B, K, H, W)`` in ``[0, 1]`` (binary disks, or soft targets).
        weight: ``(B, K)`` joint weights or ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(B, K)``).
        pos_weight: optional factor on the positive term (balances small disks against the large background).
    """
    check_reduction("weighted_bce_heatmap", reduction)
    check_pred_target_weight("weighted_bce_heatmap", logits, target, weight, 4)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none", pos_weight=pw)
    return _reduce(bce, weight, reduction)


def multi_stage_heatmap_loss(
    preds: Sequence[Tensor],
    target: Tensor | Sequence[Tensor],
    weight: Tensor | None,
    aggregate: str = "sum",
    stage_weights: Sequence[float] | None = None,
) -> Tensor:
    """Intermediate supervision: :func:`weighted_mse_heatmap` (``"mean"``) of every stage against its target.

    Args:
        preds: list of ``S`` stage outputs, each ``(B, K, H, W)``.
        target: one ``(B, K, H, W)`` target shared by all stages, or a list of ``S`` targets (one per stage, e.g.
            different resolutions).
        weight: ``(B, K)`` joint weights or ``None``.
        aggregate: ``"sum"`` over stages (CPM Caffe, mmpose ``CPMHead``) or ``"mean"`` over stages
            (pytorch_stacked_hourglass, pose-ae-train) -- docs/conventions.md#heatmap-loss; they differ by the factor ``S``.
        stage_weights: optional per-stage factors applied before aggregation (``"mean"`` then divides by ``S``).

    Returns:
        scalar tensor.
    """
    if aggregate not in ("sum", "mean"):
        raise ValueError(f"multi_stage_heatmap_loss: aggregate must be 'sum' or 'mean', got {aggregate!r}")
    preds = list(preds)
    if not preds:
        raise ValueError("multi_stage_heatmap_loss: no stage predictions given")
    targets = [target] * len(preds) if isinstance(target, Tensor) else list(target)
    if len(targets) != len(preds):
        raise ValueError(f"multi_stage_heatmap_loss: {len(preds)} stage predictions but {len(targets)} targets")
    factors = [1.0] * len(preds) if stage_weights is None else [float(w) for w in stage_weights]
    if len(factors) != len(preds):
        raise ValueError(f"multi_stage_heatmap_loss: {len(preds)} stages but {len(factors)} stage weights")
    losses = []
    for i, (p, t, f) in enumerate(zip(preds, targets, factors)):
        if p.shape != t.shape:
            raise ValueError(
                f"multi_stage_heatmap_loss: stage {i} prediction shape {tuple(p.shape)} != "
                f"target shape {tuple(t.shape)}"
            )
        losses.append(weighted_mse_heatmap(p, t, weight, reduction="mean") * f)
    total = torch.stack(losses).sum()
    return total / len(losses) if aggregate == "mean" else total

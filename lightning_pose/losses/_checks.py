"""Shape checks shared by the loss functions (clear errors instead of silent broadcasting)."""

from __future__ import annotations

from torch import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def check_reduction(fn: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def check_pred_target_weight(fn: str, pred: Tensor, target: Tensor, weight: Tensor | None, ndim: int) -> None:
    """``pred`` and ``target`` must have identical shapes with ``ndim`` dims; ``weight`` must be ``pred.shape[:2]``."""
    if pred.dim() != ndim:
        raise ValueError(f"{fn}: prediction must have {ndim} dims, got shape {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{fn}: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    if weight is not None and weight.shape != pred.shape[:2]:
        raise ValueError(f"{fn}: weight must have shape (B, K) = {tuple(pred.shape[:2])}, got {tuple(weight.shape)}")

"""Associative Embedding losses: masked heatmap MSE and the grouping (pull / push) loss.

Notation, per image: persons ``n = 1..N`` with at least one labelled joint, ``h_nk`` the ``L``-dim tag read at
joint ``k`` of person ``n`` (at the pixel of its target peak), ``hbar_n = mean_k h_nk`` over its labelled joints.

* pull ``= (1/N) sum_n mean_k ||h_nk - hbar_n||^2``;
* push, ``"exp"`` (the paper, with its ``2 sigma^2 = 1``): ``0.5 * sum_{n != n'} exp(-||hbar_n - hbar_n'||^2) / (N (N-1))``;
* push, ``"max"`` (max-margin variant): ``0.5 * sum_{n != n'} max(0, 1 - ||hbar_n - hbar_n'||) / (N (N-1))``;
* ``N = 1`` -> push 0; ``N = 0`` -> both 0. Both are averaged over the images of the batch.

This is the normalisation of the authors' code (pose-ae-train ``AE`` loss, HigherHRNet ``AELoss``): the paper
writes the pull term as a sum over joints and the push term over ``N^2`` pairs; the code takes the mean over
joints and excludes ``n = n'`` (which only adds a constant to the logged value, docs/methods.md#ae-loss).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PUSH_KINDS", "masked_heatmap_mse", "ae_grouping_loss", "gather_tags"]

PUSH_KINDS = ("exp", "max")


def masked_heatmap_mse(pred: Tensor, target: Tensor, mask: Tensor, pos_weight: float = 0.0) -> Tensor:
    """``mean over images of mean_{K, H, W} (pred - target)^2 * mask * (1 + pos_weight * target)``.

    ``pos_weight = 0`` is the plain masked MSE of HigherHRNet / pose-ae-train. A positive ``pos_weight`` weighs
    each pixel by its target value (1 + pos_weight at a peak, 1 on the background), as focal-style heatmap losses
    do: the few pixels near the joints then outweigh the background, and training leaves the early all-zero
    prediction sooner.

    Args:
        pred, target: ``(B, K, H, W)`` heatmaps (heatmap frame; targets in [0, 1]).
        mask: ``(B, H, W)``, 1 = learn, 0 = ignored region (crowds, persons without keypoints).
        pos_weight: extra weight of a target value of 1 (>= 0).
    """
    if pos_weight < 0:
        raise ValueError(f"masked_heatmap_mse: pos_weight must be >= 0, got {pos_weight}")
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"masked_heatmap_mse: pred {tuple(pred.shape)} and target {tuple(target.shape)} must be "
            "the same (B, K, H, W)"
        )
    if mask.shape != (pred.shape[0], *pred.shape[-2:]):
        raise ValueError(
            f"masked_heatmap_mse: mask must be (B, H, W) = {(pred.shape[0], *pred.shape[-2:])}, got {tuple(mask.shape)}"
        )
    t = target.to(pred.dtype)
    err = (pred - t) ** 2 * mask.to(pred.dtype)[:, None]
    if pos_weight:
        err = err * (1.0 + pos_weight * t)
    return err.mean(dim=(1, 2, 3)).mean()


def gather_tags(tags: Tensor, tag_index: Tensor) -> Tensor:
    """Tags at the target pixels: ``tags (B, K, L, H, W)``, ``tag_index (B, N, K)`` flat ``y * W + x``
    -> ``(B, N, K, L)``."""
    b, k, length, h, w = tags.shape
    n = tag_index.shape[1]
    flat = tags.reshape(b, k, length, h * w)
    idx = tag_index.permute(0, 2, 1)[:, :, None, :].expand(b, k, length, n)  # (B, K, L, N)
    return torch.gather(flat, 3, idx).permute(0, 3, 1, 2)


def ae_grouping_loss(
    tags: Tensor, tag_index: Tensor, tag_valid: Tensor, push_kind: str = "exp"
) -> tuple[Tensor, Tensor]:
    """Push and pull losses (module docstring), each averaged over the batch.

    Args:
        tags: ``(B, K, L, H, W)`` predicted tag maps (or ``(B, K, H, W)`` for ``L = 1``).
        tag_index: ``(B, N, K)`` long flat pixel indices of every person's joints.
        tag_valid: ``(B, N, K)`` bool, which entries of ``tag_index`` are labelled joints.
        push_kind: ``"exp"`` or ``"max"``.

    Returns:
        ``(push, pull)`` scalars.
    """
    if push_kind not in PUSH_KINDS:
        raise ValueError(f"push_kind must be one of {PUSH_KINDS}, got {push_kind!r}")
    if tags.dim() == 4:
        tags = tags[:, :, None]
    if tag_index.shape != tag_valid.shape or tag_index.dim() != 3 or tag_index.shape[2] != tags.shape[1]:
        raise ValueError(
            f"ae_grouping_loss: tag_index {tuple(tag_index.shape)} / tag_valid "
            f"{tuple(tag_valid.shape)} must be (B, N, K={tags.shape[1]})"
        )
    values = gather_tags(tags, tag_index)  # (B, N, K, L)
    v = tag_valid.to(values.dtype)
    count = v.sum(dim=2)  # (B, N)
    present = count > 0
    denom = count.clamp(min=1.0)
    mean = (values * v[..., None]).sum(dim=2) / denom[..., None]  # (B, N, L)
    pull_n = (((values - mean[:, :, None]) ** 2).sum(-1) * v).sum(dim=2) / denom  # (B, N)
    n_img = present.sum(dim=1).to(values.dtype)  # (B,)
    pull = (pull_n * present).sum(dim=1) / n_img.clamp(min=1.0)
    d2 = ((mean[:, :, None] - mean[:, None]) ** 2).sum(-1)  # (B, N, N)
    pair = present[:, :, None] & present[:, None, :]
    eye = torch.eye(pair.shape[1], dtype=torch.bool, device=pair.device)
    pair = pair & ~eye
    if push_kind == "exp":
        f = torch.exp(-d2)
    else:
        # the clamp keeps the sqrt differentiable at 0 (coinciding means, e.g. the excluded diagonal)
        f = torch.clamp(1.0 - torch.sqrt(d2.clamp(min=1e-12)), min=0.0)
    pairs = (n_img * (n_img - 1.0)).clamp(min=1.0)
    push = 0.5 * (f * pair).sum(dim=(1, 2)) / pairs
    return push.mean(), pull.mean()

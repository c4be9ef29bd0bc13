"""Hand-computed checks of the heatmap losses (weighted MSE, multi-stage aggregation, weighted BCE)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_pose.losses import multi_stage_heatmap_loss, weighted_bce_heatmap, weighted_mse_heatmap


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    # B=1, K=2, H=W=2. Joint 0 errors 1,2,3,4 (squares sum 30); joint 1 errors all 10 (squares sum 400).
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 10.0], [10.0, 10.0]]]])
    return pred, torch.zeros_like(pred)


def test_weighted_mse_zero_weight_removes_joint_and_mean_counts_all_elements() -> None:
    pred, target = _pair()
    w = torch.tensor([[1.0, 0.0]])
    assert weighted_mse_heatmap(pred, target, w).item() == pytest.approx(30 / 8)  # mean over B*K*H*W = 8
    assert weighted_mse_heatmap(pred, target, w, reduction="sum").item() == pytest.approx(30.0)
    torch.testing.assert_close(weighted_mse_heatmap(pred, target, w, reduction="none"), torch.tensor([[7.5, 0.0]]))


def test_weighted_mse_fractional_weight_and_none_weight() -> None:
    pred, target = _pair()
    w = torch.tensor([[0.5, 0.25]])
    assert weighted_mse_heatmap(pred, target, w).item() == pytest.approx((0.5 * 30 + 0.25 * 400) / 8)
    assert weighted_mse_heatmap(pred, target, None).item() == pytest.approx(430 / 8)


def test_weighted_mse_matches_elementwise_reference_on_random_tensors() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 4, 5, 6, generator=g), torch.rand(3, 4, 5, 6, generator=g)
    w = (torch.rand(3, 4, generator=g) > 0.3).float()
    ref = ((pred - target) ** 2 * w[:, :, None, None]).mean()
    torch.testing.assert_close(weighted_mse_heatmap(pred, target, w), ref)


def test_multi_stage_sum_vs_mean_aggregation() -> None:
    pred, target = _pair()
    w = torch.tensor([[1.0, 0.0]])
    stage2 = pred * 0.5  # joint 0 errors .5,1,1.5,2 -> squares 7.5
    total = multi_stage_heatmap_loss([pred, stage2], target, w, aggregate="sum")
    mean = multi_stage_heatmap_loss([pred, stage2], target, w, aggregate="mean")
    assert total.item() == pytest.approx(30 / 8 + 7.5 / 8)
    assert mean.item() == pytest.approx((30 / 8 + 7.5 / 8) / 2)
    weighted = multi_stage_heatmap_loss([pred, stage2], [target, target], w, aggregate="sum", stage_weights=[0.0, 2.0])
    assert weighted.item() == pytest.approx(2 * 7.5 / 8)


def test_multi_stage_errors() -> None:
    pred, target = _pair()
    with pytest.raises(ValueError, match="aggregate"):
        multi_stage_heatmap_loss([pred], target, None, aggregate="max")
    with pytest.raises(ValueError, match="stage 1"):
        multi_stage_heatmap_loss([pred, pred[..., :1]], target, None)
    with pytest.raises(ValueError, match="no stage"):
        multi_stage_heatmap_loss([], target, None)
    with pytest.raises(ValueError, match="2 stage predictions but 1 targets"):
        multi_stage_heatmap_loss([pred, pred], [target], None)


def test_weighted_bce_hand_computed() -> None:
    # K=2, 1x2 maps. Joint 0: logits (0, ln 3), targets (1, 1) -> ln 2 and -ln(0.75). Joint 1 zero weight.
    logits = torch.tensor([[[[0.0, math.log(3.0)]], [[5.0, -5.0]]]])
    target = torch.tensor([[[[1.0, 1.0]], [[0.0, 1.0]]]])
    w = torch.tensor([[1.0, 0.0]])
    expected = (math.log(2.0) - math.log(0.75)) / 4  # mean over 4 elements
    assert weighted_bce_heatmap(logits, target, w).item() == pytest.approx(expected, rel=1e-6)
    # Negative target at logit ln 3: -ln(1 - 0.75) = ln 4
    neg = weighted_bce_heatmap(torch.full((1, 1, 1, 1), math.log(3.0)), torch.zeros(1, 1, 1, 1), torch.ones(1, 1))
    assert neg.item() == pytest.approx(math.log(4.0), rel=1e-6)
    # pos_weight multiplies the positive term only
    pw = weighted_bce_heatmap(logits[:, :1], target[:, :1], None, pos_weight=2.0, reduction="sum")
    assert pw.item() == pytest.approx(2 * (math.log(2.0) - math.log(0.75)), rel=1e-6)


def test_heatmap_loss_shape_errors() -> None:
    pred, target = _pair()
    with pytest.raises(ValueError, match="weight must have shape"):
        weighted_mse_heatmap(pred, target, torch.ones(2))
    with pytest.raises(ValueError, match="target shape"):
        weighted_bce_heatmap(pred, target[:, :1], None)
    with pytest.raises(ValueError, match="reduction"):
        weighted_mse_heatmap(pred, target, None, reduction="avg")

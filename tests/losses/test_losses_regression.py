"""Hand-computed checks of coordinate_loss (L1, squared L2, smooth L1) with joint weights."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.losses import coordinate_loss

PRED = torch.tensor([[[0.1, -0.2], [0.5, 0.5]]])  # B=1, K=2
TARGET = torch.zeros(1, 2, 2)
W = torch.tensor([[1.0, 0.0]])  # joint 1 ignored


def test_l1_l2_hand_computed() -> None:
    assert coordinate_loss(PRED, TARGET, W, kind="l1").item() == pytest.approx((0.1 + 0.2) / 4)
    assert coordinate_loss(PRED, TARGET, W, kind="l2").item() == pytest.approx((0.01 + 0.04) / 4)
    assert coordinate_loss(PRED, TARGET, W, kind="l1", reduction="sum").item() == pytest.approx(0.3)
    per_joint = coordinate_loss(PRED, TARGET, W, kind="l1", reduction="none")
    torch.testing.assert_close(per_joint, torch.tensor([[0.3, 0.0]]))
    assert coordinate_loss(PRED, TARGET, None, kind="l1").item() == pytest.approx((0.1 + 0.2 + 0.5 + 0.5) / 4)


def test_smooth_l1_hand_computed() -> None:
    # beta 0.15: |0.1| < beta -> 0.5 * 0.01 / 0.15 ; |0.2| >= beta -> 0.2 - 0.075
    expected = (0.5 * 0.01 / 0.15 + (0.2 - 0.075)) / 4
    assert coordinate_loss(PRED, TARGET, W, kind="smooth_l1", beta=0.15).item() == pytest.approx(expected, rel=1e-6)


def test_binary_weights_match_mmpose_masked_form() -> None:
    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(4, 5, 2, generator=g), torch.rand(4, 5, 2, generator=g)
    w = (torch.rand(4, 5, generator=g) > 0.5).float()
    ref = torch.nn.functional.smooth_l1_loss(pred * w[..., None], target * w[..., None], beta=0.05)
    torch.testing.assert_close(coordinate_loss(pred, target, w, kind="smooth_l1", beta=0.05), ref)


def test_errors() -> None:
    with pytest.raises(ValueError, match="kind"):
        coordinate_loss(PRED, TARGET, W, kind="huber")
    with pytest.raises(ValueError, match="beta"):
        coordinate_loss(PRED, TARGET, W, kind="smooth_l1", beta=0.0)
    with pytest.raises(ValueError, match="3 dims"):
        coordinate_loss(PRED[0], TARGET[0], None)

"""Associative-embedding losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_pose.losses.associative_embedding import ae_grouping_loss, gather_tags, masked_heatmap_mse


def _tags_1x4(values: list[list[float]]) -> torch.Tensor:
    """(B, K=2, L=1, H=1, W=4) tag maps from per-image, per-joint rows of 4 pixels... given as [joint0 row, joint1]."""
    return torch.tensor(values, dtype=torch.float64).reshape(len(values), 2, 1, 1, 4)


def test_pull_push_exp_by_hand() -> None:
    # one image, K = 2 joints, maps 1 x 4. Person 0: joint 0 at x=0 (tag 1), joint 1 at x=1 (tag 3) -> mean 2,
    # pull_0 = mean(1, 1) = 1. Person 1: joint 0 at x=2 (tag 0), joint 1 at x=3 (tag 0) -> mean 0, pull_1 = 0.
    tags = _tags_1x4([[[1.0, 9.0, 0.0, 9.0], [9.0, 3.0, 9.0, 0.0]]])
    index = torch.tensor([[[0, 1], [2, 3]]])
    valid = torch.ones(1, 2, 2, dtype=torch.bool)
    push, pull = ae_grouping_loss(tags, index, valid, "exp")
    assert float(pull) == pytest.approx(0.5)  # (1 + 0) / N, N = 2
    # push = 0.5 * (exp(-4) + exp(-4)) / (N (N - 1)) = 0.5 * exp(-4)
    assert float(push) == pytest.approx(0.5 * math.exp(-4.0))


def test_push_max_margin_by_hand() -> None:
    # means 0.25 and 0.75 (|diff| = 0.5): max(0, 1 - 0.5) = 0.5 for both ordered pairs -> 0.5 * 1.0 / 2 = 0.25
    tags = _tags_1x4([[[0.25, 0.0, 0.75, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    index = torch.tensor([[[0, 0], [2, 0]]])
    valid = torch.tensor([[[True, False], [True, False]]])
    push, pull = ae_grouping_loss(tags, index, valid, "max")
    assert float(pull) == 0.0
    assert float(push) == pytest.approx(0.25)
    push_exp, _ = ae_grouping_loss(tags, index, valid, "exp")
    assert float(push_exp) == pytest.approx(0.5 * math.exp(-0.25))


def test_edge_cases_and_batch_average() -> None:
    # image 0: a single person (push 0, pull from its two joints 1 and -1 -> 1); image 1: nobody (both 0)
    tags = _tags_1x4([[[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]], [[5.0] * 4, [5.0] * 4]])
    index = torch.tensor([[[0, 1], [0, 0]], [[0, 0], [0, 0]]])
    valid = torch.tensor([[[True, True], [False, False]], [[False, False], [False, False]]])
    push, pull = ae_grouping_loss(tags, index, valid)
    assert float(push) == 0.0
    assert float(pull) == pytest.approx(0.5)  # (1 + 0) / 2 images


def test_two_dimensional_tags_and_gradients() -> None:
    tags = torch.zeros(1, 1, 2, 1, 3, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        tags[0, 0, :, 0, 0] = torch.tensor([0.0, 0.0])
        tags[0, 0, :, 0, 2] = torch.tensor([0.6, 0.8])  # distance 1 from the first
    index = torch.tensor([[[0], [2]]])
    valid = torch.ones(1, 2, 1, dtype=torch.bool)
    push, pull = ae_grouping_loss(tags, index, valid, "exp")
    assert float(push.detach()) == pytest.approx(0.5 * math.exp(-1.0))
    assert float(pull.detach()) == 0.0
    push.backward()
    assert torch.isfinite(tags.grad).all() and tags.grad.abs().sum() > 0
    # the max-margin form stays finite when two means coincide
    same = torch.zeros(1, 1, 1, 1, 2, dtype=torch.float64, requires_grad=True)
    p, _ = ae_grouping_loss(same, torch.tensor([[[0], [1]]]), torch.ones(1, 2, 1, dtype=torch.bool), "max")
    assert float(p.detach()) == pytest.approx(0.5, abs=1e-5)  # sqrt(clamp 1e-12) = 1e-6
    p.backward()
    assert torch.isfinite(same.grad).all()


def test_gather_tags_layout() -> None:
    tags = torch.arange(2 * 3 * 1 * 2 * 2, dtype=torch.float64).reshape(2, 3, 1, 2, 2)
    index = torch.tensor([[[0, 1, 3]], [[2, 2, 0]]])
    got = gather_tags(tags, index)
    assert got.shape == (2, 1, 3, 1)
    assert got[0, 0, :, 0].tolist() == [0.0, 5.0, 11.0]
    assert got[1, 0, :, 0].tolist() == [14.0, 18.0, 20.0]


def test_masked_heatmap_mse_by_hand() -> None:
    pred = torch.zeros(2, 1, 1, 2, dtype=torch.float64)
    target = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 0.0]]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]], dtype=torch.float64)
    # image 0: mean(1 * 1, 4 * 0) = 0.5; image 1: mean(9, 0) = 4.5 -> mean over images 2.5
    assert float(masked_heatmap_mse(pred, target, mask)) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="mask"):
        masked_heatmap_mse(pred, target, mask[:, :, :1])
    # pos_weight 2: pixel weights 1 + 2 t -> image 0: mean(1 * 1 * 3, 4 * 0 * 5) = 1.5; image 1: mean(9 * 7, 0) = 31.5
    assert float(masked_heatmap_mse(pred, target, mask, pos_weight=2.0)) == pytest.approx(16.5)
    assert float(masked_heatmap_mse(pred, target, mask, pos_weight=0.0)) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="pos_weight"):
        masked_heatmap_mse(pred, target, mask, pos_weight=-1.0)
    with pytest.raises(ValueError, match="push_kind"):
        ae_grouping_loss(
            torch.zeros(1, 1, 1, 1, 1),
            torch.zeros(1, 1, 1, dtype=torch.long),
            torch.ones(1, 1, 1, dtype=torch.bool),
            "linear",
        )

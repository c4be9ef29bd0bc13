"""Model cost figures and the per-joint / threshold tables logged to W&B (fast unit checks)."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from lightning_pose.callbacks.model_cost import count_parameters, forward_gflops
from lightning_pose.callbacks.wandb_images import normalized_errors
from lightning_pose.callbacks.wandb_tables import is_per_joint_key, per_joint_table, threshold_curve
from lightning_pose.skeletons import get_keypoint_set


def test_gflops_of_a_convolution_counts_multiply_adds_twice():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # (W, H) = (16, 12): 8 output channels x 16 x 12 pixels x 27 multiply-adds x 2
    assert forward_gflops(conv, (16, 12)) == pytest.approx(2 * 8 * 16 * 12 * 27 / 1e9)
    assert count_parameters(conv) == 8 * 27
    assert conv.training  # training mode restored


def test_per_joint_table_and_threshold_curve():
    kset = get_keypoint_set("coco")
    values = {
        "val/PCK@0.2": 0.5,
        "val/PCK@0.05": 0.1,
        "val/PCK@0.2/nose": 0.9,
        "val/PCK@0.05/nose": 0.2,
        "val/PCK@0.2/left_eye": 0.4,
        "val/PCK/excluded_instances": 0.0,
        "test/PCK@0.2": 0.3,
    }
    columns, rows = per_joint_table(values, kset, "val")
    assert columns == ["joint", "PCK@0.05", "PCK@0.2"]
    assert rows[0] == ["nose", 0.2, 0.9] and rows[1] == ["left_eye", None, 0.4] and len(rows) == 17
    assert threshold_curve(values, "val") == [("PCK", 0.05, 0.1), ("PCK", 0.2, 0.5)]
    assert is_per_joint_key("val/PCK@0.2/nose") and is_per_joint_key("test/PCKh@0.5/head")
    assert not is_per_joint_key("val/PCK/excluded_instances") and not is_per_joint_key("val/PCK@0.2_macro")


def test_worst_case_error_is_normalised_by_the_box():
    gt = np.zeros((2, 2, 3))
    gt[..., 2] = [[2, 2], [2, 0]]
    pred = np.array([[[3.0, 4.0], [0.0, 0.0]], [[6.0, 8.0], [100.0, 100.0]]])
    bbox = np.array([[0, 0, 10, 10], [0, 0, 20, 5]], dtype=float)
    # sample 0: distances 5 and 0 -> 2.5 / 10; sample 1: only joint 0 labelled -> 10 / 10
    assert normalized_errors(pred, gt, bbox) == pytest.approx([0.25, 1.0])
    gt[1, :, 2] = 0
    assert np.isnan(normalized_errors(pred, gt, bbox)[1])

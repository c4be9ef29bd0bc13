"""Loss functions for heatmap, coordinate-regression and RLE training (plain torch; all accept joint weights (B, K))."""

from lightning_pose.losses.heatmap import multi_stage_heatmap_loss, weighted_bce_heatmap, weighted_mse_heatmap
from lightning_pose.losses.regression import coordinate_loss
from lightning_pose.losses.rle import RLELoss

__all__ = [
    "weighted_mse_heatmap",
    "multi_stage_heatmap_loss",
    "weighted_bce_heatmap",
    "coordinate_loss",
    "RLELoss",
]

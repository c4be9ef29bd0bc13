"""Torch datasets returning the sample dicts of ARCHITECTURE.md."""

from lightning_pose.data.datasets.bottomup import BottomUpDataset, segmentation_to_ignore
from lightning_pose.data.datasets.topdown import TopDownDataset, TopDownItem

__all__ = ["BottomUpDataset", "TopDownDataset", "TopDownItem", "segmentation_to_ignore"]

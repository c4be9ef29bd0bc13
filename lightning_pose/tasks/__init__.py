"""LightningModules, one per method, over plain nn.Module networks."""

from lightning_pose.tasks.associative_embedding import AssociativeEmbeddingTask
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.heatmap import CPMTask, HeatmapTask, SimpleBaselineTask, StackedHourglassTask
from lightning_pose.tasks.hybrid import HybridTask
from lightning_pose.tasks.regression import DeepPoseTask, IntegralRegressionTask

__all__ = [
    "PoseTask",
    "HeatmapTask",
    "SimpleBaselineTask",
    "StackedHourglassTask",
    "CPMTask",
    "DeepPoseTask",
    "IntegralRegressionTask",
    "HybridTask",
    "AssociativeEmbeddingTask",
]

"""LightningDataModules of the supported datasets (top-down or bottom-up samples)."""

from lightning_pose.data.datamodules.aic import AICDataModule
from lightning_pose.data.datamodules.base import PoseDataModule
from lightning_pose.data.datamodules.coco import COCODataModule
from lightning_pose.data.datamodules.demo import DemoDataModule
from lightning_pose.data.datamodules.mpii import MPIIDataModule

__all__ = ["PoseDataModule", "COCODataModule", "MPIIDataModule", "AICDataModule", "DemoDataModule"]

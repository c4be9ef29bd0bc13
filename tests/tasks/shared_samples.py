"""Datamodules over the real samples in ../shared/data, train split = val split, no augmentation (overfit tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def coco_datamodule(shared_data: Path, input_size: tuple[int, int] = (96, 128)) -> Any:
    """COCO sample: 4 images / 14 persons, whole split in one batch."""
    from lightning_pose.data.datamodules import COCODataModule

    ann, images = str(shared_data / "coco" / "test_coco.json"), str(shared_data / "coco")
    return COCODataModule(
        root=str(shared_data / "coco"),
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=input_size,
        batch_size=16,
        num_workers=0,
        augmentation={"enabled": False},
    )


def mpii_datamodule(shared_data: Path, input_size: tuple[int, int]) -> Any:
    """MPII sample: 5 persons with head boxes from mpii_gt_val.mat, whole split in one batch."""
    from lightning_pose.data.datamodules import MPIIDataModule

    ann, images = str(shared_data / "mpii" / "test_mpii.json"), str(shared_data / "mpii")
    return MPIIDataModule(
        root=str(shared_data / "mpii"),
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        val_headboxes=str(shared_data / "mpii" / "mpii_gt_val.mat"),
        input_size=input_size,
        batch_size=16,
        num_workers=0,
        augmentation={"enabled": False},
    )

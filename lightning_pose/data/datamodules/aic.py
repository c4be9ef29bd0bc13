"""AI Challenger keypoints datamodule (COCO-style conversion or the original release format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_pose.data.datamodules.base import PoseDataModule

__all__ = ["AICDataModule", "AIC_FORMATS"]

AIC_FORMATS = ("coco", "raw")

_TRAIN_DIR = "ai_challenger_keypoint_train_20170902"
_VAL_DIR = "ai_challenger_keypoint_validation_20170911"


class AICDataModule(PoseDataModule):
    """AI Challenger human keypoints (14 joints).

    ``format="coco"`` (default; the conversion most toolboxes use, mmpose layout)::

        root/annotations/aic_train.json
        root/annotations/aic_val.json
        root/ai_challenger_keypoint_train_20170902/keypoint_train_images_20170902/*.jpg
        root/ai_challenger_keypoint_validation_20170911/keypoint_validation_images_20170911/*.jpg

    ``format="raw"`` (the original release, unpacked in ``root``)::

        root/ai_challenger_keypoint_train_20170902/keypoint_train_annotations_20170909.json
        root/ai_challenger_keypoint_validation_20170911/keypoint_validation_annotations_20170911.json
        (images in the same folders as above)

    The test split defaults to the validation split. Raw-format image ids are numbered from 1 in file
    order, so detection files (``val_boxes``) must use the COCO-style conversion's ids with
    ``format="coco"`` only.

    Args:
        format: ``"coco"`` or ``"raw"`` (see above).
        (the other arguments: see :class:`~lightning_pose.data.datamodules.base.PoseDataModule`)
    """

    dataset_name = "aic"
    default_keypoint_set = "aic"

    def __init__(self, root: str = "data/aic", format: str = "coco", **kwargs: Any) -> None:
        if format not in AIC_FORMATS:
            raise ValueError(f"AICDataModule format must be one of {AIC_FORMATS}, got {format!r}")
        self.format = format
        super().__init__(root=root, **kwargs)

    def default_paths(self, split: str) -> tuple[Path, Path]:
        if split == "train":
            folder, images = self.root / _TRAIN_DIR, "keypoint_train_images_20170902"
            raw_ann, coco_ann = "keypoint_train_annotations_20170909.json", "aic_train.json"
        else:
            folder, images = self.root / _VAL_DIR, "keypoint_validation_images_20170911"
            raw_ann, coco_ann = "keypoint_validation_annotations_20170911.json", "aic_val.json"
        ann = folder / raw_ann if self.format == "raw" else self.root / "annotations" / coco_ann
        return ann, folder / images

    def read_split(self, split: str, ann_file: Path, image_dir: Path) -> Any:
        from lightning_pose.data.readers.aic import read_aic, read_aic_raw

        reader = read_aic_raw if self.format == "raw" else read_aic
        return reader(ann_file, image_dir, skip_invalid=self.skip_invalid, check_images=self.check_images)

    def metric_specs(self) -> tuple:
        """What val/test are evaluated with: bbox-normalised PCK (GT-box splits), COCO-style AP (AIC sigmas, area
        ``0.53 w h``) and the official AI Challenger score (plain specs built by
        :mod:`lightning_pose.metrics.registry`; bottom-up tasks take their variants)."""
        from lightning_pose.metric_specs import AIC_SCORE, PCK_ON_GT_BOXES, coco_ap

        return (PCK_ON_GT_BOXES, coco_ap(use_area=False), AIC_SCORE)

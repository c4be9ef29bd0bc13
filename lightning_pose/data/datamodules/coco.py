"""COCO keypoints datamodule (``person_keypoints_{train,val}2017.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning_pose.data.datamodules.base import PoseDataModule
from lightning_pose.data.records import DatasetError

__all__ = ["COCODataModule", "load_ignore_segmentations"]


def load_ignore_segmentations(ann_file: Path, records: list) -> dict[int, Any]:
    """``{annotation id: segmentation}`` of the crowd / keypoint-less persons of ``records``, read from the
    COCO json (the records do not carry segmentations); used for the bottom-up ignore mask."""
    wanted = {int(p.id) for r in records for p in r.persons if p.iscrowd or p.num_keypoints == 0}
    if not wanted:
        return {}
    try:
        with open(ann_file, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{ann_file}: cannot read segmentations: {exc}") from exc
    out: dict[int, Any] = {}
    for ann in data.get("annotations", []) if isinstance(data, dict) else []:
        if isinstance(ann, dict) and ann.get("id") in wanted and ann.get("segmentation"):
            out[int(ann["id"])] = ann["segmentation"]
    return out


class COCODataModule(PoseDataModule):
    """COCO 2017 person keypoints (17 joints).

    Default layout (the official download unpacked in ``root``)::

        root/annotations/person_keypoints_train2017.json   root/train2017/*.jpg
        root/annotations/person_keypoints_val2017.json     root/val2017/*.jpg

    The test split defaults to val2017 (test-dev has no public annotations). Top-down evaluation with
    detections: ``val_boxes: path/to/COCO_val2017_detections_AP_H_56_person.json``. Top-down training
    augmentation defaults: HRNet-W32 COCO (scale 0.35, rotation 45 w.p. 0.6, half-body 0.3, flip 0.5).
    In bottom-up mode the ignore mask uses the segmentations of crowd and keypoint-less persons.

    Args: see :class:`~lightning_pose.data.datamodules.base.PoseDataModule`.
    """

    dataset_name = "coco"
    default_keypoint_set = "coco"

    def __init__(self, root: str = "data/coco", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)

    def default_paths(self, split: str) -> tuple[Path, Path]:
        name = {"train": "train2017", "val": "val2017", "test": "val2017"}[split]
        return self.root / "annotations" / f"person_keypoints_{name}.json", self.root / name

    def read_split(self, split: str, ann_file: Path, image_dir: Path) -> Any:
        from lightning_pose.data.readers.coco import read_coco

        return read_coco(
            ann_file,
            image_dir,
            keypoint_set=self.keypoint_set,
            skip_invalid=self.skip_invalid,
            check_images=self.check_images,
        )

    def extra_dataset_kwargs(self, split: str) -> dict[str, Any]:
        if self.mode != "bottomup":
            return {}
        return {"segmentations": load_ignore_segmentations(self.paths(split)[0], self.records(split))}

    def metric_specs(self) -> tuple:
        """What val/test are evaluated with: bbox-normalised PCK (GT-box splits), COCO keypoint AP with the GT
        areas (plain specs built by :mod:`lightning_pose.metrics.registry`; bottom-up tasks take their variants)."""
        from lightning_pose.metric_specs import PCK_ON_GT_BOXES, coco_ap

        return (PCK_ON_GT_BOXES, coco_ap(use_area=True))

"""MPII Human Pose datamodule (HRNet-style JSON annotations + ``gt_valid.mat`` head boxes)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from lightning_pose.data.datamodules.base import PoseDataModule

__all__ = ["MPIIDataModule"]


class MPIIDataModule(PoseDataModule):
    """MPII single-person pose (16 joints), evaluated with PCKh.

    Default layout (as distributed with HRNet / mmpose)::

        root/annot/train.json   root/annot/valid.json   root/annot/gt_valid.mat   root/images/*.jpg

    The test split defaults to ``valid.json`` (the MPII test labels are not public). Crops come from the
    annotated centre / scale (``c_y += 15 s``, ``s *= 1.25``, HRNet). Default input 256x256 and HRNet's
    MPII augmentation (scale 0.25, rotation 30 w.p. 0.6, no half-body, flip 0.5).

    Args:
        val_headboxes, test_headboxes: ``gt_valid.mat``-layout head boxes matching the rows of the val /
            test JSON (``None`` = ``root/annot/gt_valid.mat`` when that file exists); needed for PCKh.
        train_headboxes: optional head boxes for the train JSON.
        (the other arguments: see :class:`~lightning_pose.data.datamodules.base.PoseDataModule`)
    """

    dataset_name = "mpii"
    default_keypoint_set = "mpii"
    default_topdown_augmentation = {"scale_factor": 0.25, "rotation_factor": 30.0, "half_body_prob": 0.0}

    def __init__(
        self,
        root: str = "data/mpii",
        train_headboxes: str | None = None,
        val_headboxes: str | None = None,
        test_headboxes: str | None = None,
        input_size: tuple[int, int] = (256, 256),
        **kwargs: Any,
    ) -> None:
        # MPII has no person detections: evaluation always crops the annotated persons (no val/test_boxes option)
        super().__init__(root=root, input_size=input_size, val_boxes="gt", test_boxes="gt", **kwargs)
        self._headboxes = {"train": train_headboxes, "val": val_headboxes, "test": test_headboxes}

    def default_paths(self, split: str) -> tuple[Path, Path]:
        name = "train.json" if split == "train" else "valid.json"
        return self.root / "annot" / name, self.root / "images"

    def headbox_file(self, split: str) -> Path | None:
        """The head-box file (``gt_valid.mat`` layout) of ``split``, or ``None`` when there is none.

        An explicit argument is returned as given (the reader reports a missing file); the default
        ``root/annot/gt_valid.mat`` is used for val / test only when it exists and the split uses the
        default annotation file.
        """
        self._check_split(split)
        explicit = self._headboxes[split]
        if explicit:
            return Path(explicit).expanduser()
        if split == "train" or self._ann[split]:
            return None
        default = self.root / "annot" / "gt_valid.mat"
        return default if default.is_file() else None

    def read_split(self, split: str, ann_file: Path, image_dir: Path) -> Any:
        from lightning_pose.data.readers.mpii import read_mpii

        headboxes = self.headbox_file(split)
        if headboxes is None and split != "train":
            warnings.warn(
                f"{ann_file}: no head boxes for the {split!r} split (set {split}_headboxes); PCKh cannot be computed",
                stacklevel=2,
            )
        return read_mpii(
            ann_file, image_dir, headbox_file=headboxes, skip_invalid=self.skip_invalid, check_images=self.check_images
        )

    def metric_specs(self) -> tuple:
        """What val/test are evaluated with: bbox-normalised PCK (GT-box splits) and the official MPII PCKh
        (plain specs built by :mod:`lightning_pose.metrics.registry`)."""
        from lightning_pose.metric_specs import PCK_ON_GT_BOXES, PCKH

        return (PCK_ON_GT_BOXES, PCKH)

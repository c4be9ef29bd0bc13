"""Datamodule of the built-in synthetic demo dataset (generated once, cached, COCO format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_pose.data.datamodules.base import PoseDataModule

__all__ = ["DemoDataModule"]


class DemoDataModule(PoseDataModule):
    """The procedurally generated demo people (17 COCO keypoints), read as a COCO dataset.

    The dataset is generated on first use by ``lightning_pose.data.demo.ensure_demo_dataset`` into
    ``<cache_root>/demo-v*-s<seed>-<num_train>-<num_val>-<W>x<H>-p<max_people>/`` with the layout
    ``annotations/person_keypoints_{train,val}.json`` and images in ``{train,val}/``; later runs reuse it.
    The test split is the val split.

    Args:
        cache_root: folder holding generated demo datasets (``None`` = ``$LIGHTNING_POSE_CACHE`` or
            ``~/.cache/lightning_pose``).
        demo_seed: generator seed of the dataset (not the augmentation seed ``seed``).
        num_train, num_val: images per split.
        image_size: ``(W, H)`` of the generated images in pixels.
        max_people: people per image are 1..max_people.
        (the other arguments: see :class:`~lightning_pose.data.datamodules.base.PoseDataModule`)
    """

    dataset_name = "demo"
    default_keypoint_set = "coco"

    def __init__(
        self,
        cache_root: str | None = None,
        demo_seed: int = 0,
        num_train: int = 1200,
        num_val: int = 200,
        image_size: tuple[int, int] = (256, 256),
        max_people: int = 3,
        **kwargs: Any,
    ) -> None:
        # the files live in the generated folder (no root / per-split paths), the keypoint set is COCO's and
        # evaluation crops the GT persons (no detections): those base options are fixed, not offered
        super().__init__(
            root=cache_root or ".",
            train_ann=None,
            train_images=None,
            val_ann=None,
            val_images=None,
            test_ann=None,
            test_images=None,
            val_boxes="gt",
            test_boxes="gt",
            keypoint_set=None,
            **kwargs,
        )
        self.cache_root = cache_root
        self.demo_seed = int(demo_seed)
        self.num_train = int(num_train)
        self.num_val = int(num_val)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_people = int(max_people)
        self._demo_dir: Path | None = None

    def demo_dir(self) -> Path:
        """The generated dataset folder (generates it on first call; cached on disk afterwards)."""
        if self._demo_dir is None:
            from lightning_pose.data.demo import ensure_demo_dataset

            self._demo_dir = Path(
                ensure_demo_dataset(
                    self.cache_root,
                    seed=self.demo_seed,
                    num_train=self.num_train,
                    num_val=self.num_val,
                    image_size=self.image_size,
                    max_people=self.max_people,
                )
            )
        return self._demo_dir

    def prepare_data(self) -> None:
        """Generate the dataset once (rank 0 only under DDP)."""
        self.demo_dir()

    def default_paths(self, split: str) -> tuple[Path, Path]:
        name = "train" if split == "train" else "val"
        root = self.demo_dir()
        return root / "annotations" / f"person_keypoints_{name}.json", root / name

    def read_split(self, split: str, ann_file: Path, image_dir: Path) -> Any:
        from lightning_pose.data.readers.coco import read_coco

        return read_coco(
            ann_file,
            image_dir,
            keypoint_set=self.keypoint_set,
            skip_invalid=self.skip_invalid,
            check_images=self.check_images,
        )

    def metric_specs(self) -> tuple:
        """What val/test are evaluated with: bbox-normalised PCK (GT-box splits), COCO keypoint AP (COCO-format
        data; plain specs built by :mod:`lightning_pose.metrics.registry`; bottom-up tasks take their variants)."""
        from lightning_pose.metric_specs import PCK_ON_GT_BOXES, coco_ap

        return (PCK_ON_GT_BOXES, coco_ap(use_area=True))

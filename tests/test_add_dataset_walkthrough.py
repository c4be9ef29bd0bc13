"""Walk-through of "how to add a dataset" (ARCHITECTURE.md): everything a new dataset needs is defined in THIS file.

A made-up annotation format (CSV, one person per row: ``image,x,y,w,h,x1,y1,v1,...``) over the shared COCO sample
images with a 5-joint upper-body keypoint set. The dataset is three things, none of them a library file:

1. a reader (annotation file -> ``ImageRecord`` s + problems),
2. a keypoint set (a mapping; ``skeletons.py`` would hold it for a packaged dataset),
3. a thin datamodule: its name, default paths, ``read_split`` and the metrics it is evaluated with.

Then an unmodified task trains and validates on it, and the declared metrics score ground-truth predictions as
perfect (PCK 1, AP 1) -- so the declaration is wired, not just accepted.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lightning_pose.data.datamodules.base import PoseDataModule
from lightning_pose.data.readers.common import ReadResult
from lightning_pose.data.records import ImageRecord, PersonRecord
from lightning_pose.skeletons import COCO, get_keypoint_set

COCO_JOINTS = ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")
UPPER5 = {
    "name": "upper5",
    "keypoints": list(COCO_JOINTS),
    "flip_pairs": [[1, 2], [3, 4]],
    "skeleton": [[1, 2], [1, 3], [2, 4], [3, 4]],
    "upper_body": [0, 1, 2],
    "sigmas": [COCO.sigmas[COCO.keypoints.index(n)] for n in COCO_JOINTS],
}


# ---------------------------------------------------------------- 1. the reader
def read_upper5_csv(ann_file: Path, image_dir: Path) -> ReadResult:
    """CSV rows ``image,x,y,w,h,x1,y1,v1,...,x5,y5,v5`` (0-based pixels, COCO visibility) -> records."""
    kps = get_keypoint_set(UPPER5)
    by_image: dict[str, list[PersonRecord]] = {}
    with open(ann_file, newline="", encoding="utf-8") as fh:
        for row_no, row in enumerate(csv.reader(fh), start=1):
            values = np.asarray([float(v) for v in row[1:]], dtype=np.float64)
            person = PersonRecord(
                keypoints=values[4:].reshape(5, 3), bbox=values[:4], area=float(values[2] * values[3]), id=row_no
            )
            by_image.setdefault(row[0], []).append(person)
    records = []
    for image_id, (name, persons) in enumerate(sorted(by_image.items()), start=1):
        records.append(
            ImageRecord(image_id=image_id, file=(image_dir / name).resolve(), width=0, height=0, persons=persons)
        )
    return ReadResult(records=records, problems=[], keypoint_set=kps, source=ann_file)


# ---------------------------------------------------------------- 3. the datamodule
class Upper5DataModule(PoseDataModule):
    """The made-up dataset: ``root/{train,val}.csv`` + images in ``root/images``."""

    dataset_name = "upper5"

    def __init__(self, root: str = "data/upper5", **kwargs: Any) -> None:
        kwargs.setdefault("keypoint_set", UPPER5)
        super().__init__(root=root, **kwargs)

    def default_paths(self, split: str) -> tuple[Path, Path]:
        return self.root / f"{'train' if split == 'train' else 'val'}.csv", self.root / "images"

    def read_split(self, split: str, ann_file: Path, image_dir: Path) -> ReadResult:
        return read_upper5_csv(ann_file, image_dir)

    def metric_specs(self) -> tuple:
        from lightning_pose.metric_specs import PCK_ON_GT_BOXES, coco_ap

        return (PCK_ON_GT_BOXES, coco_ap(use_area=False))


# ---------------------------------------------------------------- the data, written from the shared COCO sample
@pytest.fixture(scope="module")
def upper5_root(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("upper5")
    (root / "images").mkdir()
    gt = json.loads((shared_data / "coco" / "test_coco.json").read_text())
    names = {im["id"]: im["file_name"] for im in gt["images"]}
    idx = [COCO.keypoints.index(n) for n in COCO_JOINTS]
    rows = []
    for ann in gt["annotations"]:
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)[idx]
        if ann.get("iscrowd") or (kp[:, 2] > 0).sum() < 3:
            continue
        rows.append([names[ann["image_id"]], *ann["bbox"], *kp.reshape(-1).tolist()])
    assert len(rows) >= 4
    for name in {r[0] for r in rows}:
        (root / "images" / name).symlink_to(shared_data / "coco" / name)
    for split in ("train", "val"):
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
    return root


def _datamodule(root: Path) -> Upper5DataModule:
    return Upper5DataModule(root=str(root), input_size=(48, 64), batch_size=4, val_batch_size=4, num_workers=0)


def test_declared_metrics_score_ground_truth_as_perfect(upper5_root) -> None:
    from lightning_pose.metrics.registry import build_metrics

    dm = _datamodule(upper5_root)
    dm.setup("validate")
    metrics = build_metrics(dm, "val", dm.keypoint_set)
    assert set(metrics) == {"pck", "coco_ap"}
    batch = next(iter(dm.val_dataloader()))
    n = len(dm.dataset("val"))
    for b in dm.val_dataloader():
        gt = b["gt_keypoints"]
        for m in metrics.values():
            m.update(gt[..., :2].float(), torch.ones(gt.shape[:2]), b)
    assert batch["gt_keypoints"].shape[1:] == (5, 3) and n >= 4
    pck = metrics["pck"].compute()
    ap = metrics["coco_ap"].compute()
    assert pck["PCK@0.05"] == pytest.approx(1.0)
    assert ap["AP"] == pytest.approx(1.0)


def test_an_unmodified_task_trains_and_validates_on_it(upper5_root) -> None:
    from lightning.pytorch import Trainer

    from lightning_pose.tasks import HeatmapTask

    dm = _datamodule(upper5_root)
    task = HeatmapTask(
        network={
            "class_path": "lightning_pose.models.SimpleBaseline",
            "init_args": {"backbone": "resnet18", "deconv_channels": [32, 32]},
        },
        keypoint_set=UPPER5,
        input_size=(48, 64),
        flip_test=True,
    )
    trainer = Trainer(
        max_steps=2,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(task, datamodule=dm)
    out = trainer.validate(task, datamodule=dm, verbose=False)[0]
    for key in ("val/PCK@0.05", "val/PCK@0.2", "val/AP", "val/AR"):
        assert key in out and 0.0 <= out[key] <= 1.0, key
    assert task.num_keypoints == 5 and task.keypoint_set.flip_indices == [0, 2, 1, 4, 3]

"""``lightning_pose.load(ckpt).predict(images, boxes)``: the same crops and keypoints as the validation pipeline,
in image pixels, and a cheap ``import lightning_pose``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ckpt_helpers import make_task, save_checkpoint  # noqa: E402

from lightning_pose.data.datasets.tensors import normalize_images  # noqa: E402

torch.set_num_threads(1)
PROJECT = Path(__file__).resolve().parents[2]


def test_import_lightning_pose_stays_cheap():
    code = "import sys, lightning_pose; assert callable(lightning_pose.load); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "False"


def test_predict_matches_the_validation_pipeline(shared_data, tmp_path):
    """GT boxes of the real COCO sample: the predictor's crops are the val dataset's crops, and its image-pixel
    keypoints are the task's input-frame keypoints mapped with the sample's crop_to_image."""
    import lightning_pose
    from lightning_pose.data.datamodules import COCODataModule
    from lightning_pose.tasks.base import crop_to_image_coords

    task = make_task("simple_baseline", input_size=(64, 96)).eval()
    model = lightning_pose.load(save_checkpoint(task, tmp_path / "sb.ckpt"), batch_size=5, nms_threshold=None)
    assert model.input_size == (64, 96) and model.keypoint_set.name == "coco"
    ann, images = str(shared_data / "coco" / "test_coco.json"), str(shared_data / "coco")
    dm = COCODataModule(
        root=images,
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=(64, 96),
        batch_size=4,
        num_workers=0,
    )
    dm.setup("validate")
    ds = dm.dataset("val")
    ds.reduced_decoding = False  # full-resolution decode, as the predictor does
    samples = [ds[i] for i in range(len(ds))]
    by_image: dict[int, list[dict]] = {}
    for s in samples:
        by_image.setdefault(int(s["image_id"]), []).append(s)
    file_of = {r.image_id: r.file for r in dm.records("val")}
    checked = 0
    for image_id, group in by_image.items():
        rgb = cv2.cvtColor(cv2.imread(str(file_of[image_id])), cv2.COLOR_BGR2RGB)
        boxes = np.stack([s["bbox"] for s in group])
        crops, mats, _ = model.make_crops(rgb, boxes)
        for crop, mat, s in zip(crops, mats, group):
            np.testing.assert_allclose(mat, s["crop_to_image"], atol=1e-9)
            np.testing.assert_allclose(crop, normalize_images(s["image"]).numpy(), atol=1e-5)
        result = model.predict(rgb, boxes=boxes)
        batch = normalize_images(torch.stack([s["image"] for s in group]))
        coords, scores = task.predict_keypoints(batch)
        want = crop_to_image_coords(coords, torch.stack([torch.as_tensor(s["crop_to_image"]) for s in group]))
        np.testing.assert_allclose(result["keypoints"][..., :2], want.numpy(), atol=1e-4)
        np.testing.assert_allclose(result["keypoints"][..., 2], scores.numpy(), atol=1e-6)
        np.testing.assert_allclose(result["boxes"], boxes)
        checked += len(group)
    assert checked == len(samples) > 5


def test_predict_accepts_paths_lists_and_no_boxes(shared_data, tmp_path):
    import lightning_pose

    model = lightning_pose.load(save_checkpoint(make_task("deeppose"), tmp_path / "dp.ckpt"))
    path = shared_data / "coco" / "000000000785.jpg"
    one = model.predict(str(path))
    assert one["keypoints"].shape == (1, 17, 3) and one["boxes"].tolist() == [[0.0, 0.0, 640.0, 425.0]]
    many = model.predict(
        [path, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)],
        boxes=[None, np.array([[10, 20, 100, 200, 0.7]])],
    )
    np.testing.assert_allclose(many[0]["keypoints"], one["keypoints"])
    assert many[1]["box_scores"].tolist() == [0.7] and many[1]["boxes"].tolist() == [[10.0, 20.0, 100.0, 200.0]]
    with pytest.raises(ValueError, match="image 0: boxes need finite values and w, h > 0"):
        model.predict(str(path), boxes=[[0, 0, -1, 5]])

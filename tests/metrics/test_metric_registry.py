"""The datamodule declares its metrics (``metric_specs``), the registry builds them, each metric exports its files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lightning_pose.data.datamodules import AICDataModule, COCODataModule, DemoDataModule, MPIIDataModule
from lightning_pose.data.records import ImageRecord, PersonRecord
from lightning_pose.errors import ConfigError
from lightning_pose.metric_specs import PCK_ON_GT_BOXES, MetricSpec, coco_ap
from lightning_pose.metrics import PCK, AICScore, COCOKeypointAP, PCKh
from lightning_pose.metrics.bottomup import BottomUpAICScore, BottomUpCOCOAP
from lightning_pose.metrics.export import check_export_dir, export_file_names, export_metric_predictions
from lightning_pose.metrics.registry import build_metrics, registered_metrics
from lightning_pose.skeletons import AIC, COCO, MPII


def _coco_gt(k: int) -> dict:
    ann = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "keypoints": [10.0, 20.0, 2] * k,
        "bbox": [0.0, 0.0, 40.0, 80.0],
        "area": 3200.0,
        "iscrowd": 0,
        "num_keypoints": k,
    }
    return {
        "images": [{"id": 1, "file_name": "abc.jpg"}],
        "annotations": [ann],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"j{i}" for i in range(k)]}],
    }


def _fake(dm_cls, k: int, boxes: str = "gt", persons: int = 3):
    """An object with the declaration of ``dm_cls`` (its own ``metric_specs``) and small GT, without files."""

    class Fake:
        metric_specs = dm_cls.metric_specs

        def __init__(self) -> None:
            self.boxes = {"val": boxes, "test": "gt"}
            self.gt_calls = 0

        def ground_truth(self, split):
            self.gt_calls += 1
            return _coco_gt(k)

        def records(self, split):
            person = PersonRecord(keypoints=np.zeros((k, 3)), bbox=np.ones(4), area=1.0)
            return [ImageRecord(1, "a.jpg", 0, 0, [person] * (persons - 1)), ImageRecord(2, "b.jpg", 0, 0, [person])]

    return Fake()


def _types(metrics: dict) -> dict[str, type]:
    return {name: type(m) for name, m in metrics.items()}


def test_each_datamodule_declares_its_metrics():
    assert _types(build_metrics(_fake(COCODataModule, 17), "val", COCO)) == {"pck": PCK, "coco_ap": COCOKeypointAP}
    assert _types(build_metrics(_fake(DemoDataModule, 17), "val", COCO)) == {"pck": PCK, "coco_ap": COCOKeypointAP}
    assert _types(build_metrics(_fake(MPIIDataModule, 16), "val", MPII)) == {"pck": PCK, "pckh": PCKh}
    aic = build_metrics(_fake(AICDataModule, 14), "val", AIC, pck_thresholds=(0.1,))
    assert _types(aic) == {"pck": PCK, "coco_ap": COCOKeypointAP, "aic": AICScore}
    # options of the declaration and of the task reach the metrics
    assert aic["coco_ap"].use_area is False and aic["coco_ap"].use_gt_boxes is True
    np.testing.assert_array_equal(aic["coco_ap"].sigmas, AIC.sigmas_array())
    assert aic["pck"].thresholds == (0.1,) and aic["pck"].normalizer == "bbox"
    assert build_metrics(_fake(COCODataModule, 17), "val", COCO)["coco_ap"].use_area is True
    # the MPII export has one row per GT person of the split
    assert build_metrics(_fake(MPIIDataModule, 16, persons=5), "val", MPII)["pckh"].num_persons == 5


def test_detection_boxes_and_bottom_up_variants():
    det = build_metrics(_fake(COCODataModule, 17, boxes="dets.json"), "val", COCO)
    assert _types(det) == {"coco_ap": COCOKeypointAP} and det["coco_ap"].use_gt_boxes is False
    assert _types(build_metrics(_fake(COCODataModule, 17), "val", COCO, bottomup=True)) == {"coco_ap": BottomUpCOCOAP}
    bu_aic = build_metrics(_fake(AICDataModule, 14), "val", AIC, bottomup=True)
    assert _types(bu_aic) == {"coco_ap": BottomUpCOCOAP, "aic": BottomUpAICScore}
    assert bu_aic["coco_ap"].use_area is False
    assert build_metrics(_fake(MPIIDataModule, 16), "val", MPII, bottomup=True) == {}  # no crop-based metric


def test_undeclared_and_bad_declarations():
    class Plain:  # a datamodule that declares nothing: PCK on GT boxes, as before
        boxes = {"val": "gt"}

    assert _types(build_metrics(Plain(), "val", COCO)) == {"pck": PCK}

    class Unknown(Plain):
        metric_specs = (MetricSpec("pkc"),)

    with pytest.raises(ConfigError, match=r"Unknown.metric_specs: unknown metric 'pkc' \(registered: aic, coco_ap"):
        build_metrics(Unknown(), "val", COCO)

    class Twice(Plain):
        metric_specs = (PCK_ON_GT_BOXES, PCK_ON_GT_BOXES)

    with pytest.raises(ConfigError, match="'pck' listed twice"):
        build_metrics(Twice(), "val", COCO)

    class NotASpec(Plain):
        metric_specs = ("pck",)

    with pytest.raises(ConfigError, match="'pck' is not a MetricSpec"):
        build_metrics(NotASpec(), "val", COCO)
    with pytest.raises(ValueError, match="gt must be one of"):
        MetricSpec("coco_ap", gt="annotations")
    assert coco_ap(use_area=False) == MetricSpec("coco_ap", {"use_area": False}, gt="coco")
    assert set(registered_metrics()) >= {"pck", "pckh", "coco_ap", "aic"}


def test_each_metric_exports_its_own_files(tmp_path):
    metrics = build_metrics(_fake(AICDataModule, 14), "test", AIC)
    assert export_file_names(metrics, "test") == ["test_coco_results.json", "test_coco_gt.json", "test_aic_preds.json"]
    pred = torch.tensor([[[10.0, 20.0]] * 14], dtype=torch.float64)
    batch = {
        "sample_id": torch.tensor([0]),
        "image_id": torch.tensor([1]),
        "ann_id": torch.tensor([1]),
        "bbox_score": torch.tensor([1.0]),
        "crop_area": torch.tensor([3200.0]),
        "bbox": torch.tensor([[0.0, 0.0, 40.0, 80.0]]),
        "gt_keypoints": torch.tensor([[[10.0, 20.0, 2.0]] * 14], dtype=torch.float64),
    }
    for m in metrics.values():
        m.update(pred, torch.ones(1, 14, dtype=torch.float64), batch)
    out = tmp_path / "export"
    check_export_dir(metrics, "test", out)
    written = export_metric_predictions(metrics, "test", out)
    assert [p.name for p in written] == export_file_names(metrics, "test")
    assert json.loads((out / "test_coco_gt.json").read_text()) == _coco_gt(14)
    results = json.loads((out / "test_coco_results.json").read_text())
    assert len(results) == 1 and results[0]["keypoints"][:3] == [10.0, 20.0, 1.0]
    aic = json.loads((out / "test_aic_preds.json").read_text())
    assert aic[0]["image_id"] == "abc" and list(aic[0]["keypoint_annotations"]) == ["human1"]
    assert metrics["pck"].export_file_names("test") == []  # PCK has nothing to export

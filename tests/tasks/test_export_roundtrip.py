"""Export round trip: ``trainer.validate`` with ``export_dir`` writes native files that ``lightning-pose evaluate``
scores to exactly the numbers the task logged.

Per dataset (the real samples of ../shared/data):

* MPII (GT centre/scale, head boxes from ``mpii_gt_val.mat``): ``val_mpii_preds.mat`` (1-based, rows in annotation
  order) vs ``mpii_gt_val.mat`` -> PCKh Mean / Mean@0.1 / AUC (percent);
* COCO with GT boxes: ``val_coco_results.json`` vs the exported ``val_coco_gt.json`` AND the original
  ``test_coco.json`` -> the 10 COCO AP/AR numbers;
* COCO with the detection file ``test_coco_det_AP_H_56.json`` as ``val_boxes`` (rescoring + OKS-NMS happen before
  the export, so the file holds exactly what was scored);
* AIC: ``val_aic_preds.json`` (release format) vs the COCO-style ``test_aic.json`` -> official score, and the COCO-style
  AP with AIC sigmas and area 0.53 w h.

Two kinds of model: an untrained tiny network (arbitrary predictions: the numbers must agree, whatever they are),
and an "oracle" whose ``decode`` returns the ground truth mapped into the input frame with the inverse of the
sample's ``crop_to_image`` (must give PCKh 100 / AP 1.0 / AIC score 1.0: catches 0/1-based and frame bugs).
The task keeps the exact float64 values in ``task.final_metrics`` (logged values are float32); those are compared
to 1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

torch.set_num_threads(1)

EXACT = 1e-9
COCO_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


# --------------------------------------------------------------------------------------------- datamodules
def _coco_dm(shared_data: Path, val_boxes: str = "gt") -> Any:
    from lightning_pose.data.datamodules import COCODataModule

    ann, images = str(shared_data / "coco" / "test_coco.json"), str(shared_data / "coco")
    return COCODataModule(
        root=str(shared_data / "coco"),
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=(64, 96),
        batch_size=4,
        num_workers=0,
        val_boxes=val_boxes,
    )


def _mpii_dm(shared_data: Path) -> Any:
    from lightning_pose.data.datamodules import MPIIDataModule

    ann, images = str(shared_data / "mpii" / "test_mpii.json"), str(shared_data / "mpii")
    return MPIIDataModule(
        root=str(shared_data / "mpii"),
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        val_headboxes=str(shared_data / "mpii" / "mpii_gt_val.mat"),
        input_size=(64, 64),
        batch_size=2,
        num_workers=0,
    )


def _aic_dm(shared_data: Path) -> Any:
    from lightning_pose.data.datamodules import AICDataModule

    ann, images = str(shared_data / "aic" / "test_aic.json"), str(shared_data / "aic")
    return AICDataModule(
        root=str(shared_data / "aic"),
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=(64, 96),
        batch_size=4,
        num_workers=0,
    )


# --------------------------------------------------------------------------------------------- models
class _BatchRecorder:
    """Lightning callback keeping the current validation batch (the oracle decode reads its ground truth)."""

    def __init__(self) -> None:
        self.batch: dict[str, torch.Tensor] | None = None

    def as_callback(self) -> Any:
        from lightning.pytorch.callbacks import Callback

        recorder = self

        class _Keep(Callback):
            def on_validation_batch_start(
                self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
            ) -> None:
                recorder.batch = batch

        return _Keep()


def _image_to_input(points: torch.Tensor, crop_to_image: torch.Tensor) -> torch.Tensor:
    """Image-frame points ``(B, K, 2)`` -> input frame, with the exact inverse of ``crop_to_image`` ``(B, 2, 3)``."""
    a = crop_to_image.to(torch.float64)
    full = torch.zeros(a.shape[0], 3, 3, dtype=torch.float64)
    full[:, :2] = a
    full[:, 2, 2] = 1.0
    inv = torch.linalg.inv(full)[:, :2]
    return torch.einsum("bij,bkj->bki", inv[:, :, :2], points.to(torch.float64)) + inv[:, None, :, 2]


def _task(dm: Any, oracle: bool) -> tuple[Any, list]:
    """A tiny SimpleBaseline for ``dm``; with ``oracle`` its decode returns the GT keypoints (input frame)."""
    import lightning as L

    from lightning_pose.tasks import SimpleBaselineTask

    L.seed_everything(0, verbose=False)
    task = SimpleBaselineTask(
        backbone="lcnet_050",
        deconv_channels=(16, 16, 16),
        keypoint_set=dm.keypoint_set,
        input_size=dm.input_size,
        flip_test=not oracle,
    )
    callbacks: list = []
    if oracle:
        recorder = _BatchRecorder()
        callbacks.append(recorder.as_callback())

        def decode(outputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            batch = recorder.batch
            assert batch is not None
            coords = _image_to_input(batch["gt_keypoints"][..., :2], batch["crop_to_image"])
            return coords, torch.ones(coords.shape[:2], dtype=torch.float64)

        task.decode = decode
    return task, callbacks


def _validate(task: Any, dm: Any, callbacks: list, export_dir: Path) -> dict[str, float]:
    import lightning as L

    task.export_dir = str(export_dir)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    logged = trainer.validate(task, datamodule=dm, verbose=False)[0]
    exact = dict(task.final_metrics["val"])
    for key, value in exact.items():  # the logged (float32) values are the exact ones rounded
        assert logged[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
    return exact


def _evaluate(tmp_path: Path, args: list[str]) -> dict[str, float]:
    from lightning_pose.evaluation.cli import main

    out = tmp_path / f"scores_{len(list(tmp_path.glob('scores_*.json')))}.json"
    code = main(args + ["--json", str(out)])
    assert code == 0, f"lightning-pose evaluate {' '.join(args)} exited with {code}"
    return json.loads(out.read_text())


# --------------------------------------------------------------------------------------------- MPII
@pytest.mark.parametrize("oracle", [False, True], ids=["untrained", "oracle"])
def test_mpii_export_reproduces_pckh(shared_data: Path, tmp_path: Path, oracle: bool) -> None:
    dm = _mpii_dm(shared_data)
    task, callbacks = _task(dm, oracle)
    logged = _validate(task, dm, callbacks, tmp_path / "export")
    pred = tmp_path / "export" / "val_mpii_preds.mat"
    assert pred.is_file()
    scores = _evaluate(tmp_path, ["mpii", "--gt", str(shared_data / "mpii" / "mpii_gt_val.mat"), "--pred", str(pred)])
    assert scores["Mean"] == pytest.approx(logged["val/PCKh@0.5"], abs=EXACT)
    assert scores["Mean@0.1"] == pytest.approx(logged["val/PCKh@0.1"], abs=EXACT)
    if oracle:
        # perfect predictions sit exactly ON the threshold-0 point of the AUC curve, where float round-off of the
        # 0-based (in memory) vs 1-based (file) comparison decides; that first trapezoid is worth at most 1 point
        assert scores["AUC"] == pytest.approx(logged["val/PCKh_AUC"], abs=1.0)
        assert min(scores["AUC"], logged["val/PCKh_AUC"]) >= 99.0
    else:
        assert scores["AUC"] == pytest.approx(logged["val/PCKh_AUC"], abs=EXACT)
    for part in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
        assert scores[part] == pytest.approx(logged[f"val/PCKh@0.5/{part}"], abs=EXACT)
    if oracle:
        assert logged["val/PCKh@0.5"] == pytest.approx(100.0, abs=EXACT)
        assert logged["val/PCKh@0.1"] == pytest.approx(100.0, abs=EXACT)
        assert logged["val/PCK@0.05"] == pytest.approx(1.0, abs=EXACT)
    else:
        assert logged["val/PCKh@0.5"] < 50.0  # an untrained net is far from the GT


def test_mpii_export_detects_zero_based_shift(shared_data: Path, tmp_path: Path) -> None:
    """Negative control: the oracle's export read as 0-based (i.e. +1 px) no longer scores a perfect PCKh@0.1."""
    dm = _mpii_dm(shared_data)
    task, callbacks = _task(dm, oracle=True)
    _validate(task, dm, callbacks, tmp_path / "export")
    pred = tmp_path / "export" / "val_mpii_preds.mat"
    gt = str(shared_data / "mpii" / "mpii_gt_val.mat")
    exact = _evaluate(tmp_path, ["mpii", "--gt", gt, "--pred", str(pred)])
    shifted = _evaluate(tmp_path, ["mpii", "--gt", gt, "--pred", str(pred), "--zero-based-preds"])
    assert exact["Mean@0.1"] == pytest.approx(100.0) and exact["AUC"] > shifted["AUC"]


# --------------------------------------------------------------------------------------------- COCO
def _check_coco(scores: dict[str, float], logged: dict[str, float]) -> None:
    for key in COCO_KEYS:
        assert scores[key] == pytest.approx(logged[f"val/{key}"], abs=EXACT), key


@pytest.mark.parametrize("oracle", [False, True], ids=["untrained", "oracle"])
def test_coco_gt_boxes_export_reproduces_ap(shared_data: Path, tmp_path: Path, oracle: bool) -> None:
    dm = _coco_dm(shared_data)
    task, callbacks = _task(dm, oracle)
    logged = _validate(task, dm, callbacks, tmp_path / "export")
    results = tmp_path / "export" / "val_coco_results.json"
    exported_gt = tmp_path / "export" / "val_coco_gt.json"
    assert results.is_file() and exported_gt.is_file()
    _check_coco(_evaluate(tmp_path, ["coco", "--gt", str(exported_gt), "--pred", str(results)]), logged)
    original = shared_data / "coco" / "test_coco.json"
    _check_coco(_evaluate(tmp_path, ["coco", "--gt", str(original), "--pred", str(results)]), logged)
    if oracle:
        assert logged["val/AP"] == pytest.approx(1.0, abs=EXACT)
        assert logged["val/AR"] == pytest.approx(1.0, abs=EXACT)
        assert logged["val/PCK@0.05"] == pytest.approx(1.0, abs=EXACT)
    else:
        assert logged["val/AP"] < 0.5


def test_coco_detection_boxes_export_reproduces_ap(shared_data: Path, tmp_path: Path) -> None:
    detections = shared_data / "coco" / "test_coco_det_AP_H_56.json"
    dm = _coco_dm(shared_data, val_boxes=str(detections))
    task, callbacks = _task(dm, oracle=False)
    logged = _validate(task, dm, callbacks, tmp_path / "export")
    assert "val/PCK@0.05" not in logged  # PCK needs GT boxes
    results = tmp_path / "export" / "val_coco_results.json"
    written = json.loads(results.read_text())
    assert written, "the detections produced no exported result"
    n_dets = len(json.loads(detections.read_text()))
    assert len(written) <= n_dets  # OKS-NMS may only remove instances
    _check_coco(
        _evaluate(tmp_path, ["coco", "--gt", str(shared_data / "coco" / "test_coco.json"), "--pred", str(results)]),
        logged,
    )


# --------------------------------------------------------------------------------------------- AIC
@pytest.mark.parametrize("oracle", [False, True], ids=["untrained", "oracle"])
def test_aic_export_reproduces_score(shared_data: Path, tmp_path: Path, oracle: bool) -> None:
    dm = _aic_dm(shared_data)
    task, callbacks = _task(dm, oracle)
    logged = _validate(task, dm, callbacks, tmp_path / "export")
    preds = tmp_path / "export" / "val_aic_preds.json"
    assert preds.is_file()
    gt = str(shared_data / "aic" / "test_aic.json")
    official = _evaluate(tmp_path, ["aic", "--gt", gt, "--pred", str(preds)])
    assert official["score"] == pytest.approx(logged["val/AIC_score"], abs=EXACT)
    results = tmp_path / "export" / "val_coco_results.json"
    coco_style = _evaluate(tmp_path, ["aic", "--gt", gt, "--pred", str(results), "--protocol", "coco"])
    _check_coco(coco_style, logged)
    if oracle:
        assert logged["val/AIC_score"] == pytest.approx(1.0, abs=EXACT)
        assert logged["val/AP"] == pytest.approx(1.0, abs=EXACT)
    else:
        assert logged["val/AIC_score"] < 0.5

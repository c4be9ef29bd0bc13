"""Proof that the regression and hybrid methods learn: each overfits the real samples of ../shared/data.

Same code path as real training: ``lightning.Trainer.fit`` with the dataset's datamodule reading the shared files
(train split = val split, augmentation disabled), the task's own ``training_step`` / ``validation_step`` and metrics.
The assertion is on the logged ``val/PCK@0.05`` (bbox-normalised: a joint counts when it lies within 0.05 x the longer
side of the person box, in original-image pixels). An untrained model is validated first, so the test also shows the
metric moving from chance to (almost) perfect.

Small and fast: ResNet-18 at 96x128 (COCO) / 128x128 (MPII), flip test off (a flip was never seen in training), one
thread. Each test takes well under 90 s of CPU on an unloaded 2-core machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from shared_samples import coco_datamodule, mpii_datamodule

pytestmark = pytest.mark.slow


def _coco_datamodule(shared_data: Path) -> Any:
    return coco_datamodule(shared_data, (96, 128))


def _mpii_datamodule(shared_data: Path) -> Any:
    return mpii_datamodule(shared_data, (128, 128))


def _overfit(datamodule: Any, make_task: Callable[..., Any], epochs: int, lr: float) -> tuple[dict, dict, Any]:
    """Validate an untrained task, fit it for ``epochs`` (one batch each), return (before, after, task)."""
    import lightning as L

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)

    def optimizer(params: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    task = make_task(
        keypoint_set=datamodule.keypoint_set, input_size=datamodule.input_size, optimizer=optimizer, flip_test=False
    )
    common = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    before_trainer = L.Trainer(**common)
    before = {k: float(v) for k, v in before_trainer.validate(task, datamodule=datamodule, verbose=False)[0].items()}
    trainer = L.Trainer(max_epochs=epochs, check_val_every_n_epoch=epochs, **common)
    trainer.fit(task, datamodule=datamodule)
    assert trainer.global_step == epochs, "one optimizer step per epoch: the whole split is one batch"
    after = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return before, after, task


def test_deeppose_overfits_coco_samples(shared_data: Path) -> None:
    from lightning_pose.tasks.regression import DeepPoseTask

    dm = _coco_datamodule(shared_data)
    before, after, task = _overfit(
        dm, lambda **kw: DeepPoseTask(backbone="resnet18", loss="smooth_l1", **kw), epochs=60, lr=1e-3
    )
    assert before["val/PCK@0.05"] < 0.3
    assert after["val/PCK@0.05"] >= 0.95, after
    assert after["val/PCK@0.2"] >= 0.99
    # the logged value is the exact one the task kept (float32 logging of a float64 metric)
    assert after["val/PCK@0.05"] == pytest.approx(task.final_metrics["val"]["val/PCK@0.05"], abs=1e-6)
    assert after["val/AP"] > before["val/AP"]


def test_deeppose_rle_learns_coco_samples(shared_data: Path) -> None:
    """RLE: a looser bar. On a handful of images the predicted sigmas collapse towards 0 (the RLE objective is
    unbounded below for a perfect fit) and the training becomes unstable after ~80 steps (measured PCK@0.05 peak 0.87,
    then 0.6-0.65 at 100-120 steps), so the check is taken early and asks for PCK@0.2 ~ 1 and PCK@0.05 >= 0.6."""
    from lightning_pose.tasks.regression import DeepPoseTask

    dm = _coco_datamodule(shared_data)
    before, after, task = _overfit(
        dm, lambda **kw: DeepPoseTask(backbone="resnet18", loss="rle", **kw), epochs=60, lr=1e-3
    )
    assert before["val/PCK@0.05"] < 0.3
    assert after["val/PCK@0.2"] >= 0.99, after
    assert after["val/PCK@0.05"] >= 0.6, after
    assert after["val/AP"] > before["val/AP"] + 0.3
    # RLE confidences: sigmas shrank from their initial 0.5, so the scores 1 - mean(sigma) rose towards 1
    images = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)["image"]
    task.eval()
    _, scores = task.predict_keypoints(images, flip_test=False)
    assert float(scores.mean()) > 0.9


def test_integral_overfits_coco_samples(shared_data: Path) -> None:
    from lightning_pose.tasks.regression import IntegralRegressionTask

    dm = _coco_datamodule(shared_data)
    before, after, _ = _overfit(
        dm,
        lambda **kw: IntegralRegressionTask(
            backbone="resnet18", deconv_channels=(64, 64, 64), beta=5.0, loss="l1", **kw
        ),
        epochs=175,
        lr=1e-3,
    )
    assert before["val/PCK@0.05"] < 0.3
    assert after["val/PCK@0.05"] >= 0.95, after


def test_hybrid_overfits_mpii_samples(shared_data: Path) -> None:
    from lightning_pose.tasks.hybrid import HybridTask

    dm = _mpii_datamodule(shared_data)
    before, after, _ = _overfit(
        dm,
        lambda **kw: HybridTask(
            backbone="resnet18",
            deconv_channels=(64, 64, 64),
            refine_channels=32,
            dilations=(1, 2),
            decode_mode="fuse",
            **kw,
        ),
        epochs=140,
        lr=1e-3,
    )
    assert before["val/PCK@0.05"] < 0.3
    assert after["val/PCK@0.05"] >= 0.95, after
    assert after["val/PCKh@0.5"] > before["val/PCKh@0.5"]

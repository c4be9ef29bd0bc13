"""Proof that the heatmap methods learn: SimpleBaseline, Stacked Hourglass and CPM each overfit the real samples of
../shared/data (COCO: 4 images / 14 persons; MPII: 5 persons with head boxes).

Same code path as real training: ``lightning.Trainer.fit`` of the task with the dataset's datamodule reading the
shared files (train split = val split, augmentation disabled), the task's own ``training_step`` / ``validation_step``
and metrics, then ``trainer.validate``. The assertion is on the logged ``val/PCK@0.05`` (bbox-normalised: a joint
counts when it lies within 0.05 x the longer side of the person box, original-image pixels). The untrained model is
validated first, so the test also shows the metric moving from chance to (almost) perfect.

CPU-sized: narrow networks, 96x128 (COCO) / 96x96 (MPII) inputs (width x height), the whole split in one batch, so
one optimizer step per epoch and the LR milestone is a step count; flip test off (no flipped sample was seen).
Each test takes about 30-70 s on an unloaded 2-core machine.
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
    return mpii_datamodule(shared_data, (96, 96))


def _overfit(datamodule: Any, make_task: Callable[..., Any], steps: int, lr: float) -> tuple[dict, dict, Any]:
    """Validate an untrained task, fit it for ``steps`` one-batch epochs (lr x0.1 after 75 %), validate again."""
    import lightning as L

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)

    def optimizer(params: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    def scheduler(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(0.75 * steps)], gamma=0.1)

    task = make_task(
        keypoint_set=datamodule.keypoint_set,
        input_size=datamodule.input_size,
        optimizer=optimizer,
        scheduler=scheduler,
        flip_test=False,
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
    before = dict(L.Trainer(**common).validate(task, datamodule=datamodule, verbose=False)[0])
    trainer = L.Trainer(max_epochs=steps, check_val_every_n_epoch=10 * steps, **common)
    trainer.fit(task, datamodule=datamodule)
    assert trainer.global_step == steps, "one optimizer step per epoch: the whole split is one batch"
    after = dict(trainer.validate(task, datamodule=datamodule, verbose=False)[0])
    # the logged (float32) value is the exact one the task kept
    assert after["val/PCK@0.05"] == pytest.approx(task.final_metrics["val"]["val/PCK@0.05"], abs=1e-6)
    return before, after, task


def _simple_baseline(**kw: Any) -> Any:
    from lightning_pose.tasks import SimpleBaselineTask

    return SimpleBaselineTask(backbone="lcnet_050", pretrained=False, deconv_channels=(32, 32, 32), **kw)


def _hourglass(**kw: Any) -> Any:
    from lightning_pose.tasks import StackedHourglassTask

    # sub-pixel (unbiased) targets + DARK: a one-stack, 32-channel hourglass reaches the 0.05 threshold in 300 steps
    return StackedHourglassTask(
        num_stacks=1, channels=32, depth=3, stem_channels=16, unbiased=True, decode="dark", **kw
    )


def _cpm(**kw: Any) -> Any:
    from lightning_pose.tasks import CPMTask

    # stride 8: sub-pixel (unbiased) targets + DARK decoding keep the quantisation well under the 0.05 threshold
    return CPMTask(num_stages=2, channels=16, unbiased=True, decode="dark", **kw)


COCO_CASES = {
    "simple_baseline": (_simple_baseline, 150, 2e-3),
    "hourglass": (_hourglass, 300, 5e-3),
    "cpm": (_cpm, 250, 5e-3),
}


@pytest.mark.parametrize("method", list(COCO_CASES))
def test_heatmap_method_overfits_coco_samples(shared_data: Path, method: str) -> None:
    make, steps, lr = COCO_CASES[method]
    before, after, _ = _overfit(_coco_datamodule(shared_data), make, steps=steps, lr=lr)
    assert before["val/PCK@0.05"] < 0.3, before
    assert after["val/PCK@0.05"] >= 0.95, after
    assert after["val/PCK@0.2"] >= 0.99, after
    assert after["val/AP"] > before["val/AP"] + 0.3


def test_simple_baseline_overfits_mpii_samples(shared_data: Path) -> None:
    # MPII person boxes are large (scale x 200 x 1.25): at 96x96 the stride-4 rounding of the default targets alone is
    # ~0.03 of the box, so sub-pixel targets + DARK are used to reach 0.05 (and PCKh@0.1) on 5 persons
    def make(**kw: Any) -> Any:
        return _simple_baseline(unbiased=True, decode="dark", **kw)

    before, after, _ = _overfit(_mpii_datamodule(shared_data), make, steps=300, lr=2e-3)
    assert before["val/PCK@0.05"] < 0.3, before
    assert after["val/PCK@0.05"] >= 0.95, after
    assert after["val/PCKh@0.5"] >= 95.0, after  # percent, official MPII semantics
    assert after["val/PCKh@0.1"] >= 80.0, after
    assert before["val/PCKh@0.5"] < 50.0

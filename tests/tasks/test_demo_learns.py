"""A small model trained for a bounded number of steps on demo people beats the constant predictor by a wide margin.

Two tests share the training and scoring helpers below.

Fitting test (the split it is scored on is the split it trained on, 6 demo images / ~12 persons, augmentation off,
whole split in one batch): it proves that the demo labels are learnable end to end through the real datamodule,
codec, task and metrics, i.e. that image evidence, not just the average pose, determines every joint, left and right
included. The constant predictor (mean pose of the same persons in box-normalised coordinates, placed in their
boxes) is computed here on the same split; nothing is hard-coded. Generalisation to the held-out val split needs far
more steps than a test can afford on CPU (see docs/demo_learning.md). One thread; 43 s of CPU time (2 min wall on
the loaded development machine).

Held-out test: trains on a generated train split and scores on the generator's separate val split (other images,
other people, other backgrounds), with the shipped augmentation on. The network is the quickstart's (SimpleBaseline
over a ResNet-18 cut at its stride-16 ``layer3``, 2 deconvolutions) at a smaller input; the constant predictor is
computed on that val split. One thread, 440 steps (~2.4 min on the 2-core Xeon VM). At 240 steps (until session 6)
the margin was 1.3-1.4x on PCK@0.05 and moved with the augmentation's random draws; at 440 steps it scored
PCK@0.05 0.304 against the baseline's 0.142 (2.1x) and AP 0.050 against 0.0005, so the bounds below (1.6x, 10x)
leave room for other machines' float rounding.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from lightning_pose.data.datamodules import DemoDataModule
from lightning_pose.evaluation.baseline import constant_baseline_metrics
from lightning_pose.tasks import HeatmapTask, SimpleBaselineTask

STEPS = 100
HELD_OUT_STEPS = 440

#: Trainer options of both tests (no logger, checkpoint, progress bar or sanity validation)
TRAINER_KW = dict(
    accelerator="cpu",
    devices=1,
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
)


def _adam_with_drop(steps: int):
    """Adam 2e-3 with the LR divided by 10 after 75 % of ``steps`` (factories for the task)."""

    def optimizer(params):
        return torch.optim.Adam(params, lr=2e-3)

    def scheduler(opt):
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(0.75 * steps)], gamma=0.1)

    return optimizer, scheduler


def _fit_and_score(model, dm, steps: int, train_split: str, **fit_kw) -> tuple[dict, dict]:
    """Train ``steps`` optimizer steps, validate, and return (the model's val metrics, the constant predictor's)."""
    trainer = L.Trainer(limit_val_batches=0, **fit_kw, **TRAINER_KW)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == steps
    L.Trainer(**TRAINER_KW).validate(model, datamodule=dm, verbose=False)
    base = constant_baseline_metrics(dm.ground_truth(train_split), dm.ground_truth("val"), dm.keypoint_set.sigmas)
    return model.final_metrics["val"], base


class _TrainSplitScored(DemoDataModule):
    """The demo datamodule whose val split is its train split (fitting test)."""

    def default_paths(self, split: str) -> tuple[Path, Path]:
        return super().default_paths("train")


@pytest.mark.slow
def test_bounded_training_beats_the_constant_predictor(tmp_path) -> None:
    L.seed_everything(0, verbose=False)
    torch.set_num_threads(1)
    dm = _TrainSplitScored(
        cache_root=str(tmp_path / "cache"),
        num_train=6,
        num_val=1,
        input_size=(64, 96),
        batch_size=64,
        num_workers=0,
        augmentation={"enabled": False},
    )
    dm.prepare_data()
    optimizer, scheduler = _adam_with_drop(STEPS)
    model = SimpleBaselineTask(
        keypoint_set=dm.keypoint_set,
        input_size=dm.input_size,
        backbone="resnet18",
        deconv_channels=(64, 64, 64),
        sigma=2.0,
        decode="dark",
        unbiased=True,
        flip_test=False,
        optimizer=optimizer,
        scheduler=scheduler,
    )
    # the whole split is one batch: one step per epoch
    got, base = _fit_and_score(model, dm, STEPS, "train", max_epochs=STEPS)
    print(
        f"model PCK@0.05 {got['val/PCK@0.05']:.3f} AP {got['val/AP']:.3f}; "
        f"baseline PCK@0.05 {base['PCK@0.05']:.3f} AP {base['AP']:.4f}"
    )
    assert got["val/PCK@0.05"] >= 3.0 * base["PCK@0.05"], (got, base)
    assert got["val/AP"] >= 3.0 * base["AP"] and got["val/AP"] > 0.3, (got, base)


@pytest.mark.slow
def test_bounded_training_beats_the_constant_predictor_on_held_out_images(tmp_path) -> None:
    L.seed_everything(0, verbose=False)
    torch.set_num_threads(1)
    dm = DemoDataModule(
        cache_root=str(tmp_path / "cache"),
        num_train=400,
        num_val=40,
        input_size=(64, 96),
        batch_size=32,
        num_workers=0,
    )
    dm.prepare_data()
    network = {
        "class_path": "lightning_pose.models.SimpleBaseline",
        "init_args": {"backbone": "resnet18", "feature_index": 3, "deconv_channels": [64, 64]},
    }
    optimizer, scheduler = _adam_with_drop(HELD_OUT_STEPS)
    model = HeatmapTask(
        network=network,
        keypoint_set=dm.keypoint_set,
        input_size=dm.input_size,
        sigma=2.0,
        decode="dark",
        unbiased=True,
        flip_test=True,
        channels_last=True,
        optimizer=optimizer,
        scheduler=scheduler,
    )
    got, base = _fit_and_score(model, dm, HELD_OUT_STEPS, "train", max_steps=HELD_OUT_STEPS, max_epochs=-1)
    print(
        f"held-out: model PCK@0.05 {got['val/PCK@0.05']:.3f} AP {got['val/AP']:.4f}; "
        f"baseline PCK@0.05 {base['PCK@0.05']:.3f} AP {base['AP']:.4f}"
    )
    assert got["val/PCK@0.05"] >= 1.6 * base["PCK@0.05"], (got, base)
    assert got["val/AP"] >= 10.0 * base["AP"], (got, base)

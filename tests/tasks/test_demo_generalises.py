"""Held-out check: a small model trained for a bounded number of steps on demo people beats the constant predictor
on demo images it has never seen.

Unlike ``test_demo_learns.py`` (a fitting test scored on its own training images), this one trains on a generated
train split and scores on the generator's separate val split (other images, other people, other backgrounds), with
the shipped augmentation on. The network is the quickstart's (SimpleBaseline over a ResNet-18 cut at its stride-16
``layer3``, 2 deconvolutions) at a smaller input; the constant predictor (the mean training pose in box-normalised
coordinates, placed in each val box) is computed here on the same val split, nothing is hard-coded. One thread.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_pose.data.datamodules import DemoDataModule
from lightning_pose.evaluation.baseline import constant_baseline_metrics
from lightning_pose.tasks import HeatmapTask

STEPS = 240
BATCH = 32


@pytest.mark.slow
def test_bounded_training_beats_the_constant_predictor_on_held_out_images(tmp_path) -> None:
    L.seed_everything(0, verbose=False)
    torch.set_num_threads(1)
    dm = DemoDataModule(
        cache_root=str(tmp_path / "cache"),
        num_train=400,
        num_val=40,
        input_size=(64, 96),
        batch_size=BATCH,
        num_workers=0,
    )
    dm.prepare_data()
    network = {
        "class_path": "lightning_pose.models.SimpleBaseline",
        "init_args": {"backbone": "resnet18", "feature_index": 3, "deconv_channels": [64, 64]},
    }

    def optimizer(params):
        return torch.optim.Adam(params, lr=2e-3)

    def scheduler(opt):
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(0.75 * STEPS)], gamma=0.1)

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
    kw = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer = L.Trainer(max_steps=STEPS, max_epochs=-1, limit_val_batches=0, **kw)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == STEPS
    L.Trainer(**kw).validate(model, datamodule=dm, verbose=False)
    got = model.final_metrics["val"]
    base = constant_baseline_metrics(dm.ground_truth("train"), dm.ground_truth("val"), dm.keypoint_set.sigmas)
    print(
        f"held-out: model PCK@0.05 {got['val/PCK@0.05']:.3f} AP {got['val/AP']:.4f}; "
        f"baseline PCK@0.05 {base['PCK@0.05']:.3f} AP {base['AP']:.4f}"
    )
    assert got["val/PCK@0.05"] >= 1.3 * base["PCK@0.05"], (got, base)
    assert got["val/AP"] >= 3.0 * base["AP"], (got, base)

"""DropLRBeforeTimeCap: a milestone LR drop is brought forward once the time cap is mostly used, exactly once."""

from __future__ import annotations

import time

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_pose.callbacks.time_cap_lr import DropLRBeforeTimeCap

LR = 0.5


class _Tiny(L.LightningModule):
    def __init__(self, milestones: list[int], sleep: float) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.milestones = milestones
        self.sleep = sleep
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        time.sleep(self.sleep)
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=LR)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.MultiStepLR(opt, self.milestones, 0.1)}


def _fit(model: _Tiny, callback: DropLRBeforeTimeCap, **trainer_kwargs) -> L.Trainer:
    data = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        **trainer_kwargs,
    )
    trainer.fit(model, data)
    return trainer


def test_drop_is_brought_forward_when_the_cap_would_come_first():
    cb = DropLRBeforeTimeCap(fraction=0.5)
    model = _Tiny(milestones=[1000], sleep=0.1)
    trainer = _fit(model, cb, max_epochs=1000, max_time={"seconds": 2})
    step = cb.applied_at_step
    assert step is not None and 5 <= step < trainer.global_step, (step, trainer.global_step)
    # the LR seen by every step: LR before the drop, LR / 10 from the step it was applied on, never lower
    assert model.lrs[:step] == [LR] * step
    assert model.lrs[step:] == pytest.approx([LR * 0.1] * (len(model.lrs) - step))
    assert not trainer.lr_scheduler_configs[0].scheduler.milestones  # the milestone is used up


def test_nothing_changes_when_the_milestone_comes_first_or_there_is_no_cap():
    cb = DropLRBeforeTimeCap(fraction=0.8)
    model = _Tiny(milestones=[1], sleep=0.0)
    _fit(model, cb, max_epochs=3, max_time={"minutes": 10})
    # 4 steps per epoch: epoch 0 at LR, epochs 1-2 at LR / 10 (the scheduler's own drop, applied once)
    assert model.lrs == pytest.approx([LR] * 4 + [LR * 0.1] * 8)
    assert cb.applied_at_step is None

    cb = DropLRBeforeTimeCap(fraction=0.01)
    model = _Tiny(milestones=[1000], sleep=0.0)
    _fit(model, cb, max_epochs=2)
    assert model.lrs == [LR] * 8 and cb.applied_at_step is None


def test_fraction_must_be_inside_zero_one():
    with pytest.raises(ValueError, match="fraction"):
        DropLRBeforeTimeCap(fraction=1.0)

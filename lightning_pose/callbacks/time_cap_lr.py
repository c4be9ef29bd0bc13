"""Bring a step-schedule's learning-rate drop forward when the wall-clock cap would cut training before it.

The demo configs train a fixed number of epochs with the LR divided by 10 for the last few (``MultiStepLR``), under a
wall-clock cap (``trainer.max_time``) so that a slow machine still finishes in time. On a machine slow enough for the
cap to stop training before the milestone epoch, the run would end at the high LR and never get the low-LR epochs
that sharpen the localisation. :class:`DropLRBeforeTimeCap` applies the next pending milestone's drop as soon as
``fraction`` of the cap has elapsed (once), so that every run, fast or slow, spends its last part at the low LR. On a
machine fast enough to reach the milestone first, it does nothing.

The decision is rank 0's (broadcast), so that all DDP ranks drop at the same step.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_info
from torch.optim.lr_scheduler import MultiStepLR

__all__ = ["DropLRBeforeTimeCap"]


class DropLRBeforeTimeCap(Callback):
    """Apply the next ``MultiStepLR`` milestone early once ``fraction`` of ``trainer.max_time`` has elapsed.

    Args:
        fraction: share of the training wall-clock cap (0 < fraction < 1) after which a still-pending milestone drop
            is applied (the LR of every parameter group multiplied by the scheduler's ``gamma``, the milestone removed
            so that it is not applied a second time at its epoch). Without ``max_time`` the callback does nothing.
    """

    def __init__(self, fraction: float = 0.8) -> None:
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        self.fraction = float(fraction)
        self.applied_at_step: int | None = None

    @staticmethod
    def _timer(trainer: Trainer) -> Timer | None:
        for cb in getattr(trainer, "callbacks", []):
            if isinstance(cb, Timer) and cb._duration is not None:
                return cb
        return None

    def _pending(self, trainer: Trainer) -> list[MultiStepLR]:
        return [
            c.scheduler
            for c in trainer.lr_scheduler_configs
            if isinstance(c.scheduler, MultiStepLR)
            and c.scheduler.milestones
            and c.scheduler.last_epoch < min(c.scheduler.milestones)
        ]

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self.applied_at_step is not None:
            return
        timer = self._timer(trainer)
        duration = None if timer is None else timer._duration
        if timer is None or duration is None:
            return
        due = (timer.time_elapsed("train") or 0.0) >= self.fraction * float(duration)
        due = bool(trainer.strategy.broadcast(due))
        if not due:
            return
        schedulers = self._pending(trainer)
        self.applied_at_step = int(trainer.global_step)
        for sched in schedulers:
            first = min(sched.milestones)
            factor = sched.gamma ** sched.milestones[first]
            del sched.milestones[first]
            for group in sched.optimizer.param_groups:
                group["lr"] *= factor
            rank_zero_info(
                f"learning rate x{factor:g} at step {trainer.global_step} (epoch {trainer.current_epoch}): "
                f"{self.fraction:.0%} of the {float(duration) / 60:.1f}-min time cap has passed before the "
                f"milestone epoch {first}"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"applied_at_step": self.applied_at_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied_at_step = state_dict.get("applied_at_step")

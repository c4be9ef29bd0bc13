"""Always validate the last training epoch, and warn when a monitored metric is never computed.

With ``check_val_every_n_epoch: 2`` a run shortened to an odd number of epochs (``--trainer.max_epochs 1``) would
end without any validation: no metric, no "best" checkpoint. :class:`ValidateLastEpoch` makes the final epoch
(``max_epochs - 1``, 0-based) validate whatever the interval, and at the end of ``fit`` warns for every
``ModelCheckpoint`` / ``EarlyStopping`` whose ``monitor`` key never appeared in the logged metrics.
"""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["ValidateLastEpoch"]


class ValidateLastEpoch(Callback):
    """Validate after the final epoch even when ``check_val_every_n_epoch`` would skip it."""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        every = trainer.check_val_every_n_epoch
        last = (
            trainer.max_epochs is not None
            and trainer.max_epochs > 0
            and trainer.current_epoch == trainer.max_epochs - 1
        )
        if last and every is not None and every > 1 and (trainer.current_epoch + 1) % every != 0:
            # the epoch loop reads this attribute at the end of every epoch
            trainer.check_val_every_n_epoch = 1

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        computed = set(trainer.callback_metrics)
        for cb in trainer.callbacks:
            if isinstance(cb, (ModelCheckpoint, EarlyStopping)):
                key = cb.monitor
                if key and key not in computed:
                    rank_zero_warn(
                        f"{type(cb).__name__} monitors {key!r} but this run never computed it (no "
                        f"validation ran, or the metric is not logged for this dataset); no best "
                        f"checkpoint was selected by it"
                    )

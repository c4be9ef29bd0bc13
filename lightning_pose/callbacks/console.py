"""A one-line console summary of the headline validation metrics after every validation epoch.

Useful on CPU runs (quickstart) where the progress bar is the only feedback: it prints e.g.
``epoch 3 (142 s): val/PCK@0.2=0.8123 val/AP=0.6012 val/loss=0.00123``.
"""

from __future__ import annotations

import time

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["EpochSummary"]

_HEADLINE = ("val/PCK@0.2", "val/PCK@0.05", "val/PCKh@0.5", "val/PCKh@0.1", "val/AP", "val/AIC_score", "val/swap_rate",
             "val/loss")


class EpochSummary(Callback):
    """Print the headline validation metrics (those present) once per validation epoch, on rank 0."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.monotonic()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # after the module's on_validation_epoch_end, which computes the metrics (callbacks' epoch-end hooks run first)
        if trainer.sanity_checking:
            return
        exact = getattr(pl_module, "final_metrics", {}).get("val", {})
        shown = []
        for key in _HEADLINE:
            value = exact.get(key, trainer.callback_metrics.get(key))
            if value is not None:
                shown.append(f"{key}={float(value):.4f}")
        if shown:
            elapsed = time.monotonic() - self._start
            rank_zero_info(f"epoch {trainer.current_epoch} ({elapsed:.0f} s): " + " ".join(shown))

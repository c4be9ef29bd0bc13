"""Console output of a run: one line per validation epoch, a compact result table, a final summary; no recurring noise.

* Every validation epoch prints the headline metrics on a line of its own (through ``tqdm.write``, so it does not
  land in the middle of the progress bar), e.g. ``epoch 3 (142 s): val/PCK@0.2=0.8123 val/AP=0.6012 val/loss=0.0012``.
* ``validate``/``test`` print a compact table of the headline metrics instead of Lightning's table of every key
  (per-joint values included); all values are in ``--results`` and W&B.
* The end of ``fit`` prints the best headline metric and its epoch, the best/last checkpoint, the run folder and, for
  an offline W&B run, the ``wandb sync`` command.
* :func:`quiet_console` drops the tips Lightning prints on every run (LitLogger, LitModelCheckpoint) and deprecation
  warnings raised inside Lightning itself (not by our calls) on current torch.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["EpochSummary", "quiet_console", "console_line"]

_HEADLINE = (
    "val/PCK@0.2",
    "val/PCK@0.05",
    "val/PCKh@0.5",
    "val/PCKh@0.1",
    "val/AP",
    "val/AIC_score",
    "val/swap_rate",
    "val/loss",
)
_TABLE_EXTRA = ("AP50", "AP75", "AR")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡 Tip:")


_FILTER = _DropTips()


def quiet_console() -> None:
    """Silence Lightning's per-run tips and library-internal deprecation noise (idempotent)."""
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning_utilities.core.rank_zero",
    ):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    # raised by lightning/pytorch/utilities/_pytree.py on torch >= 2.10, not by anything a user can change
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    # raised when importing W&B's sweeps engine 0.2 (pydantic v1 config names)
    warnings.filterwarnings("ignore", message=r"Valid config keys have changed in V2", category=UserWarning)


def console_line(text: str) -> None:
    """Print ``text`` on a line of its own, above any tqdm progress bar (rank 0 only)."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:
        return
    try:
        from tqdm import tqdm

        tqdm.write(text)
    except ImportError:  # pragma: no cover - tqdm comes with lightning
        print(text, flush=True)


def _value(pl_module: LightningModule, trainer: Trainer, split: str, key: str) -> float | None:
    exact = getattr(pl_module, "final_metrics", {}).get(split, {})
    value = exact.get(key, trainer.callback_metrics.get(key))
    return None if value is None else float(value)


class EpochSummary(Callback):
    """Epoch lines, the validate/test table and the end-of-fit summary (rank 0)."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._best: tuple[str, float, int] | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.monotonic()
        self._best = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # after the module's on_validation_epoch_end, which computes the metrics (callbacks' epoch-end hooks run first)
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "validate":
            self._table(trainer, pl_module, "val")
            return
        shown = []
        for key in _HEADLINE:
            value = _value(pl_module, trainer, "val", key)
            if value is not None:
                shown.append(f"{key}={value:.4f}")
        if shown:
            elapsed = time.monotonic() - self._start
            console_line(f"epoch {trainer.current_epoch} ({elapsed:.0f} s): " + " ".join(shown))
        self._track_best(trainer, pl_module)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._table(trainer, pl_module, "test")

    def _track_best(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from lightning_pose.callbacks.wandb_callbacks import HEADLINE_METRICS, primary_metric

        values = getattr(pl_module, "final_metrics", {}).get("val", {})
        dm = getattr(trainer, "datamodule", None)
        key = primary_metric(getattr(dm, "dataset_name", None), values)
        if key not in values:
            return
        v = float(values[key])
        better = HEADLINE_METRICS.get(key, "max") == "max"
        if self._best is None or self._best[0] != key or (v > self._best[1] if better else v < self._best[1]):
            self._best = (key, v, int(trainer.current_epoch))

    def _table(self, trainer: Trainer, pl_module: LightningModule, split: str) -> None:
        keys = [k.replace("val/", f"{split}/", 1) for k in _HEADLINE]
        keys += [f"{split}/{k}" for k in _TABLE_EXTRA]
        rows = [(k, v) for k in keys if (v := _value(pl_module, trainer, split, k)) is not None]
        if not rows:
            return
        width = max(len(k) for k, _ in rows)
        lines = [f"{split} results:"]
        lines += [f"  {k:<{width}}  {v:.4f}" for k, v in rows]
        console_line("\n".join(lines))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        lines = [f"fit finished: {trainer.current_epoch} epoch(s) in {time.monotonic() - self._start:.0f} s"]
        if self._best is not None:
            key, value, epoch = self._best
            lines.append(f"  best {key} = {value:.4f} at epoch {epoch}")
        ckpt = trainer.checkpoint_callback
        best_path = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
        last_path = getattr(ckpt, "last_model_path", "") if ckpt is not None else ""
        if best_path:
            lines.append(f"  best checkpoint: {best_path}")
        if last_path and last_path != best_path:
            lines.append(f"  last checkpoint: {last_path}")
        lines += _run_lines(trainer)
        console_line("\n".join(lines))


def _run_lines(trainer: Trainer) -> list[str]:
    from lightning.pytorch.loggers import WandbLogger

    from lightning_pose.callbacks.wandb_callbacks import run_directory

    out = [f"  run folder: {run_directory(trainer)}"]
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            run: Any = logger._experiment
            run_dir = getattr(run, "dir", None)
            offline = (
                getattr(getattr(run, "settings", None), "_offline", False)
                or getattr(logger, "resolved_mode", "") == "offline"
            )
            if run_dir and offline:
                out.append(f"  W&B (offline): upload with `wandb sync {Path(run_dir).parent}`")
            elif getattr(run, "url", None):
                out.append(f"  W&B: {run.url}")
    return out

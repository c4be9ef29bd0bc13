"""Left/right swap rate of the validation predictions, logged as ``val/swap_rate`` after every validation epoch.

PCK and AP do not say *why* joints are wrong; a model that cannot tell left from right (figures whose front and
back look alike, or a colour code that the flip augmentation reverses) shows it here first: the fraction of
left/right pairs whose crossed assignment fits the ground truth better (definition:
:func:`lightning_pose.evaluation.baseline.left_right_swaps`), and ``val/collapse_rate``, the fraction of pairs
predicted on the same spot. Top-down GT-box samples only (the batch must carry ``gt_keypoints`` and ``bbox``).
Exact under DDP: the ranks' samples are gathered and the duplicates the distributed sampler adds are dropped by
``sample_id``, so 2 processes report the single-process value.

The last epoch's image-frame predictions stay available as :attr:`SwapRateMonitor.last` (numpy arrays), e.g. for
per-view error analysis in ``benchmarks/demo_training.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["SwapRateMonitor"]


class SwapRateMonitor(Callback):
    """Collect the validation predictions and log ``val/swap_rate`` and ``val/collapse_rate``."""

    def __init__(self) -> None:
        self._parts: list[dict[str, np.ndarray]] = []
        self.last: dict[str, np.ndarray] | None = None

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._parts = []

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, dict) or "coords_image" not in outputs:
            return
        if not all(k in batch for k in ("gt_keypoints", "bbox")):
            return
        part = {
            "pred": outputs["coords_image"].detach().cpu().double().numpy(),
            "gt": batch["gt_keypoints"].detach().cpu().double().numpy(),
            "bbox": batch["bbox"].detach().cpu().double().numpy(),
        }
        for key in ("ann_id", "image_id", "sample_id"):
            if key in batch:
                part[key] = batch[key].detach().cpu().numpy()
        self._parts.append(part)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from lightning_pose.evaluation.baseline import left_right_swaps

        if trainer.sanity_checking:
            return
        parts = _gather_parts(trainer, self._parts)
        if not parts:
            return
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if "sample_id" in cat:  # DistributedSampler pads by repeating samples: count each once
            _, first = np.unique(cat["sample_id"], return_index=True)
            keep = np.sort(first)
            cat = {k: v[keep] for k, v in cat.items()}
        self.last = cat
        pairs = list(pl_module.keypoint_set.flip_pairs)
        if not pairs:
            return
        stats = left_right_swaps(cat["pred"], cat["gt"], cat["bbox"], pairs)
        if stats.pairs:
            pl_module.log("val/swap_rate", stats.swap_rate, rank_zero_only=True)
            pl_module.log("val/collapse_rate", stats.collapse_rate, rank_zero_only=True)


def _gather_parts(trainer: Trainer, parts: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Every rank's collected parts (this rank's alone when not distributed); all ranks must call it."""
    import torch.distributed as dist

    if trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return parts
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, parts)
    return [p for rank_parts in gathered for p in (rank_parts or [])]

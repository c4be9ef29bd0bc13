"""Log and print the constant-predictor baseline next to the model's validation metrics.

The constant predictor (:mod:`lightning_pose.evaluation.baseline`) places the mean training pose, in
box-normalised coordinates, in every validation GT box. Its scores are what a model gets without looking at
the image, so they are the floor every run should beat by a wide margin. They are computed once, at the first
real validation (never during the sanity check), from the datamodule's train and val annotations, printed once and
logged with every validation epoch as ``val/baseline/<metric>`` (e.g. ``val/baseline/AP``,
``val/baseline/PCK@0.05``: a flat line next to the model's curves); at the end of ``fit`` one line compares the
final metrics with them.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_pose.callbacks.console import console_line

__all__ = ["ConstantBaseline"]

_SHOWN = ("AP", "PCK@0.05", "PCK@0.2", "swap_rate")


class ConstantBaseline(Callback):
    """Compute, log (``val/baseline/*``) and print the constant-predictor baseline once per run.

    Args:
        train_split: the split whose annotations give the mean pose.
        eval_split: the split it is evaluated on (its GT boxes).
    """

    def __init__(self, train_split: str = "train", eval_split: str = "val") -> None:
        self.train_split = train_split
        self.eval_split = eval_split
        self.metrics: dict[str, float] | None = None
        self._done = False

    def compute(self, datamodule: Any) -> dict[str, float] | None:
        """The baseline metrics for ``datamodule`` (``None`` when it cannot be computed, with the reason printed)."""
        from lightning_pose.data.records import DatasetError
        from lightning_pose.evaluation.baseline import constant_baseline_metrics
        from lightning_pose.metrics.registry import metric_specs_of, uses_gt_boxes

        if datamodule is None or not hasattr(datamodule, "ground_truth"):
            return None
        if getattr(datamodule, "mode", "topdown") != "topdown" or not uses_gt_boxes(datamodule, self.eval_split):
            rank_zero_info("constant-predictor baseline: skipped (it needs top-down crops of GT boxes)")
            return None
        ks = datamodule.keypoint_set
        try:
            train_gt = datamodule.ground_truth(self.train_split)
            val_gt = datamodule.ground_truth(self.eval_split)
        except (DatasetError, OSError) as err:
            rank_zero_info(f"constant-predictor baseline: skipped ({err})")
            return None
        # AP beside the logged AP when the datamodule declares COCO AP with GT areas (COCO, demo; AIC's 0.53 w h
        # area rule is not what the baseline computes, so it reports PCK only there)
        with_ap = any(s.name == "coco_ap" and s.options.get("use_area", True) for s in metric_specs_of(datamodule))
        sigmas = ks.sigmas if with_ap else None
        return constant_baseline_metrics(train_gt, val_gt, sigmas, ks.flip_pairs)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if not self._done:
            self._done = True
            self.metrics = self.compute(trainer.datamodule)
            if self.metrics:
                shown = " ".join(
                    f"{self.eval_split}/baseline/{k}={self.metrics[k]:.4f}" for k in _SHOWN if k in self.metrics
                )
                # on its own console line (stdout, rank 0), next to the epoch summaries
                console_line(
                    f"constant-predictor baseline (mean training pose placed in each {self.eval_split} GT box): {shown}"
                )
        if not self.metrics:
            return
        # logged with every validation (a flat line next to the model's curves); computed once
        for k, v in self.metrics.items():
            if math.isfinite(float(v)):
                pl_module.log(f"{self.eval_split}/baseline/{k}", float(v), rank_zero_only=True)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.metrics:
            return
        final = getattr(pl_module, "final_metrics", {}).get(self.eval_split, {})
        parts = []
        for k in ("AP", "PCK@0.05"):
            key = f"{self.eval_split}/{k}"
            value = final.get(key, trainer.callback_metrics.get(key))
            base = self.metrics.get(k)
            if value is None or base is None:
                continue
            ratio = f"{float(value) / base:.1f}x" if base > 0 else "inf x"
            parts.append(f"{key}={float(value):.4f} vs baseline {base:.4f} ({ratio})")
        if parts:
            rank_zero_info("final: " + "; ".join(parts))
        elif self._done:
            rank_zero_warn("ConstantBaseline: no final validation metric to compare with the baseline")

"""``PCK``: torchmetrics wrapper over :mod:`lightning_pose.evaluation.pck` (DDP-safe, de-duplicated)."""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

import numpy as np
from torch import Tensor

from lightning_pose.evaluation.pck import normalized_distances, torso_normalizers
from lightning_pose.metrics._base import SampleStateMetric, batch_array
from lightning_pose.skeletons import KeypointSet, get_keypoint_set

__all__ = ["PCK"]


class PCK(SampleStateMetric):
    """PCK with a per-instance normaliser, pooled ("micro") and per-joint averaged ("macro").

    ``update`` stores, per sample, the normalised distance of each joint (``-1`` where the joint does not count),
    so thresholds are applied exactly in ``compute``.

    Args:
        keypoint_set: names used for the per-joint keys (``"coco"``, ``"mpii"``, ``"aic"`` or a KeypointSet).
        thresholds: thresholds in normaliser units.
        normalizer: ``"bbox"`` = ``max(w, h)`` of ``batch["bbox"]`` (x, y, w, h, image pixels),
            ``"torso"`` = ``||g[a] - g[b]||`` of the GT for ``torso_pair`` (predicted torso below 1 px),
            ``"head_size"`` = ``batch["head_size"]``.
        comparison: ``"<"`` (mmpose) or ``"<="`` (official MPII).
        prefix: key prefix, default ``"PCK"``.

    ``compute()`` keys, for each threshold ``t`` (formatted with ``%g``): ``{prefix}@t`` (micro, fraction),
    ``{prefix}@t_macro`` and ``{prefix}@t/<joint name>``; plus ``{prefix}/excluded_instances`` (normaliser 0/NaN).
    Joints without any valid instance get NaN per-joint values and are left out of the macro mean.
    """

    def __init__(
        self,
        keypoint_set: str | KeypointSet = "coco",
        thresholds: Sequence[float] = (0.05,),
        normalizer: Literal["bbox", "torso", "head_size"] = "bbox",
        torso_pair: tuple[int, int] | None = None,
        comparison: Literal["<", "<="] = "<",
        prefix: str = "PCK",
        **kwargs: Any,
    ) -> None:
        super().__init__(("sample_id", "dist", "excluded"), **kwargs)
        self.keypoint_set = get_keypoint_set(keypoint_set)
        self.thresholds = tuple(float(t) for t in thresholds)
        if not self.thresholds:
            raise ValueError("PCK: give at least one threshold")
        if normalizer not in ("bbox", "torso", "head_size"):
            raise ValueError(f"PCK: unknown normalizer {normalizer!r}")
        if normalizer == "torso" and torso_pair is None:
            raise ValueError("PCK: normalizer='torso' needs torso_pair=(a, b)")
        if comparison not in ("<", "<="):
            raise ValueError(f"PCK: comparison must be '<' or '<=', got {comparison!r}")
        self.normalizer = normalizer
        self.torso_pair = torso_pair
        self.comparison = comparison
        self.prefix = prefix

    def update(self, preds: Tensor, scores: Tensor, batch: Mapping[str, Any]) -> None:
        """Args: ``preds (B, K, 2)`` image-frame pixels; ``scores (B, K)`` (unused); batch with ``gt_keypoints``,
        ``sample_id`` and ``bbox`` / ``head_size`` depending on the normaliser."""
        name = type(self).__name__
        pred = preds.detach().to("cpu").double().numpy()
        gt = batch_array(batch, "gt_keypoints", name)
        k = self.keypoint_set.num_keypoints
        if pred.ndim != 3 or pred.shape[1] != k or gt.shape[:2] != pred.shape[:2]:
            raise ValueError(f"{name}: preds {tuple(pred.shape)} and gt_keypoints {gt.shape} must be (B, {k}, 2|3)")
        if self.normalizer == "bbox":
            box = batch_array(batch, "bbox", name).reshape(-1, 4)
            norm = np.maximum(box[:, 2], box[:, 3])
        elif self.normalizer == "head_size":
            norm = batch_array(batch, "head_size", name).reshape(-1)
        else:
            norm = torso_normalizers(gt, self.torso_pair, pred)
        dist, _ = normalized_distances(pred[..., :2], gt[..., :2], gt[..., 2] > 0, norm)
        bad = (norm == 0) | ~np.isfinite(norm)
        self._append("sample_id", batch_array(batch, "sample_id", name).reshape(-1))
        self._append("dist", dist)
        self._append("excluded", bad.astype(np.float64))

    def compute(self) -> dict[str, float]:
        k = self.keypoint_set.num_keypoints
        s = self._unique_samples({"dist": k, "excluded": 1})
        dist = s["dist"]
        valid = dist >= 0
        n_valid = valid.sum(axis=0)
        out: dict[str, float] = {}
        for t in self.thresholds:
            ok = ((dist < t) if self.comparison == "<" else (dist <= t)) & valid
            correct = ok.sum(axis=0)
            tag = f"{self.prefix}@{t:g}"
            out[tag] = float(correct.sum() / n_valid.sum()) if n_valid.sum() > 0 else float("nan")
            per_joint = np.where(n_valid > 0, correct / np.maximum(n_valid, 1), np.nan)
            out[f"{tag}_macro"] = float(per_joint[n_valid > 0].mean()) if (n_valid > 0).any() else 0.0
            for j, jn in enumerate(self.keypoint_set.keypoints):
                out[f"{tag}/{jn}"] = float(per_joint[j])
        out[f"{self.prefix}/excluded_instances"] = float(s["excluded"].sum())
        return out

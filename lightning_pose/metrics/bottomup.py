"""Bottom-up variants of the COCO AP and AIC metrics: persons found on whole images, every image evaluated.

A bottom-up method predicts a variable number of persons per image, each with its own score, and no person box.
These wrappers reuse :class:`COCOKeypointAP` / :class:`AICScore` with the bottom-up conventions (HigherHRNet,
mmpose ``nms_mode='none'``): the instance score is the person score given as ``bbox_score`` (no rescoring), no
OKS-NMS, and an image counts as evaluated even when no person was found on it (``batch["seen_image_ids"]``).

``update(preds (P, K, 2) image frame, scores (P, K), batch)`` with, per person: ``sample_id`` (unique and the same
on every rank, e.g. ``image sample id * 1000 + person index``), ``image_id``, ``ann_id`` (person index in its image),
``bbox_score`` (the person score), ``crop_area`` (unused, 0); and ``seen_image_ids`` ``(B,)`` the images of the
batch (P may be 0).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np
from torch import Tensor

from lightning_pose.evaluation.topdown_postprocess import TopDownDetections
from lightning_pose.metrics._base import batch_array
from lightning_pose.metrics.aic_score import AICScore
from lightning_pose.metrics.coco_ap import COCOKeypointAP

__all__ = ["BottomUpCOCOAP", "BottomUpAICScore"]


class _SeenImages:
    """Mixin: a ``seen_image_id`` cat state, merged into the evaluated images of ``detections()``."""

    def _add_seen_state(self) -> None:
        self.add_state("seen_image_id", default=[], dist_reduce_fx="cat")  # type: ignore[attr-defined]

    def _update_seen(self, batch: Mapping[str, Any]) -> None:
        seen = batch_array(batch, "seen_image_ids", type(self).__name__).reshape(-1)
        self._append("seen_image_id", seen)  # type: ignore[attr-defined]

    def _with_seen(self, det: TopDownDetections) -> TopDownDetections:
        seen = self._state("seen_image_id").astype(np.int64)  # type: ignore[attr-defined]
        return replace(det, seen_image_ids=np.union1d(det.seen_image_ids.astype(np.int64), seen))


class BottomUpCOCOAP(_SeenImages, COCOKeypointAP):
    """COCO keypoint AP/AR of bottom-up predictions (module docstring); ``gt``/``sigmas``/``use_area`` as in
    :class:`COCOKeypointAP`."""

    def __init__(self, gt: Mapping, **kwargs: Any) -> None:
        kwargs.update(rescore=False, nms_thr=None, use_gt_boxes=False)
        super().__init__(gt, **kwargs)
        self._add_seen_state()

    def update(self, preds: Tensor, scores: Tensor, batch: Mapping[str, Any]) -> None:
        self._update_seen(batch)
        super().update(preds, scores, batch)

    def detections(self) -> TopDownDetections:
        return self._with_seen(super().detections())


class BottomUpAICScore(_SeenImages, AICScore):
    """Official AI Challenger score of bottom-up predictions (module docstring)."""

    def __init__(self, gt: Any, **kwargs: Any) -> None:
        kwargs.update(rescore=False, nms_thr=None)
        super().__init__(gt, **kwargs)
        self._add_seen_state()

    def update(self, preds: Tensor, scores: Tensor, batch: Mapping[str, Any]) -> None:
        self._update_seen(batch)
        super().update(preds, scores, batch)

    def detections(self) -> TopDownDetections:
        return self._with_seen(super().detections())

"""What a dataset is evaluated with, declared as plain data (stdlib only: below ``data/`` and ``metrics/``).

A datamodule lists its metrics in a ``metric_specs`` class attribute (a tuple of :class:`MetricSpec`); the metrics
layer (:func:`lightning_pose.metrics.registry.build_metrics`) turns each spec into a torchmetrics object for a split.
So ``data/`` never imports ``metrics/``, and a new dataset (or a new metric for one) is one line in its datamodule,
not a branch on ``dataset_name`` somewhere else.

A spec says *which* metric (``name``, a key of the metric registry), its *options* (passed to the metric's
constructor, e.g. ``use_area``), the *ground truth it is built with* (``gt``) and whether it only makes sense on
splits whose samples are GT person boxes (``gt_boxes_only``, e.g. a box-normalised PCK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

__all__ = ["MetricSpec", "GT_KINDS", "PCK_ON_GT_BOXES", "PCKH", "AIC_SCORE", "DEFAULT_METRIC_SPECS", "coco_ap"]

#: what a metric can be built with, read from the datamodule for the split:
#: ``"coco"`` = ``datamodule.ground_truth(split)`` (COCO-layout dict, 0-based image pixels);
#: ``"persons"`` = the number of GT persons of the split (rows of the native MPII export).
GT_KINDS = ("coco", "persons")


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a dataset, as plain data.

    Attributes:
        name: registry key of the metric (``"pck"``, ``"pckh"``, ``"coco_ap"``, ``"aic"``); also the key of the
            built metric in the task's metric dict.
        options: constructor options of the metric (plain values, e.g. ``{"use_area": False}``).
        gt: the ground truth the metric is built with (one of :data:`GT_KINDS`), or ``None``.
        gt_boxes_only: build it only for splits whose samples are GT person boxes (not detections).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    gt: Literal["coco", "persons"] | None = None
    gt_boxes_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"MetricSpec: name must be a non-empty string, got {self.name!r}")
        if self.gt is not None and self.gt not in GT_KINDS:
            raise ValueError(f"MetricSpec {self.name!r}: gt must be one of {GT_KINDS} or None, got {self.gt!r}")


#: bbox-normalised PCK (thresholds from the task), on GT-box splits of every dataset
PCK_ON_GT_BOXES = MetricSpec("pck", gt_boxes_only=True)
#: MPII PCKh (official semantics); exports ``<split>_mpii_preds.mat`` with one row per GT person
PCKH = MetricSpec("pckh", gt="persons")
#: the official AI Challenger score on the split's GT; exports ``<split>_aic_preds.json``
AIC_SCORE = MetricSpec("aic", gt="coco")
#: what a datamodule that declares nothing is evaluated with
DEFAULT_METRIC_SPECS: tuple[MetricSpec, ...] = (PCK_ON_GT_BOXES,)


def coco_ap(*, use_area: bool = True) -> MetricSpec:
    """COCO keypoint AP/AR on the split's GT; ``use_area=False`` takes ``0.53 w h`` of the GT box as the OKS area
    (AIC/CrowdPose files without segment areas). Exports ``<split>_coco_results.json`` and ``<split>_coco_gt.json``."""
    return MetricSpec("coco_ap", {"use_area": bool(use_area)}, gt="coco")

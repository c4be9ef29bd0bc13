"""The metric registry: :class:`~lightning_pose.metric_specs.MetricSpec` (declared by a datamodule) -> torchmetrics.

Each registry entry builds the top-down metric and, where one exists, its bottom-up variant (whole images, person
scores, no NMS: :mod:`lightning_pose.metrics.bottomup`). A spec without a variant for the task's kind of samples is
left out (PCK and PCKh need one crop per GT person, so bottom-up tasks are evaluated with COCO AP / AIC only).

| spec name | top-down | bottom-up | built with |
|---|---|---|---|
| ``pck`` | :class:`PCK` (bbox-normalised, the task's thresholds) | -- | GT-box splits only |
| ``pckh`` | :class:`PCKh` | -- | the split's GT person count (export rows) |
| ``coco_ap`` | :class:`COCOKeypointAP` | :class:`BottomUpCOCOAP` | ``ground_truth(split)``, the keypoint set's sigmas (left out without sigmas) |
| ``aic`` | :class:`AICScore` | :class:`BottomUpAICScore` | ``ground_truth(split)`` |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from torchmetrics import Metric

from lightning_pose.errors import ConfigError
from lightning_pose.metric_specs import DEFAULT_METRIC_SPECS, MetricSpec
from lightning_pose.skeletons import KeypointSet

__all__ = [
    "MetricContext",
    "register_metric",
    "registered_metrics",
    "build_metrics",
    "metric_specs_of",
    "uses_gt_boxes",
]


@dataclass(frozen=True)
class MetricContext:
    """What a metric builder gets besides the spec's options.

    Attributes:
        keypoint_set: the task's keypoint set (names, sigmas).
        split: ``"val"`` or ``"test"``.
        gt: the ground truth the spec asked for (COCO dict, person count) or ``None``.
        gt_boxes: whether the split's samples are GT person boxes.
        pck_thresholds: the task's PCK thresholds (normalised units).
    """

    keypoint_set: KeypointSet
    split: str
    gt: Any
    gt_boxes: bool
    pck_thresholds: tuple[float, ...]


Builder = Callable[[MetricContext, Mapping[str, Any]], "Metric | None"]
_REGISTRY: dict[str, tuple[Builder | None, Builder | None]] = {}


def register_metric(name: str, topdown: Builder | None = None, bottomup: Builder | None = None) -> None:
    """Register (or replace) the builders of metric ``name``; a builder returns ``None`` when the metric does not
    apply (e.g. COCO AP for a keypoint set without OKS sigmas)."""
    _REGISTRY[str(name)] = (topdown, bottomup)


def registered_metrics() -> list[str]:
    """Names a :class:`MetricSpec` may use."""
    return sorted(_REGISTRY)


def uses_gt_boxes(datamodule: Any, split: str) -> bool:
    """Whether the split's samples are GT person boxes (PCK needs them) rather than detections."""
    boxes = getattr(datamodule, "boxes", {}).get(split, "gt")
    return boxes in (None, "gt")


def metric_specs_of(datamodule: Any) -> tuple[MetricSpec, ...]:
    """The datamodule's declared ``metric_specs`` (:data:`DEFAULT_METRIC_SPECS` when it declares none)."""
    specs = getattr(datamodule, "metric_specs", None)
    if specs is None:
        return DEFAULT_METRIC_SPECS
    specs = tuple(specs() if callable(specs) else specs)
    for spec in specs:
        if not isinstance(spec, MetricSpec):
            raise ConfigError(f"{type(datamodule).__name__}.metric_specs: {spec!r} is not a MetricSpec")
    return specs


def _ground_truth(datamodule: Any, spec: MetricSpec, split: str) -> Any:
    if spec.gt is None:
        return None
    if spec.gt == "coco":
        return datamodule.ground_truth(split)
    return sum(len(r.persons) for r in datamodule.records(split))  # "persons"


def build_metrics(
    datamodule: Any,
    split: str,
    keypoint_set: KeypointSet,
    *,
    bottomup: bool = False,
    pck_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
) -> dict[str, Metric]:
    """The metrics of ``split``: one per spec the datamodule declares, keyed by the spec's name, in spec order.

    Raises:
        ConfigError: a spec names a metric that is not registered, or two specs share a name.
    """
    gt_boxes = uses_gt_boxes(datamodule, split)
    metrics: dict[str, Metric] = {}
    for spec in metric_specs_of(datamodule):
        if spec.name not in _REGISTRY:
            raise ConfigError(
                f"{type(datamodule).__name__}.metric_specs: unknown metric {spec.name!r} "
                f"(registered: {', '.join(registered_metrics())})"
            )
        if spec.name in metrics:
            raise ConfigError(f"{type(datamodule).__name__}.metric_specs: metric {spec.name!r} listed twice")
        builder = _REGISTRY[spec.name][1 if bottomup else 0]
        if builder is None or (spec.gt_boxes_only and not gt_boxes):
            continue
        ctx = MetricContext(
            keypoint_set,
            split,
            _ground_truth(datamodule, spec, split),
            gt_boxes,
            tuple(float(t) for t in pck_thresholds),
        )
        metric = builder(ctx, dict(spec.options))
        if metric is not None:
            metrics[spec.name] = metric
    return metrics


# ------------------------------------------------------------------------------------------ the built-in metrics
def _pck(ctx: MetricContext, options: Mapping[str, Any]) -> Metric:
    from lightning_pose.metrics.pck import PCK

    return PCK(ctx.keypoint_set, **{"thresholds": ctx.pck_thresholds, "normalizer": "bbox", **options})


def _pckh(ctx: MetricContext, options: Mapping[str, Any]) -> Metric:
    from lightning_pose.metrics.pckh import PCKh

    return PCKh(num_persons=ctx.gt, **options)


def _coco_ap(ctx: MetricContext, options: Mapping[str, Any]) -> Metric | None:
    from lightning_pose.metrics.coco_ap import COCOKeypointAP

    if ctx.keypoint_set.sigmas is None:
        return None
    return COCOKeypointAP(ctx.gt, **{"sigmas": ctx.keypoint_set.sigmas, "use_gt_boxes": ctx.gt_boxes, **options})


def _bottomup_coco_ap(ctx: MetricContext, options: Mapping[str, Any]) -> Metric | None:
    from lightning_pose.metrics.bottomup import BottomUpCOCOAP

    if ctx.keypoint_set.sigmas is None:
        return None
    return BottomUpCOCOAP(ctx.gt, **{"sigmas": ctx.keypoint_set.sigmas, **options})


def _aic(ctx: MetricContext, options: Mapping[str, Any]) -> Metric:
    from lightning_pose.metrics.aic_score import AICScore

    return AICScore(ctx.gt, **options)


def _bottomup_aic(ctx: MetricContext, options: Mapping[str, Any]) -> Metric:
    from lightning_pose.metrics.bottomup import BottomUpAICScore

    return BottomUpAICScore(ctx.gt, **options)


register_metric("pck", topdown=_pck)
register_metric("pckh", topdown=_pckh)
register_metric("coco_ap", topdown=_coco_ap, bottomup=_bottomup_coco_ap)
register_metric("aic", topdown=_aic, bottomup=_bottomup_aic)

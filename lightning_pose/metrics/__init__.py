"""torchmetrics wrappers over the torch-free evaluation core (DDP-safe: flat float64 cat states, de-duplicated
by ``sample_id``). Update API for all: ``update(preds (B, K, 2) image frame, scores (B, K), batch: dict)``."""

from lightning_pose.metrics.aic_score import AICScore
from lightning_pose.metrics.coco_ap import COCOKeypointAP
from lightning_pose.metrics.pck import PCK
from lightning_pose.metrics.pckh import PCKh

__all__ = ["PCK", "PCKh", "COCOKeypointAP", "AICScore"]

"""Validation images for W&B: crops with ground truth | prediction, the full images with both, and the worst cases.

Frames: crops are drawn in the **input frame** (``batch["keypoints"]`` and the decoded ``coords_input``); full images
in the **original image frame** (``batch["gt_keypoints"]`` and ``coords_image``). The error that ranks the worst
cases is the mean image-frame distance over the labelled joints divided by ``sqrt(w * h)`` of the person box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lightning_pose.data.drawing import denormalize_image, draw_pose
from lightning_pose.skeletons import KeypointSet

__all__ = ["ValidationImages", "normalized_errors"]

#: full images are shrunk to at most this height (pixels) before logging
FULL_IMAGE_MAX_HEIGHT = 256


@dataclass
class _Sample:
    crop: np.ndarray  # (H_in, W_in, 3) uint8 RGB
    gt_crop: np.ndarray  # (K, 3) input frame
    pred_crop: np.ndarray  # (K, 2) input frame
    gt_image: np.ndarray  # (K, 3) image frame
    pred_image: np.ndarray  # (K, 2) image frame
    sample_id: int
    error: float


def normalized_errors(pred_image: np.ndarray, gt_image: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """Per sample: mean distance over joints with ``v > 0`` divided by ``sqrt(w * h)`` of the box (NaN if none).

    Args:
        pred_image: ``(B, K, 2)`` predictions, image pixels.
        gt_image: ``(B, K, 3)`` ground truth, image pixels + visibility.
        bbox: ``(B, 4)`` person boxes ``x, y, w, h`` in image pixels.
    """
    labelled = gt_image[..., 2] > 0
    dist = np.linalg.norm(pred_image - gt_image[..., :2], axis=-1)
    size = np.sqrt(np.clip(bbox[:, 2] * bbox[:, 3], 1e-6, None))
    count = labelled.sum(axis=1)
    total = np.where(labelled, dist, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1) / size, np.nan)


class ValidationImages:
    """Collects the first ``num_images`` validation samples and the ``num_worst`` worst ones of an epoch."""

    def __init__(self, num_images: int = 8, num_worst: int = 4) -> None:
        self.num_images = max(0, int(num_images))
        self.num_worst = max(0, int(num_worst))
        self.reset()

    def reset(self) -> None:
        self.first: list[_Sample] = []
        self.worst: list[_Sample] = []

    @property
    def has_samples(self) -> bool:
        return bool(self.first or self.worst)

    def add_batch(self, batch: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Take what is needed from one validation batch (tensors are copied to numpy)."""
        if self.num_images == 0 and self.num_worst == 0:
            return
        pred_img = _np(outputs["coords_image"]) if "coords_image" in outputs else None
        gt_img = _np(batch["gt_keypoints"]) if "gt_keypoints" in batch else None
        errors = (
            normalized_errors(pred_img, gt_img, _np(batch["bbox"]))
            if pred_img is not None and gt_img is not None and "bbox" in batch
            else None
        )
        n = batch["image"].shape[0]
        need_first = max(0, self.num_images - len(self.first))
        candidates = set(range(min(need_first, n)))
        if errors is not None and self.num_worst:
            order = [int(i) for i in np.argsort(-np.nan_to_num(errors, nan=-1.0)) if np.isfinite(errors[i])]
            floor = min((s.error for s in self.worst), default=-1.0)
            for i in order[: self.num_worst]:
                if len(self.worst) < self.num_worst or errors[i] > floor:
                    candidates.add(i)
        if not candidates:
            return
        images = _np(batch["image"])
        gt_crop = _np(batch["keypoints"])
        pred_crop = _np(outputs["coords_input"])
        ids = _np(batch["sample_id"]).astype(int) if "sample_id" in batch else np.full(n, -1)
        k = gt_crop.shape[1]
        for i in sorted(candidates):
            sample = _Sample(
                crop=denormalize_image(images[i]),
                gt_crop=gt_crop[i],
                pred_crop=pred_crop[i],
                gt_image=gt_img[i] if gt_img is not None else np.zeros((k, 3)),
                pred_image=pred_img[i] if pred_img is not None else np.full((k, 2), np.nan),
                sample_id=int(ids[i]),
                error=float(errors[i]) if errors is not None else float("nan"),
            )
            if i < need_first:
                self.first.append(sample)
            if errors is not None and self.num_worst and np.isfinite(sample.error):
                self.worst.append(sample)
                self.worst.sort(key=lambda s: -s.error)
                del self.worst[self.num_worst :]

    def render(self, keypoint_set: KeypointSet, dataset: Any = None) -> dict[str, tuple[list[np.ndarray], list[str]]]:
        """``{"val/examples": crops, "val/full_images": full images, "val/worst": worst crops}`` as lists of
        ``(H, W, 3)`` uint8 panels with captions. Full images need ``dataset.load_image(sample_id)``."""
        out: dict[str, tuple[list[np.ndarray], list[str]]] = {}
        if self.first:
            out["val/examples"] = (
                [self._crop_panel(s, keypoint_set) for s in self.first],
                ["ground truth | prediction"] * len(self.first),
            )
        if self.first and dataset is not None and hasattr(dataset, "load_image"):
            panels, captions = [], []
            for s in self.first:
                panel = self._full_panel(s, keypoint_set, dataset)
                if panel is not None:
                    panels.append(panel)
                    captions.append(f"sample {s.sample_id}: ground truth (white) and prediction (red)")
            if panels:
                out["val/full_images"] = (panels, captions)
        if self.worst:
            out["val/worst"] = (
                [self._crop_panel(s, keypoint_set) for s in self.worst],
                [f"sample {s.sample_id}: error {s.error:.3f} x box size" for s in self.worst],
            )
        return out

    @staticmethod
    def _crop_panel(s: _Sample, kset: KeypointSet) -> np.ndarray:
        left = draw_pose(s.crop, s.gt_crop, kset, outline=(255, 255, 255))
        right = draw_pose(s.crop, s.pred_crop, kset, visible_only=False, outline=(255, 0, 0))
        return np.concatenate([np.asarray(left), np.asarray(right)], axis=1)

    @staticmethod
    def _full_panel(s: _Sample, kset: KeypointSet, dataset: Any) -> np.ndarray | None:
        if s.sample_id < 0 or not np.isfinite(s.pred_image).all():
            return None
        image, is_bgr, factor = dataset.load_image(s.sample_id)
        if is_bgr:
            image = image[..., ::-1]
        scale = 1.0 / factor
        drawn = draw_pose(image, s.gt_image * np.array([scale, scale, 1.0]), kset, outline=(255, 255, 255))
        drawn = draw_pose(drawn, s.pred_image * scale, kset, visible_only=False, outline=(255, 0, 0))
        if drawn.height > FULL_IMAGE_MAX_HEIGHT:
            width = max(1, round(drawn.width * FULL_IMAGE_MAX_HEIGHT / drawn.height))
            drawn = drawn.resize((width, FULL_IMAGE_MAX_HEIGHT), Image.BILINEAR)
        return np.asarray(drawn)


def _np(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()
    return np.asarray(t)

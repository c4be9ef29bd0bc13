"""Top-down post-processing shared by the COCO and AIC metrics: per-image de-duplication by ``ann_id``, rescoring
and OKS-NMS (HRNet / mmpose conventions, docs/metrics.md#rescoring-and-oks-nms). numpy only; the metric classes call it from
``compute()`` (torch-free: it lives in the evaluation core).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_pose.evaluation.nms import oks_nms, rescore

__all__ = ["TopDownDetections", "postprocess_topdown"]


@dataclass
class TopDownDetections:
    """Final detections after post-processing, ordered by (image_id, sample_id) with NMS survivors only.

    Attributes:
        image_id: ``(D,)`` int64 image ids.
        ann_id: ``(D,)`` int64 GT annotation id (or detection index) of each detection's box.
        keypoints: ``(D, K, 2)`` float64 image-frame pixels.
        keypoint_scores: ``(D, K)`` float64.
        score: ``(D,)`` float64 instance score after rescoring.
        seen_image_ids: sorted int64 ids of every image that had at least one sample (even if all its
            detections were suppressed) -- the images to evaluate.
    """

    image_id: np.ndarray
    ann_id: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray
    score: np.ndarray
    seen_image_ids: np.ndarray


def postprocess_topdown(
    image_id: np.ndarray,
    ann_id: np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    bbox_score: np.ndarray,
    crop_area: np.ndarray,
    *,
    sigmas: np.ndarray,
    rescore_instances: bool = True,
    score_thr: float = 0.2,
    nms_thr: float | None = 0.9,
) -> TopDownDetections:
    """De-duplicate, rescore and OKS-NMS per image.

    Args:
        image_id, ann_id: ``(N,)`` ids of each sample (already de-duplicated by ``sample_id`` and sorted by it).
        keypoints: ``(N, K, 2)`` image-frame pixels; keypoint_scores ``(N, K)``.
        bbox_score: ``(N,)`` box scores (1 for GT boxes); crop_area ``(N,)`` padded crop area in px^2 (NMS area).
        sigmas: ``(K,)`` OKS sigmas for the NMS.
        rescore_instances: ``score = bbox_score * mean(kpt_scores > score_thr)`` (0 when none above);
            False keeps ``bbox_score``.
        nms_thr: OKS-NMS threshold (drop ``oks > thr``), or None for no NMS.
    """
    image_id = np.asarray(image_id).astype(np.int64)
    ann_id = np.asarray(ann_id).astype(np.int64)
    n = image_id.shape[0]
    # de-duplicate by (image_id, ann_id): keep the first (lowest sample_id) occurrence, keep sample order
    if n:
        pairs = np.stack([image_id, ann_id], axis=1)
        _, first = np.unique(pairs, axis=0, return_index=True)
        keep = np.sort(first)
    else:
        keep = np.zeros(0, dtype=np.int64)
    image_id, ann_id = image_id[keep], ann_id[keep]
    keypoints, keypoint_scores = keypoints[keep], keypoint_scores[keep]
    bbox_score, crop_area = bbox_score[keep], crop_area[keep]
    if rescore_instances:
        score = np.asarray(rescore(bbox_score, keypoint_scores, thr=score_thr), dtype=np.float64)
    else:
        score = np.asarray(bbox_score, dtype=np.float64).copy()
    order = np.argsort(image_id, kind="stable")
    selected: list[np.ndarray] = []
    seen = np.unique(image_id)
    for img in seen:
        idx = order[image_id[order] == img]
        if nms_thr is not None and idx.size > 1:
            kept = np.asarray(oks_nms(keypoints[idx], score[idx], crop_area[idx], sigmas, thr=nms_thr), dtype=np.int64)
            idx = idx[np.sort(kept)]
        selected.append(idx)
    sel = np.concatenate(selected) if selected else np.zeros(0, dtype=np.int64)
    return TopDownDetections(image_id[sel], ann_id[sel], keypoints[sel], keypoint_scores[sel], score[sel], seen)

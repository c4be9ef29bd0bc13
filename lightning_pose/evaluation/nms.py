"""Top-down post-processing before COCO evaluation: instance rescoring and OKS-NMS (HRNet/mmpose defaults).

Numpy only. Coordinates are pixels of the original image; areas are px^2.

* :func:`rescore`: ``score = bbox_score * mean(kpt_scores[kpt_scores > thr])``, 0 when no keypoint score
  exceeds ``thr`` (strict ``>``; mmpose ``score_mode='bbox_keypoint'``, ``keypoint_score_thr=0.2``; HRNet
  ``IN_VIS_THRE=0.2``).
* :func:`oks_nms`: greedy NMS of one image's predictions. The candidate with the highest score is kept and
  every remaining prediction whose OKS with it is ``> thr`` is dropped (``<= thr`` survives). The OKS between
  two predictions uses all K keypoints and the mean of their two areas, ``(a_i + a_j) / 2``, as the scale
  (mmpose ``oks_nms(vis_thr=None)``; HRNet ``oks_nms``). The processing order is mmpose's
  ``np.argsort(scores)[::-1]`` so ties are broken exactly as there (the later index first for small inputs).
"""

from __future__ import annotations

import numpy as np

from lightning_pose.evaluation.oks import COCO_SIGMAS

__all__ = ["rescore", "oks_nms", "prediction_oks_matrix", "oks_nms_grouped"]

_EPS = np.spacing(1)


def rescore(bbox_scores: np.ndarray, kpt_scores: np.ndarray, thr: float = 0.2) -> np.ndarray:
    """Instance scores ``bbox_score * mean(kpt_scores > thr)`` (0 when no keypoint score is ``> thr``).

    Args:
        bbox_scores: ``(N,)`` detector (or GT = 1.0) box scores.
        kpt_scores: ``(N, K)`` per-keypoint confidences (e.g. heatmap maxima).
        thr: keypoint score threshold (strict ``>``).

    Returns:
        ``(N,)`` float64 instance scores.
    """
    b = np.asarray(bbox_scores, dtype=np.float64).reshape(-1)
    s = np.asarray(kpt_scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != b.shape[0]:
        raise ValueError(f"kpt_scores must have shape ({b.shape[0]}, K), got {s.shape}")
    mask = s > thr
    count = mask.sum(axis=1)
    total = np.where(mask, s, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean * b


def prediction_oks_matrix(keypoints: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Symmetric ``(N, N)`` OKS between predictions with scale ``(a_i + a_j) / 2`` over all K keypoints.

    Args:
        keypoints: ``(N, K, 2|3)`` x, y in image pixels (a third column is ignored).
        areas: ``(N,)`` areas in px^2 (HRNet/mmpose: product of the padded box sides).
        sigmas: ``(K,)`` OKS sigmas.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] not in (2, 3):
        raise ValueError(f"keypoints must have shape (N, K, 2|3), got {kp.shape}")
    n, k = kp.shape[0], kp.shape[1]
    a = np.asarray(areas, dtype=np.float64).reshape(-1)
    sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"areas has {a.shape[0]} entries for {n} predictions")
    if sig.shape[0] != k:
        raise ValueError(f"sigmas has {sig.shape[0]} entries for {k} keypoints")
    var = (sig * 2) ** 2
    dx = kp[None, :, :, 0] - kp[:, None, :, 0]
    dy = kp[None, :, :, 1] - kp[:, None, :, 1]
    scale = (a[:, None] + a[None, :]) / 2 + _EPS
    e = (dx**2 + dy**2) / var / scale[:, :, None] / 2
    return np.sum(np.exp(-e), axis=2) / k


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | None = None,
    thr: float = 0.9,
) -> np.ndarray:
    """Greedy OKS-NMS of the predictions of ONE image.

    Args:
        keypoints: ``(N, K, 2|3)`` predicted x, y in image pixels (a third score column is ignored).
        scores: ``(N,)`` instance scores (usually after :func:`rescore`).
        areas: ``(N,)`` areas in px^2 used as the OKS scale.
        sigmas: ``(K,)`` OKS sigmas; default the COCO sigmas (then K must be 17).
        thr: OKS above which a lower-scored prediction is suppressed (strict ``>``).

    Returns:
        int64 indices of the kept predictions, in processing (descending score) order.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if kp.ndim != 3 or kp.shape[0] != sc.shape[0]:
        raise ValueError(f"keypoints must have shape ({sc.shape[0]}, K, 2|3), got {kp.shape}")
    if sc.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if sigmas is None:
        if kp.shape[1] != COCO_SIGMAS.shape[0]:
            raise ValueError(f"{kp.shape[1]} keypoints: pass `sigmas` (the default COCO sigmas have 17)")
        sigmas = COCO_SIGMAS
    oks = prediction_oks_matrix(kp, areas, sigmas)
    order = np.argsort(sc)[::-1]
    suppressed = np.zeros(sc.shape[0], dtype=bool)
    keep: list[int] = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= oks[i] > thr
    return np.asarray(keep, dtype=np.int64)


def oks_nms_grouped(
    group_ids: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray | None = None,
    thr: float = 0.9,
) -> np.ndarray:
    """:func:`oks_nms` applied separately to each group (usually each image).

    Args:
        group_ids: ``(N,)`` group key per prediction (e.g. ``image_id``).
        keypoints, scores, areas, sigmas, thr: as in :func:`oks_nms`, for all N predictions.

    Returns:
        Sorted int64 indices (into the N inputs) of the kept predictions.
    """
    gid = np.asarray(group_ids).reshape(-1)
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    ar = np.asarray(areas, dtype=np.float64).reshape(-1)
    if not (gid.shape[0] == kp.shape[0] == sc.shape[0] == ar.shape[0]):
        raise ValueError("group_ids, keypoints, scores and areas must have the same length")
    if gid.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(gid, kind="stable")
    sorted_gid = gid[order]
    starts = np.flatnonzero(np.r_[True, sorted_gid[1:] != sorted_gid[:-1]])
    ends = np.r_[starts[1:], gid.shape[0]]
    kept: list[np.ndarray] = []
    for s, e in zip(starts, ends):
        idx = order[s:e]
        kept.append(idx[oks_nms(kp[idx], sc[idx], ar[idx], sigmas, thr)])
    return np.sort(np.concatenate(kept))

"""Object Keypoint Similarity (OKS) exactly as pycocotools' ``COCOeval.computeOks`` defines it.

Numpy only (no torch). All coordinates are pixels of the original image (the package's 0-based
image frame; OKS only uses differences and the GT box, so the origin convention does not matter as
long as predictions and GT share it).

Definition (per detection ``d``, ground truth ``g``, keypoint ``k``)::

    var_k = (2 * sigma_k) ** 2
    e_dgk = (dx ** 2 + dy ** 2) / var_k / (area_g + eps) / 2        eps = np.spacing(1)
    OKS_dg = mean over the GT's labelled keypoints (v > 0, both occluded and visible) of exp(-e_dgk)

When the GT has **no** labelled keypoint (``k1 == 0``), ``dx``/``dy`` are the distances of each
detected keypoint outside the GT box doubled on every side, ``[x - w, x + 2w] x [y - h, y + 2h]``
(0 inside), and the mean runs over all K keypoints. The detection's own visibility/score values are
ignored. ``area_g`` is the COCO segment ``area`` (or ``0.53 * w * h`` in xtcocotools' ``use_area=False``
mode; the caller chooses what to pass).

The element-wise formula is evaluated in the same operation order as pycocotools, so ``e`` is
bit-identical; the final mean can differ from pycocotools by at most a few ulp because numpy's
pairwise summation sees a differently laid-out array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COCO_SIGMAS", "compute_oks", "oks_pairs"]

#: pycocotools' default keypoint sigmas, computed exactly as pycocotools does (``array / 10.0``), so
#: they are bit-identical to ``COCOeval.params.kpt_oks_sigmas`` (``0.026`` and ``.26 / 10`` differ by 1 ulp).
COCO_SIGMAS: np.ndarray = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
COCO_SIGMAS.setflags(write=False)

_EPS = np.spacing(1)


def _as_sigmas(sigmas: np.ndarray, k: int) -> np.ndarray:
    sig = np.asarray(sigmas, dtype=np.float64)
    if sig.ndim != 1 or sig.shape[0] != k:
        raise ValueError(f"sigmas must have shape ({k},) to match the keypoints, got {sig.shape}")
    if not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise ValueError("sigmas must be finite and > 0")
    return sig


def oks_pairs(
    dt_xy: np.ndarray,
    gt_kpts: np.ndarray,
    gt_areas: np.ndarray,
    gt_boxes: np.ndarray,
    variances: np.ndarray,
) -> np.ndarray:
    """OKS of paired rows: ``out[p] = OKS(dt_xy[p], gt_kpts[p])`` (the vectorised core of :func:`compute_oks`).

    Args:
        dt_xy: ``(P, K, 2)`` float64 detected x, y in image pixels.
        gt_kpts: ``(P, K, 3)`` float64 GT x, y (image pixels) and v (COCO codes; v > 0 = labelled).
        gt_areas: ``(P,)`` GT area in px^2 (the OKS scale s^2).
        gt_boxes: ``(P, 4)`` GT box x, y, w, h in image pixels (only used when the GT has no labelled keypoint).
        variances: ``(K,)`` ``(2 * sigma) ** 2``.

    Returns:
        ``(P,)`` float64 OKS in [0, 1].
    """
    p = dt_xy.shape[0]
    if p == 0:
        return np.zeros(0, dtype=np.float64)
    xd = dt_xy[:, :, 0]
    yd = dt_xy[:, :, 1]
    xg = gt_kpts[:, :, 0]
    yg = gt_kpts[:, :, 1]
    lab = gt_kpts[:, :, 2] > 0
    k1 = np.count_nonzero(lab, axis=1)
    no_lab = k1 == 0
    dx = xd - xg
    dy = yd - yg
    if np.any(no_lab):
        # GTs without labelled keypoints: distance to the doubled box, averaged over all K keypoints.
        rows = np.flatnonzero(no_lab)
        bb = gt_boxes[rows]
        x0 = (bb[:, 0] - bb[:, 2])[:, None]
        x1 = (bb[:, 0] + bb[:, 2] * 2)[:, None]
        y0 = (bb[:, 1] - bb[:, 3])[:, None]
        y1 = (bb[:, 1] + bb[:, 3] * 2)[:, None]
        xr = xd[rows]
        yr = yd[rows]
        dx[rows] = np.maximum(0.0, x0 - xr) + np.maximum(0.0, xr - x1)
        dy[rows] = np.maximum(0.0, y0 - yr) + np.maximum(0.0, yr - y1)
    e = (dx**2 + dy**2) / variances / (gt_areas[:, None] + _EPS) / 2
    val = np.exp(-e)
    # Only labelled joints count when the GT has any; all K count otherwise.
    use = lab | no_lab[:, None]
    total = np.where(use, val, 0.0).sum(axis=1)
    count = np.where(no_lab, dt_xy.shape[1], k1)
    return total / count


def compute_oks(
    dt_kpts: np.ndarray,
    gt_kpts: np.ndarray,
    gt_areas: np.ndarray,
    gt_boxes: np.ndarray,
    sigmas: np.ndarray,
) -> np.ndarray:
    """The ``(D, G)`` OKS matrix between detections and ground truths of one image (pycocotools semantics).

    Args:
        dt_kpts: ``(D, K, 2)`` or ``(D, K, 3)`` detected keypoints, x, y in image pixels (a third
            column, the keypoint score, is ignored). Flat ``(D, 3K)`` COCO lists must be reshaped first.
        gt_kpts: ``(G, K, 3)`` GT keypoints x, y (image pixels), v (0 unlabelled, 1 occluded, 2 visible).
        gt_areas: ``(G,)`` OKS scale s^2 in px^2 (COCO segment ``area``).
        gt_boxes: ``(G, 4)`` GT boxes x, y, w, h in pixels (used only for GTs with no labelled keypoint).
        sigmas: ``(K,)`` per-keypoint sigmas (COCO definition, kappa = 2 sigma).

    Returns:
        ``(D, G)`` float64 matrix; row order = the given detection order (pycocotools sorts detections
        by score before calling; do that yourself if you compare matrices).

    Raises:
        ValueError: on inconsistent shapes or non-finite values.
    """
    dt = np.asarray(dt_kpts, dtype=np.float64)
    gt = np.asarray(gt_kpts, dtype=np.float64)
    if dt.ndim != 3 or dt.shape[2] not in (2, 3):
        raise ValueError(f"dt_kpts must have shape (D, K, 2|3), got {dt.shape}")
    if gt.ndim != 3 or gt.shape[2] != 3:
        raise ValueError(f"gt_kpts must have shape (G, K, 3), got {gt.shape}")
    d, k = dt.shape[0], dt.shape[1]
    g = gt.shape[0]
    if gt.shape[1] != k:
        raise ValueError(f"dt_kpts has {k} keypoints but gt_kpts has {gt.shape[1]}")
    areas = np.asarray(gt_areas, dtype=np.float64).reshape(-1)
    boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4) if g else np.zeros((0, 4))
    if areas.shape[0] != g or boxes.shape[0] != g:
        raise ValueError(f"gt_areas {areas.shape} and gt_boxes {boxes.shape} must have {g} rows like gt_kpts")
    var = (_as_sigmas(sigmas, k) * 2) ** 2
    for name, arr in (("dt_kpts", dt[:, :, :2]), ("gt_kpts", gt), ("gt_areas", areas), ("gt_boxes", boxes)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains non-finite values")
    if d == 0 or g == 0:
        return np.zeros((d, g), dtype=np.float64)
    di = np.repeat(np.arange(d), g)
    gi = np.tile(np.arange(g), d)
    out = oks_pairs(dt[di, :, :2], gt[gi], areas[gi], boxes[gi], var)
    return out.reshape(d, g)

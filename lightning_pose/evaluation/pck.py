"""Generic PCK (percentage of correct keypoints) with per-instance normalisers. numpy only.

Definition (docs/metrics.md#pck): for instance n and joint k with a valid GT,
``d_nk = || (p_nk - g_nk) / s_n ||_2`` where ``s_n`` is the instance normaliser (a scalar, or a per-axis pair
``(s_x, s_y)`` as in mmpose). A joint is correct iff ``d_nk < thr`` (``comparison="<"``, mmpose) or
``d_nk <= thr`` (``comparison="<="``, official MPII / HRNet).

Coordinates: predictions and GT must be in the same frame (e.g. 0-based image pixels); only differences are
used, so the frame origin does not matter, but the normaliser must be in the same pixel units.

Invalid normalisers (our documented handling, identical to mmpose ``_calc_distances``):

* a normaliser with any component exactly 0, or any non-finite component (NaN/inf), masks the whole instance
  out (its joints count neither as valid nor as correct) and it is reported in ``excluded_instances``;
* a negative normaliser component is replaced by 1e6 (so, for realistic errors, its valid joints count as
  wrong) -- this is mmpose's behaviour and keeps the valid count comparable with mmpose.

Aggregation, named explicitly because references differ:

* ``micro`` (pooled): ``sum(correct) / sum(valid)`` over all (instance, joint) pairs (MPII "Mean").
* ``macro`` (per-joint averaged): mean over joints with at least one valid instance of the per-joint ratio
  (mmpose ``keypoint_pck_accuracy`` / ``PCKAccuracy``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

__all__ = [
    "PCKCounts",
    "normalized_distances",
    "pck_counts",
    "bbox_normalizers",
    "torso_normalizers",
    "pck",
    "pck_auc",
]

Comparison = Literal["<", "<="]


@dataclass
class PCKCounts:
    """Per-joint correct/valid counts for a set of thresholds.

    Attributes:
        thresholds: ``(T,)`` float64 thresholds (in units of the normaliser).
        correct: ``(T, K)`` int64 number of correct valid joints per threshold and joint.
        valid: ``(K,)`` int64 number of valid (annotated, non-excluded) joints per joint.
        excluded_instances: number of instances dropped because their normaliser was 0 or non-finite.
        comparison: ``"<"`` or ``"<="``.
    """

    thresholds: np.ndarray
    correct: np.ndarray
    valid: np.ndarray
    excluded_instances: int = 0
    comparison: str = "<"

    def per_joint(self) -> np.ndarray:
        """``(T, K)`` per-joint ratios in [0, 1]; NaN for joints without valid instances."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.valid > 0, self.correct / np.maximum(self.valid, 1), np.nan)

    def micro(self, joints: Sequence[int] | None = None) -> np.ndarray:
        """``(T,)`` pooled ratio ``sum(correct) / sum(valid)`` over ``joints`` (all by default); NaN if none valid."""
        idx = slice(None) if joints is None else list(joints)
        valid = self.valid[idx].sum()
        if valid == 0:
            return np.full(len(self.thresholds), np.nan)
        return self.correct[:, idx].sum(axis=1) / valid

    def macro(self, joints: Sequence[int] | None = None) -> np.ndarray:
        """``(T,)`` unweighted mean over joints with >= 1 valid instance of the per-joint ratios.

        0 when no joint is valid (the mmpose convention for ``avg_acc``).
        """
        idx = np.arange(len(self.valid)) if joints is None else np.asarray(list(joints), dtype=np.int64)
        pj = self.per_joint()[:, idx]
        has = self.valid[idx] > 0
        if not has.any():
            return np.zeros(len(self.thresholds))
        return pj[:, has].mean(axis=1)

    def __add__(self, other: "PCKCounts") -> "PCKCounts":
        if not np.array_equal(self.thresholds, other.thresholds) or self.comparison != other.comparison:
            raise ValueError("cannot add PCK counts with different thresholds or comparison modes")
        return PCKCounts(
            self.thresholds,
            self.correct + other.correct,
            self.valid + other.valid,
            self.excluded_instances + other.excluded_instances,
            self.comparison,
        )


def _check_inputs(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if pred.ndim != 3 or pred.shape[-1] < 2:
        raise ValueError(f"PCK: predictions must be (N, K, 2), got shape {pred.shape}")
    if gt.ndim != 3 or gt.shape[-1] < 2:
        raise ValueError(f"PCK: ground truth must be (N, K, 2), got shape {gt.shape}")
    pred, gt = pred[..., :2], gt[..., :2]
    if pred.shape != gt.shape:
        raise ValueError(f"PCK: predictions {pred.shape} and ground truth {gt.shape} differ in shape")
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"PCK: mask must be (N, K) = {pred.shape[:2]}, got {mask.shape}")
    return pred, gt, mask


def _as_axis_normalizers(norm: np.ndarray | float, n: int) -> np.ndarray:
    arr = np.asarray(norm, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full((n, 2), float(arr))
    elif arr.ndim == 1:
        if arr.shape[0] != n:
            raise ValueError(f"PCK: normaliser has {arr.shape[0]} entries for {n} instances")
        arr = np.repeat(arr[:, None], 2, axis=1)
    elif arr.shape != (n, 2):
        raise ValueError(f"PCK: normaliser must be a scalar, (N,) or (N, 2); got {arr.shape} for N={n}")
    return arr.copy()


def normalized_distances(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, norm: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised distances ``||(p - g) / s||`` with invalid-normaliser handling (see the module docstring).

    Args:
        pred: ``(N, K, 2)`` predictions (pixels).
        gt: ``(N, K, 2)`` ground truth in the same frame (pixels).
        mask: ``(N, K)`` bool, True where the GT joint is annotated.
        norm: scalar, ``(N,)`` or ``(N, 2)`` per-axis normalisers in pixels.

    Returns:
        ``(dist, valid)``: ``(N, K)`` float64 distances (``-1`` where not valid; ``inf`` where the prediction is
        non-finite, which counts as wrong) and the ``(N, K)`` bool validity mask actually used (``mask``, minus
        instances with a 0/non-finite normaliser, minus GT joints with non-finite coordinates).
    """
    pred, gt, mask = _check_inputs(pred, gt, mask)
    n = pred.shape[0]
    s = _as_axis_normalizers(norm, n)
    bad_inst = (s == 0).any(axis=1) | ~np.isfinite(s).all(axis=1)
    valid = mask & ~bad_inst[:, None] & np.isfinite(gt).all(axis=-1)
    s[s < 0] = 1e6
    s[bad_inst] = 1.0
    dist = np.full(mask.shape, -1.0)
    with np.errstate(invalid="ignore"):
        d = np.linalg.norm((pred - gt) / s[:, None, :], axis=-1)
    d = np.where(np.isfinite(d), d, np.inf)
    dist[valid] = d[valid]
    return dist, valid


def pck_counts(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray,
    norm: np.ndarray | float,
    thresholds: Sequence[float] | float = 0.05,
    comparison: Comparison = "<",
) -> PCKCounts:
    """Per-joint correct/valid counts for every threshold.

    Args:
        pred, gt: ``(N, K, 2)`` in the same pixel frame.
        mask: ``(N, K)`` bool annotated-joint mask (COCO: ``v > 0``; MPII: ``joints_vis``).
        norm: scalar, ``(N,)`` or ``(N, 2)`` normalisers in pixels.
        thresholds: one or more thresholds, in normaliser units.
        comparison: ``"<"`` (mmpose) or ``"<="`` (official MPII).
    """
    if comparison not in ("<", "<="):
        raise ValueError(f"PCK: comparison must be '<' or '<=', got {comparison!r}")
    thr = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    dist, valid = normalized_distances(pred, gt, mask, norm)
    d = dist[valid]  # (V,)
    joint_of = np.nonzero(valid)[1]
    k = dist.shape[1]
    ok = (d[None, :] < thr[:, None]) if comparison == "<" else (d[None, :] <= thr[:, None])  # (T, V)
    correct = np.zeros((len(thr), k), dtype=np.int64)
    for t in range(len(thr)):
        correct[t] = np.bincount(joint_of[ok[t]], minlength=k)
    valid_count = valid.sum(axis=0).astype(np.int64)
    s = _as_axis_normalizers(norm, dist.shape[0])
    excluded = int(((s == 0).any(axis=1) | ~np.isfinite(s).all(axis=1)).sum())
    return PCKCounts(thr, correct, valid_count, excluded, comparison)


def bbox_normalizers(bboxes: np.ndarray, fmt: Literal["xywh", "xyxy"] = "xywh") -> np.ndarray:
    """``(N,)`` bbox PCK normalisers ``max(w, h)`` of the GT boxes (pixels).

    Args:
        bboxes: ``(N, 4)`` boxes, COCO ``x, y, w, h`` (default) or ``x1, y1, x2, y2``.
    """
    b = np.asarray(bboxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"PCK: boxes must be (N, 4), got {b.shape}")
    if fmt == "xywh":
        w, h = b[:, 2], b[:, 3]
    elif fmt == "xyxy":
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    else:
        raise ValueError(f"PCK: unknown box format {fmt!r}")
    return np.maximum(w, h)


def torso_normalizers(gt: np.ndarray, pair: tuple[int, int], pred: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` torso normalisers ``||g[a] - g[b]||`` (pixels) for the joint pair ``(a, b)``.

    When the GT torso is shorter than 1 px and ``pred`` is given, the predicted torso is used instead and a
    warning is issued (mmpose ``JhmdbPCKAccuracy`` behaviour). Without ``pred`` such instances keep their small
    (possibly 0) normaliser, which excludes them when it is exactly 0.
    """
    g = np.asarray(gt, dtype=np.float64)
    a, b = pair
    norm = np.linalg.norm(g[:, a, :2] - g[:, b, :2], axis=-1)
    if pred is not None:
        small = norm < 1
        if small.any():
            p = np.asarray(pred, dtype=np.float64)
            warnings.warn(
                f"PCK torso: {int(small.sum())} GT torso length(s) < 1 px; using the predicted torso", stacklevel=2
            )
            norm = np.where(small, np.linalg.norm(p[:, a, :2] - p[:, b, :2], axis=-1), norm)
    return norm


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray,
    *,
    normalizer: Literal["bbox", "torso", "explicit"] = "bbox",
    bboxes: np.ndarray | None = None,
    bbox_format: Literal["xywh", "xyxy"] = "xywh",
    torso_pair: tuple[int, int] | None = None,
    norm: np.ndarray | float | None = None,
    thresholds: Sequence[float] | float = 0.05,
    comparison: Comparison = "<",
) -> PCKCounts:
    """PCK with a named normaliser.

    Args:
        pred, gt: ``(N, K, 2)`` same pixel frame; mask ``(N, K)`` annotated joints.
        normalizer: ``"bbox"`` (``max(w, h)`` of ``bboxes``), ``"torso"`` (``||g[a]-g[b]||`` for ``torso_pair``,
            falling back to the predicted torso below 1 px) or ``"explicit"`` (``norm``: scalar, (N,) or (N, 2)).
        thresholds, comparison: see :func:`pck_counts`.

    Returns:
        :class:`PCKCounts`; use ``.micro()`` / ``.macro()`` / ``.per_joint()``.
    """
    if normalizer == "bbox":
        if bboxes is None:
            raise ValueError("PCK: normalizer='bbox' needs bboxes")
        s = bbox_normalizers(bboxes, bbox_format)
    elif normalizer == "torso":
        if torso_pair is None:
            raise ValueError("PCK: normalizer='torso' needs torso_pair=(a, b)")
        s = torso_normalizers(gt, torso_pair, pred)
    elif normalizer == "explicit":
        if norm is None:
            raise ValueError("PCK: normalizer='explicit' needs norm")
        s = norm
    else:
        raise ValueError(f"PCK: unknown normalizer {normalizer!r}")
    return pck_counts(pred, gt, mask, s, thresholds, comparison)


def pck_auc(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray,
    norm_factor: float = 30.0,
    num_thresholds: int = 20,
) -> float:
    """mmpose-style AUC: mean over ``thr_i = i / num_thresholds`` (i = 0..num_thresholds-1) of the **macro** PCK
    with a fixed normaliser ``norm_factor`` pixels and strict ``<`` (a left Riemann sum; 1.0 is not included).

    Returns a fraction in [0, 1].
    """
    n = np.asarray(pred).shape[0]
    thr = np.arange(num_thresholds, dtype=np.float64) / num_thresholds
    counts = pck_counts(pred, gt, mask, np.full(n, float(norm_factor)), thr, "<")
    return float(counts.macro().mean())

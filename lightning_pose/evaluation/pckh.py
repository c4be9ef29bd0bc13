"""MPII PCKh exactly as the official MATLAB evaluation (docs/metrics.md#pckh). numpy only.

Semantics (official toolkit ``evaluatePCKh.m`` / ``computePCK.m`` / ``genTablePCK.m``):

* head size ``= 0.6 * ||(x2, y2) - (x1, y1)||`` of the head rectangle (pixels);
* a joint is correct iff ``||pred - gt|| / head_size <= thr`` (**``<=``**);
* a missing GT joint is excluded; a non-finite prediction counts as wrong (distance ``inf``);
* the 14 evaluated joints exclude pelvis (6) and thorax (7); **Head = mean(upper neck, head top)**, the other
  parts are ``0.5 * (left + right)`` of the per-joint values; **UBody** is pooled over the 6 arm joints
  (shoulders, elbows, wrists), **Mean** is pooled over all 14 joints;
* ``Mean@0.1`` uses exactly 0.1; **AUC** is the trapezoid area under the pooled ("Mean") curve over
  ``thr = 0:0.01:0.5`` with the threshold axis rescaled to [0, 1], in percent.

Persons without a head box (NaN / non-positive head size) have no official value; they are excluded (all
their joints masked) and counted in ``excluded_no_headbox``.

``hrnet_compat=True`` reproduces HRNet ``lib/dataset/mpii.py`` for comparison: **Head = head top only** and
``Mean@0.1`` read at threshold index 11, i.e. **0.11** (HRNet issue #167). Everything else is identical.

Frames: ``pred`` and ``gt`` must be in the same pixel frame. The MPII GT files are MATLAB 1-based; the package
works 0-based, so add 1 to 0-based predictions before comparing to 1-based GT (or compare 0-based GT with 0-based
predictions) -- the distances are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MPII_PCKH_THRESHOLDS",
    "PCKH_TABLE_KEYS",
    "MPII_PARTS",
    "PCKhResult",
    "pckh_counts",
    "pckh_distances",
    "counts_from_distances",
    "mpii_pckh",
]

#: the official threshold grid 0:0.01:0.5 (51 values); built exactly like ``np.arange(0, 0.51, 0.01)`` in HRNet
MPII_PCKH_THRESHOLDS: np.ndarray = np.arange(0, 0.51, 0.01)

#: keys of the official table, all in percent
PCKH_TABLE_KEYS: tuple[str, ...] = (
    "Head",
    "Shoulder",
    "Elbow",
    "Wrist",
    "Hip",
    "Knee",
    "Ankle",
    "UBody",
    "Mean",
    "Mean@0.1",
    "AUC",
)

#: part -> MPII joint ids (0-based) averaged as unweighted per-joint values
MPII_PARTS: dict[str, tuple[int, ...]] = {
    "Head": (8, 9),
    "Shoulder": (12, 13),
    "Elbow": (11, 14),
    "Wrist": (10, 15),
    "Hip": (2, 3),
    "Knee": (1, 4),
    "Ankle": (0, 5),
}
_EVAL_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15)
_UBODY_JOINTS: tuple[int, ...] = (10, 11, 12, 13, 14, 15)
_IDX_05 = 50
_IDX_01 = 10
_IDX_011_HRNET = 11


@dataclass
class PCKhResult:
    """Counts on the official grid plus the table.

    Attributes:
        thresholds: ``(T,)`` thresholds (normally :data:`MPII_PCKH_THRESHOLDS`).
        correct: ``(T, 16)`` int64 correct counts per threshold and MPII joint.
        valid: ``(16,)`` int64 annotated joints per MPII joint (persons without head box excluded).
        excluded_no_headbox: number of persons excluded for lack of a head size.
        table: official keys -> percent (see :data:`PCKH_TABLE_KEYS`).
    """

    thresholds: np.ndarray
    correct: np.ndarray
    valid: np.ndarray
    excluded_no_headbox: int
    table: dict[str, float]

    def per_joint(self) -> np.ndarray:
        """``(T, 16)`` per-joint PCKh in percent (NaN for joints without annotations)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.valid > 0, 100.0 * self.correct / np.maximum(self.valid, 1), np.nan)

    def pooled(self, joints: tuple[int, ...] = _EVAL_JOINTS) -> np.ndarray:
        """``(T,)`` pooled PCKh in percent over ``joints`` (default: the 14 evaluated joints)."""
        v = self.valid[list(joints)].sum()
        if v == 0:
            return np.full(len(self.thresholds), np.nan)
        return 100.0 * self.correct[:, list(joints)].sum(axis=1) / v


def pckh_distances(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_sizes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Head-normalised distances ``||pred - gt|| / head_size``.

    Args:
        pred: ``(N, K, 2)`` predictions in pixels, same frame as ``gt``; non-finite -> distance ``inf`` (wrong).
        gt: ``(N, K, 2)`` ground truth in pixels.
        visible: ``(N, K)`` bool, True where the GT joint is annotated (MPII ``1 - jnt_missing`` / ``joints_vis``).
        head_sizes: ``(N,)`` head sizes in pixels; NaN or <= 0 excludes the person.

    Returns:
        ``(dist, has_head)``: ``(N, K)`` float64 distances, ``-1`` where the joint is not counted (not annotated,
        non-finite GT, or the person has no head size); ``(N,)`` bool persons with a usable head size.
    """
    pred = np.asarray(pred, dtype=np.float64)[..., :2]
    gt = np.asarray(gt, dtype=np.float64)[..., :2]
    vis = np.asarray(visible).astype(bool)
    hs = np.asarray(head_sizes, dtype=np.float64).reshape(-1)
    if pred.ndim != 3 or pred.shape != gt.shape:
        raise ValueError(f"PCKh: predictions {pred.shape} and ground truth {gt.shape} must both be (N, K, 2)")
    n, k = pred.shape[:2]
    if vis.shape != (n, k):
        raise ValueError(f"PCKh: visibility must be (N, K) = {(n, k)}, got {vis.shape}")
    if hs.shape != (n,):
        raise ValueError(f"PCKh: head_sizes must be (N,) = ({n},), got {hs.shape}")
    with np.errstate(invalid="ignore"):
        has_head = np.isfinite(hs) & (hs > 0)
    valid = vis & has_head[:, None] & np.isfinite(gt).all(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dist = np.linalg.norm(pred - gt, axis=-1) / np.where(has_head, hs, 1.0)[:, None]
    dist = np.where(np.isfinite(dist), dist, np.inf)
    return np.where(valid, dist, -1.0), has_head


def counts_from_distances(
    dist: np.ndarray, thresholds: np.ndarray = MPII_PCKH_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray]:
    """``(correct (T, K), valid (K,))`` int64 counts from :func:`pckh_distances` output with the ``<=`` rule."""
    dist = np.asarray(dist, dtype=np.float64)
    valid = dist >= 0
    thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    ok = (dist[None] <= thr[:, None, None]) & valid[None]  # (T, N, K)
    return ok.sum(axis=1).astype(np.int64), valid.sum(axis=0).astype(np.int64)


def pckh_counts(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_sizes: np.ndarray,
    thresholds: np.ndarray = MPII_PCKH_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Correct/valid counts with the official ``<=`` rule (arguments as :func:`pckh_distances`).

    Returns:
        ``(correct (T, K) int64, valid (K,) int64, excluded_no_headbox)``.
    """
    dist, has_head = pckh_distances(pred, gt, visible, head_sizes)
    correct, valid = counts_from_distances(dist, thresholds)
    return correct, valid, int((~has_head).sum())


def _table_from_counts(
    correct: np.ndarray, valid: np.ndarray, thresholds: np.ndarray, hrnet_compat: bool
) -> dict[str, float]:
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = np.where(valid > 0, 100.0 * correct / np.maximum(valid, 1), np.nan)  # (T, 16)

    def pooled(joints: tuple[int, ...]) -> np.ndarray:
        v = valid[list(joints)].sum()
        if v == 0:
            return np.full(len(thresholds), np.nan)
        return 100.0 * correct[:, list(joints)].sum(axis=1) / v

    i05 = int(np.argmin(np.abs(thresholds - 0.5)))
    if not np.isclose(thresholds[i05], 0.5):
        raise ValueError("PCKh: the threshold grid must contain 0.5")
    table: dict[str, float] = {}
    for part, joints in MPII_PARTS.items():
        if part == "Head" and hrnet_compat:
            table[part] = float(per_joint[i05, 9])
        else:
            table[part] = float(np.mean(per_joint[i05, list(joints)]))
    table["UBody"] = float(pooled(_UBODY_JOINTS)[i05])
    total = pooled(_EVAL_JOINTS)
    table["Mean"] = float(total[i05])
    if hrnet_compat:
        table["Mean@0.1"] = float(total[_IDX_011_HRNET])
    else:
        i01 = int(np.argmin(np.abs(thresholds - 0.1)))
        if not np.isclose(thresholds[i01], 0.1):
            raise ValueError("PCKh: the threshold grid must contain 0.1")
        table["Mean@0.1"] = float(total[i01])
    x01 = (thresholds - thresholds[0]) / (thresholds[-1] - thresholds[0])
    # trapezoid rule (= MATLAB quadgk over the linear interpolation of the curve)
    table["AUC"] = float(np.sum((x01[1:] - x01[:-1]) * (total[1:] + total[:-1]) / 2.0))
    return table


def mpii_pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_sizes: np.ndarray,
    *,
    hrnet_compat: bool = False,
) -> PCKhResult:
    """MPII PCKh table (official semantics, or HRNet's with ``hrnet_compat=True``).

    Args:
        pred: ``(N, 16, 2)`` predictions in pixels (same frame as ``gt``; MPII joint order).
        gt: ``(N, 16, 2)`` ground truth in pixels.
        visible: ``(N, 16)`` bool annotated mask.
        head_sizes: ``(N,)`` head sizes ``0.6 * head-box diagonal`` in pixels (NaN = no head box -> excluded).
        hrnet_compat: Head = head top only and ``Mean@0.1`` at 0.11, as HRNet reports.

    Returns:
        :class:`PCKhResult` with ``table`` keyed by :data:`PCKH_TABLE_KEYS` (percent).
    """
    if np.asarray(pred).ndim != 3 or np.asarray(pred).shape[1] != 16:
        raise ValueError(f"PCKh: MPII needs 16 joints, predictions have shape {np.asarray(pred).shape}")
    thr = MPII_PCKH_THRESHOLDS
    correct, valid, excluded = pckh_counts(pred, gt, visible, head_sizes, thr)
    table = _table_from_counts(correct, valid, thr, hrnet_compat)
    return PCKhResult(thr, correct, valid, excluded, table)


def table_from_counts(correct: np.ndarray, valid: np.ndarray, *, hrnet_compat: bool = False) -> dict[str, float]:
    """The PCKh table from counts accumulated on :data:`MPII_PCKH_THRESHOLDS` (e.g. summed over batches).

    Args:
        correct: ``(51, 16)`` correct counts; valid: ``(16,)`` annotated counts.
    """
    correct = np.asarray(correct)
    valid = np.asarray(valid)
    if correct.shape != (len(MPII_PCKH_THRESHOLDS), 16) or valid.shape != (16,):
        raise ValueError(f"PCKh: counts must be (51, 16) and (16,), got {correct.shape} and {valid.shape}")
    return _table_from_counts(correct, valid, MPII_PCKH_THRESHOLDS, hrnet_compat)


__all__.append("table_from_counts")

"""COCO keypoint evaluation, part 2: the vectorised kernels (pycocotools' ``cocoeval.py`` role). Numpy only.

OKS between candidate pairs, greedy matching per OKS threshold, accumulation of precision/recall over the 101
recall thresholds and the 10 summary stats, with pycocotools' exact constants (:data:`IOU_THRESHOLDS` etc.).
Inputs are the arrays of :class:`~lightning_pose.evaluation.coco_index.CocoKeypointIndex` (image pixels, px^2).
"""

from __future__ import annotations

import numpy as np

from lightning_pose.evaluation.oks import oks_pairs

__all__ = ["STAT_NAMES", "IOU_THRESHOLDS", "RECALL_THRESHOLDS", "AREA_RANGES"]

STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")

#: OKS thresholds exactly as pycocotools builds them (``IOU_THRESHOLDS[8] == 0.8999999999999999``).
IOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: The 101 recall thresholds of pycocotools.
RECALL_THRESHOLDS: np.ndarray = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: Keypoint area ranges in px^2 (all, medium, large), closed at both ends.
AREA_RANGES: np.ndarray = np.array([[0.0, 1e5**2], [32.0**2, 96.0**2], [96.0**2, 1e5**2]])
for _a in (IOU_THRESHOLDS, RECALL_THRESHOLDS, AREA_RANGES):
    _a.setflags(write=False)

_EPS = np.spacing(1)


def _lookup(sorted_ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``values`` in the sorted unique ``sorted_ids`` and whether each was found.

    Positions of values that are not found are clipped to a valid index (0 when the array is empty),
    so they can be used for indexing as long as the ``found`` mask is honoured.
    """
    if sorted_ids.size == 0:
        return np.zeros(values.shape, np.int64), np.zeros(values.shape, bool)
    pos = np.minimum(np.searchsorted(sorted_ids, values), sorted_ids.size - 1)
    return pos, sorted_ids[pos] == values


def _rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """Position of each element inside its run of equal consecutive ``keys`` (0-based)."""
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    start = np.ones(n, dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    idx = np.arange(n)
    run_start = np.maximum.accumulate(np.where(start, idx, 0))
    return idx - run_start


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, starts, counts) of the runs of a sorted key array."""
    n = keys.shape[0]
    if n == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[start, n])
    return keys[start], start, counts


def _match(
    *,
    d_unit: np.ndarray,
    d_xy: np.ndarray,
    d_oor: np.ndarray,
    g_unit: np.ndarray,
    g_kpts: np.ndarray,
    g_area: np.ndarray,
    g_box: np.ndarray,
    g_ig: np.ndarray,
    g_crowd: np.ndarray,
    variances: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' greedy per-image matching for all images, area ranges and thresholds at once.

    Detections are sorted by (unit, rank) where a unit is one (category, image) and rank the score
    order inside it; GTs are sorted by (unit, annotation order). ``d_oor``/``g_ig`` are ``(A, N)`` /
    ``(A, M)`` per area range. Returns ``matched (A, T, N)`` and ``ignored (A, T, N)`` booleans.

    Matching rule (pycocotools ``evaluateImg``): in score order, a detection takes, among the GTs still
    available (not yet matched, or crowd) with ``oks >= t``, the non-ignored one with the highest OKS (ties:
    the later GT), or if there is none the ignored one with the highest OKS. A matched detection is
    ignored iff its GT is; an unmatched one iff its area is outside the range.

    Only pairs with ``oks >= min(t)`` can ever match, so the work is restricted to them: pairs whose
    boxes are too far apart for that are skipped before OKS is computed (a provable bound, see
    :func:`_candidate_pairs`), detections and GTs without any candidate are dropped (they cannot
    change the outcome), and the sequential part loops over the rank among the remaining detections of
    a unit while every unit, area range and threshold is processed in one array operation (units
    bucketed by padded GT count).
    """
    a_n = d_oor.shape[0]
    t_n = thresholds.shape[0]
    n = d_unit.shape[0]
    matched = np.zeros((a_n, t_n, n), dtype=bool)
    ignored = np.repeat(d_oor[:, None, :], t_n, axis=1)
    if n == 0 or g_unit.shape[0] == 0:
        return matched, ignored
    c_unit, c_d, c_g, c_oks = _candidate_pairs(
        d_unit, d_xy, g_unit, g_kpts, g_area, g_box, variances, float(thresholds.min())
    )
    if c_unit.size == 0:
        return matched, ignored
    # Compress: local indices among the candidate detections / GTs of each unit (order preserved).
    ud = np.unique(c_d)  # global dt indices, sorted = (unit, rank) order
    ug = np.unique(c_g)  # global gt indices, sorted = (unit, annotation) order
    d_loc_of = _rank_in_runs(d_unit[ud])
    g_loc_of = _rank_in_runs(g_unit[ug])
    p_dl = d_loc_of[np.searchsorted(ud, c_d)]
    p_gl = g_loc_of[np.searchsorted(ug, c_g)]
    units, u_dstart, u_dn = _runs(d_unit[ud])
    _, u_gstart, u_gn = _runs(g_unit[ug])  # same unit set: every candidate unit has both
    p_u = np.searchsorted(units, c_unit)

    hit_parts: list[np.ndarray] = []
    ig_parts: list[np.ndarray] = []
    idx_parts: list[np.ndarray] = []
    gpad_of_unit = 1 << np.ceil(np.log2(np.maximum(u_gn, 1))).astype(np.int64)
    a_idx = np.arange(a_n)[:, None, None]
    for gpad in np.unique(gpad_of_unit):
        gpad = int(gpad)
        bu = np.flatnonzero(gpad_of_unit == gpad)
        # Units with more detections first, so the units active at rank r are a prefix.
        bu = bu[np.argsort(-u_dn[bu], kind="stable")]
        nb = bu.size
        dmax = int(u_dn[bu[0]])
        slot = np.full(units.size, -1, dtype=np.int64)
        slot[bu] = np.arange(nb)
        in_b = slot[p_u] >= 0
        oks_pad = np.full((nb, dmax, gpad), -1.0)  # non-candidate pairs never reach a threshold
        oks_pad[slot[p_u[in_b]], p_dl[in_b], p_gl[in_b]] = c_oks[in_b]
        gidx = np.arange(gpad)
        valid = gidx[None, :] < u_gn[bu][:, None]  # (nb, gpad)
        g_index = ug[np.where(valid, u_gstart[bu][:, None] + gidx[None, :], 0)]
        crowd_pad = g_crowd[g_index] & valid
        ig_pad = g_ig[:, g_index] | ~valid[None]  # (A, nb, gpad)
        avail = np.repeat(np.repeat(valid[None, :, None, :], a_n, axis=0), t_n, axis=2)  # (A, nb, T, gpad)
        n_active = np.count_nonzero(u_dn[bu][None, :] > np.arange(dmax)[:, None], axis=1)
        for r in range(dmax):
            m_n = int(n_active[r])
            o = oks_pad[:m_n, r, :]  # (m, gpad)
            cand = avail[:, :m_n] & (o[:, None, :] >= thresholds[None, :, None])[None]  # (A, m, T, gpad)
            cand_reg = cand & ~ig_pad[:, :m_n, None, :]
            chosen = np.where(cand_reg.any(axis=-1, keepdims=True), cand_reg, cand)
            hit = chosen.any(axis=-1)  # (A, m, T)
            val = np.where(chosen, o[None, :, None, :], -1.0)
            best = gpad - 1 - np.argmax(val[..., ::-1], axis=-1)  # ties -> the later GT
            u_idx = np.arange(m_n)[None, :, None]
            take = hit & ~crowd_pad[:m_n][u_idx, best]
            aa, uu, tt = np.nonzero(take)
            avail[aa, uu, tt, best[aa, uu, tt]] = False
            hit_parts.append(hit)
            ig_parts.append(hit & ig_pad[a_idx, u_idx, best])
            idx_parts.append(ud[u_dstart[bu[:m_n]] + r])
    d_index = np.concatenate(idx_parts)
    hit_all = np.concatenate(hit_parts, axis=1).transpose(0, 2, 1)  # (A, T, n_cand)
    ig_all = np.concatenate(ig_parts, axis=1).transpose(0, 2, 1)
    matched[:, :, d_index] = hit_all
    ignored[:, :, d_index] = np.where(hit_all, ig_all, ignored[:, :, d_index])
    return matched, ignored


def _candidate_pairs(
    d_unit: np.ndarray,
    d_xy: np.ndarray,
    g_unit: np.ndarray,
    g_kpts: np.ndarray,
    g_area: np.ndarray,
    g_box: np.ndarray,
    variances: np.ndarray,
    min_thr: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit, dt index, gt index, oks) of the same-unit pairs with ``oks >= min_thr``.

    Pruning bound (exact, applied before computing OKS): for a GT with labelled keypoints, every
    labelled keypoint lies in their bounding box and every detected keypoint in the detection's
    keypoint box, so each squared distance is >= gap^2, the squared distance between the two boxes.
    Then each ``e_k >= gap^2 / max(var) / (area + eps) / 2 = E`` and ``OKS <= exp(-E)``; pairs with
    ``E > 2`` (OKS < 0.14) are skipped. GTs without labelled keypoints (doubled-box OKS) are never skipped.
    """
    du, ds, dc = _runs(d_unit)
    gu, gs, gc = _runs(g_unit)
    common, di, gi = np.intersect1d(du, gu, assume_unique=True, return_indices=True)
    empty = (np.zeros(0, np.int64),) * 3 + (np.zeros(0),)
    if common.size == 0:
        return empty
    u_dstart, u_dn = ds[di], dc[di]
    u_gstart, u_gn = gs[gi], gc[gi]
    pairs = u_dn * u_gn
    total = int(pairs.sum())
    pu = np.repeat(np.arange(common.size), pairs)
    local = np.arange(total) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    gn_rep = u_gn[pu]
    p_r = local // gn_rep
    p_d = u_dstart[pu] + p_r
    p_g = u_gstart[pu] + (local - p_r * gn_rep)

    lab = g_kpts[:, :, 2] > 0
    has_lab = lab.any(axis=1)
    big = np.inf
    gx0 = np.where(lab, g_kpts[:, :, 0], big).min(axis=1)
    gx1 = np.where(lab, g_kpts[:, :, 0], -big).max(axis=1)
    gy0 = np.where(lab, g_kpts[:, :, 1], big).min(axis=1)
    gy1 = np.where(lab, g_kpts[:, :, 1], -big).max(axis=1)
    dx0, dx1 = d_xy[:, :, 0].min(axis=1), d_xy[:, :, 0].max(axis=1)
    dy0, dy1 = d_xy[:, :, 1].min(axis=1), d_xy[:, :, 1].max(axis=1)
    gap_x = np.maximum(0.0, np.maximum(dx0[p_d] - gx1[p_g], gx0[p_g] - dx1[p_d]))
    gap_y = np.maximum(0.0, np.maximum(dy0[p_d] - gy1[p_g], gy0[p_g] - dy1[p_d]))
    bound = (gap_x**2 + gap_y**2) / float(variances.max()) / (g_area[p_g] + _EPS) / 2
    keep = ~has_lab[p_g] | ~(bound > 2.0)
    p_d, p_g, pu = p_d[keep], p_g[keep], pu[keep]
    oks = oks_pairs(d_xy[p_d], g_kpts[p_g], g_area[p_g], g_box[p_g], variances)
    good = oks >= min_thr
    return common[pu[good]], p_d[good], p_g[good], oks[good]


def _accumulate(
    *,
    d_cat: np.ndarray,
    d_img: np.ndarray,
    d_score: np.ndarray,
    d_orig: np.ndarray,
    matched: np.ndarray,
    d_ig: np.ndarray,
    g_cat: np.ndarray,
    g_ig: np.ndarray,
    n_cat: int,
) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools ``accumulate``: precision ``(T, R, C, A)`` and recall ``(T, C, A)``, -1 where undefined."""
    a_n, t_n = g_ig.shape[0], IOU_THRESHOLDS.shape[0]
    r_n = RECALL_THRESHOLDS.shape[0]
    precision = -np.ones((t_n, r_n, n_cat, a_n))
    recall = -np.ones((t_n, n_cat, a_n))
    for c in range(n_cat):
        g_in = g_cat == c
        npig_a = np.count_nonzero(~g_ig[:, g_in], axis=1)  # (A,)
        if not np.any(npig_a):
            continue
        d_in = np.flatnonzero(d_cat == c)
        # Concatenation in image order (each image's dts in rank order) + mergesort on -score
        # == lexicographic (-score, image, result order).
        order = d_in[np.lexsort((d_orig[d_in], d_img[d_in], -d_score[d_in]))]
        nd = order.size
        for a in range(a_n):
            npig = int(npig_a[a])
            if npig == 0:
                continue
            m = matched[a][:, order]
            ig = d_ig[a][:, order]
            tps = m & ~ig
            fps = ~m & ~ig
            tp = np.cumsum(tps, axis=1).astype(np.float64)
            fp = np.cumsum(fps, axis=1).astype(np.float64)
            if nd == 0:
                recall[:, c, a] = 0.0
                precision[:, :, c, a] = 0.0
                continue
            rc = tp / npig
            pr = tp / (fp + tp + _EPS)
            recall[:, c, a] = rc[:, -1]
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(t_n):
                inds = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                inside = inds < nd
                q = np.zeros(r_n)
                q[inside] = pr[t, inds[inside]]
                precision[t, :, c, a] = q
    return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """pycocotools ``_summarizeKps``: means over entries > -1 (-1 when there are none)."""

    def mean(s: np.ndarray) -> float:
        v = s[s > -1]
        return -1.0 if v.size == 0 else float(np.mean(v))

    t50 = np.where(IOU_THRESHOLDS == 0.5)[0]
    t75 = np.where(IOU_THRESHOLDS == 0.75)[0]
    all_, med, large = 0, 1, 2
    values = [
        mean(precision[:, :, :, all_]),
        mean(precision[t50][:, :, :, all_]),
        mean(precision[t75][:, :, :, all_]),
        mean(precision[:, :, :, med]),
        mean(precision[:, :, :, large]),
        mean(recall[:, :, all_]),
        mean(recall[t50][:, :, all_]),
        mean(recall[t75][:, :, all_]),
        mean(recall[:, :, med]),
        mean(recall[:, :, large]),
    ]
    return dict(zip(STAT_NAMES, values))

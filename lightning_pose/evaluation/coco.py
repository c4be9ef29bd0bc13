"""COCO keypoint AP/AR, numerically identical to pycocotools ``COCOeval(iouType='keypoints')``.

Numpy only (no torch, no pycocotools at run time). Coordinates are pixels of the original image
(the package's 0-based image frame, shared by GT and predictions); areas are px^2.

What is reproduced (pycocotools 2.0.x ``cocoeval.py`` / ``coco.py:loadRes``; see docs/metrics.md#coco-keypoint-ap):

* OKS per (image, category) between the top ``max_dets`` detections (stable ``mergesort`` on -score,
  ties keep the order of ``results``) and every GT, including the doubled-box branch for GTs without
  labelled keypoints (:mod:`lightning_pose.evaluation.oks`).
* GT ignore flag = ``iscrowd or num_keypoints == 0`` (the ``num_keypoints`` field when present, else the
  count of v > 0); area ranges all ``[0, 1e10]``, medium ``[32^2, 96^2]``, large ``[96^2, 1e10]`` with
  closed ends on the GT ``area`` field (``0.53 * w * h`` when ``use_area=False``).
* Greedy matching per threshold ``t`` in ``np.linspace(.5, .95, 10)`` (so ``t[8] = 0.8999999999999999``)
  with ``oks >= min(t, 1 - 1e-10)``: a detection takes the best still-unmatched non-ignored GT (ties go to
  the later GT), or failing that the best ignored GT (crowd GTs can be matched repeatedly).
* Detection area = ``w * h`` of the result's ``bbox`` when the FIRST result carries a non-empty ``bbox``
  (loadRes' bbox branch; then every result must have one), else the extent of ALL its keypoints.
  Unmatched detections outside the area range are ignored.
* Accumulation with one stable sort by -score over the images in sorted-id order, 101 recall thresholds
  ``np.linspace(0, 1, 101)`` looked up with ``searchsorted(side='left')``, precision made monotone from
  the right, precision 0 beyond the maximum recall, -1 for settings without any non-ignored GT.

Layout (as pycocotools splits ``coco.py`` / ``cocoeval.py``): GT and results indexing in
:mod:`lightning_pose.evaluation.coco_index`, the kernels (OKS pairs, matching, accumulation, summary) in
:mod:`lightning_pose.evaluation.coco_kernels`; this module joins them and keeps every public name importable.

Deliberate differences from pycocotools (documented, tested):

* **GT id 0** is a normal id here. pycocotools stores matches as GT ids with 0 meaning "unmatched", so
  a detection matched to a GT whose ``id == 0`` is counted as a false positive (perfect predictions then
  score < 1). Our numbers equal pycocotools run on the same data with ids shifted to be non-zero.
* **Empty results** (``results == []``) give recall 0 / AP 0 wherever GT exists (-1 where none) instead
  of pycocotools' ``IndexError`` in ``loadRes``.
* Results whose ``image_id`` is not a GT image raise :class:`ValueError` (pycocotools asserts);
  results whose ``category_id`` is not a GT category are ignored (as in pycocotools).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from lightning_pose.evaluation.coco_index import CocoKeypointIndex
from lightning_pose.evaluation.coco_kernels import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    STAT_NAMES,
    _accumulate,
    _lookup,
    _match,
    _rank_in_runs,
    _summarize,
)

__all__ = [
    "STAT_NAMES",
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "AREA_RANGES",
    "CocoKeypointEvaluator",
    "evaluate_coco_keypoints",
]


class CocoKeypointEvaluator(CocoKeypointIndex):
    """Pre-indexed COCO keypoint ground truth; :meth:`evaluate` returns the 10 pycocotools stats.

    Args:
        gt: a loaded COCO ``person_keypoints`` json (``images``, ``annotations``, ``categories``).
            Annotation ``keypoints`` are flat ``[x, y, v] * K`` in image pixels (v: 0 unlabelled,
            1 occluded, 2 visible), ``bbox`` is ``[x, y, w, h]`` in pixels, ``area`` in px^2.
        sigmas: ``(K,)`` OKS sigmas; default pycocotools' COCO sigmas (then K must be 17).
        use_area: True = pycocotools (GT ``area`` field for OKS and area ranges). False = xtcocotools'
            ``use_area=False`` (area = ``0.53 * w * h`` of the GT box for both; for AIC/CrowdPose files
            without ``area``).
        gt_name: name used in error messages (e.g. the annotation file path).

    Raises:
        DatasetError: malformed annotations (wrong keypoint count, non-finite values, missing ``bbox``
            or ``area``), naming the annotation.
    """

    def evaluate(
        self,
        results: Sequence[Mapping] | Mapping[str, np.ndarray],
        *,
        img_ids: Iterable[int] | None = None,
        drop_zero_score: bool = False,
        max_dets: int = 20,
    ) -> dict[str, float]:
        """The 10 COCO keypoint stats (fractions in [0, 1], -1 when undefined) keyed by :data:`STAT_NAMES`.

        Args:
            results: either COCO results dicts ``{image_id, category_id, keypoints: [x, y, s] * K,
                score, optional bbox: [x, y, w, h]}`` (image pixels), or arrays ``{image_id (N,),
                keypoints (N, K, 3|2) or (N, 3K), score (N,), optional category_id (N,) (default: the single
                GT category), optional bbox (N, 4) or area (N,) (default: keypoint extent)}``.
            img_ids: evaluate only these GT images (partial runs); default all GT images.
            drop_zero_score: drop detections whose keypoint scores (3rd value) are all <= 0 before
                anything else (xtcocotools behaviour).
            max_dets: detections kept per image (pycocotools keypoint default 20).

        Raises:
            ValueError: malformed results, non-finite values, or image ids that are not GT images.
        """
        if max_dets < 1:
            raise ValueError(f"max_dets must be >= 1, got {max_dets}")
        image_id, cat_id, score, kpts, area = self._parse_results(results)
        n_img = len(self.img_ids)
        eval_img = self._eval_image_mask(img_ids)

        # --- detections: map ids, validate, filter ---------------------------------------------
        n = image_id.shape[0]
        if n:
            ipos_c, known = _lookup(self.img_ids, image_id)
            unknown = ~known
            if np.any(unknown):
                bad = np.unique(image_id[unknown])
                raise ValueError(
                    f"{int(unknown.sum())} result(s) refer to image ids that are not in {self.gt_name} "
                    f"(e.g. {bad[:5].tolist()}); results must correspond to the ground-truth images"
                )
            bad_rows = ~(np.isfinite(score) & np.isfinite(kpts[:, :, :2]).all(axis=(1, 2)) & np.isfinite(area))
            if np.any(bad_rows):
                i = int(np.argmax(bad_rows))
                raise ValueError(f"result #{i} (image_id {int(image_id[i])}): non-finite score, keypoint or area")
            cpos_c, known_cat = _lookup(self.cat_ids, cat_id)
            keep = eval_img[ipos_c] & known_cat
            if drop_zero_score:
                if kpts.shape[2] < 3:
                    raise ValueError("drop_zero_score needs keypoint scores (keypoints of shape (N, K, 3))")
                keep &= np.count_nonzero(kpts[:, :, 2] > 0, axis=1) > 0
            sel = np.flatnonzero(keep)
            d_img, d_cat, d_score = ipos_c[sel], cpos_c[sel], score[sel]
            # pycocotools: per (image, category) stable sort by -score (ties: result order), top max_dets.
            order = np.lexsort((sel, -d_score, d_img, d_cat))
            sel, d_img, d_cat, d_score = sel[order], d_img[order], d_cat[order], d_score[order]
            unit = d_cat * n_img + d_img
            rank = _rank_in_runs(unit)
            top = rank < max_dets
            sel, d_img, d_cat, d_score, unit = sel[top], d_img[top], d_cat[top], d_score[top], unit[top]
            d_xy = kpts[sel, :, :2]
            d_area = area[sel]
        else:
            sel = np.zeros(0, np.int64)
            d_img = d_cat = unit = np.zeros(0, np.int64)
            d_score = d_area = np.zeros(0)
            d_xy = np.zeros((0, self.num_keypoints, 2))

        # --- ground truth of the evaluated images ----------------------------------------------
        g_sel = np.flatnonzero(eval_img[self._g_img]) if len(self._g_img) else np.zeros(0, np.int64)
        g_unit = self._g_cat[g_sel] * n_img + self._g_img[g_sel]
        g_area = self._g_area[g_sel]
        lo, hi = AREA_RANGES[:, 0:1], AREA_RANGES[:, 1:2]
        g_ig = self._g_ignore[g_sel][None, :] | (g_area[None, :] < lo) | (g_area[None, :] > hi)  # (A, M)
        d_oor = (d_area[None, :] < lo) | (d_area[None, :] > hi)  # (A, N)

        thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
        matched, d_ig = _match(
            d_unit=unit,
            d_xy=d_xy,
            d_oor=d_oor,
            g_unit=g_unit,
            g_kpts=self._g_kpts[g_sel],
            g_area=g_area,
            g_box=self._g_box[g_sel],
            g_ig=g_ig,
            g_crowd=self._g_crowd[g_sel],
            variances=self.variances,
            thresholds=thr,
        )
        precision, recall = _accumulate(
            d_cat=d_cat,
            d_img=d_img,
            d_score=d_score,
            d_orig=sel,
            matched=matched,
            d_ig=d_ig,
            g_cat=self._g_cat[g_sel],
            g_ig=g_ig,
            n_cat=len(self.cat_ids),
        )
        return _summarize(precision, recall)

    def _eval_image_mask(self, img_ids: Iterable[int] | None) -> np.ndarray:
        n_img = len(self.img_ids)
        if img_ids is None:
            return np.ones(n_img, dtype=bool)
        req = np.unique(np.asarray(list(img_ids), dtype=np.int64))
        mask = np.zeros(n_img, dtype=bool)
        if req.size == 0:
            return mask
        pos_c, ok = _lookup(self.img_ids, req)
        if not np.all(ok):
            raise ValueError(f"img_ids {req[~ok][:5].tolist()} are not images of {self.gt_name}")
        mask[pos_c] = True
        return mask


def evaluate_coco_keypoints(
    gt: Mapping,
    results: Sequence[Mapping] | Mapping[str, np.ndarray],
    *,
    sigmas: np.ndarray | Sequence[float] | None = None,
    use_area: bool = True,
    img_ids: Iterable[int] | None = None,
    drop_zero_score: bool = False,
    max_dets: int = 20,
    gt_name: str = "<ground truth>",
) -> dict[str, float]:
    """COCO keypoint AP/AR identical to pycocotools ``COCOeval(gt, gt.loadRes(results), 'keypoints')``.

    Args:
        gt: a COCO person_keypoints json already loaded (``images``, ``annotations``, ``categories``);
            coordinates in image pixels, ``area`` in px^2.
        results: COCO results dicts ``{image_id, category_id, keypoints: [x, y, s] * K, score, optional
            bbox}`` (image pixels) or the array form described in :meth:`CocoKeypointEvaluator.evaluate`.
        sigmas: ``(K,)`` OKS sigmas, default pycocotools' COCO sigmas (K from the data must then be 17).
        use_area: False = xtcocotools ``use_area=False`` (area = 0.53 * w * h for OKS and area ranges).
        img_ids: restrict evaluation to these GT images (partial runs). Default: every GT image, and
            images without predictions count their GTs as misses.
        drop_zero_score: drop detections whose keypoint scores are all <= 0 (xtcocotools).
        max_dets: detections per image (20).
        gt_name: name of the GT source for error messages.

    Returns:
        ``{name: value}`` for :data:`STAT_NAMES`; fractions in [0, 1], -1 when undefined (no GT in range).
        Empty ``results`` give 0 (not an error, unlike pycocotools' loadRes).
    """
    ev = CocoKeypointEvaluator(gt, sigmas=sigmas, use_area=use_area, gt_name=gt_name)
    return ev.evaluate(results, img_ids=img_ids, drop_zero_score=drop_zero_score, max_dets=max_dets)

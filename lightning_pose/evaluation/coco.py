"""COCO keypoint AP/AR, numerically identical to pycocotools ``COCOeval(iouType='keypoints')``.

Numpy only (no torch, no pycocotools at run time). Coordinates are pixels of the original image
(the package's 0-based image frame, shared by GT and predictions); areas are px^2.

What is reproduced (pycocotools 2.0.x ``cocoeval.py`` / ``coco.py:loadRes``; see docs/METRICS.md §3):

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

import warnings
from itertools import chain
from typing import Iterable, Mapping, Sequence

import numpy as np

from lightning_pose.errors import DataProblem, DatasetError
from lightning_pose.evaluation.formats.common import category_num_keypoints
from lightning_pose.evaluation.oks import COCO_SIGMAS, oks_pairs

__all__ = [
    "STAT_NAMES",
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "AREA_RANGES",
    "CocoKeypointEvaluator",
    "evaluate_coco_keypoints",
]

STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")

#: OKS thresholds exactly as pycocotools builds them (``IOU_THRESHOLDS[8] == 0.8999999999999999``).
IOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: The 101 recall thresholds of pycocotools.
RECALL_THRESHOLDS: np.ndarray = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
#: Keypoint area ranges in px^2 (all, medium, large), closed at both ends.
AREA_RANGES: np.ndarray = np.array([[0.0, 1e5 ** 2], [32.0 ** 2, 96.0 ** 2], [96.0 ** 2, 1e5 ** 2]])
for _a in (IOU_THRESHOLDS, RECALL_THRESHOLDS, AREA_RANGES):
    _a.setflags(write=False)

_EPS = np.spacing(1)


# --------------------------------------------------------------------------------------------------
# Ground truth indexing
# --------------------------------------------------------------------------------------------------
def _infer_num_keypoints(gt: Mapping, sigmas: np.ndarray | None) -> int:
    if sigmas is not None:
        return int(np.asarray(sigmas).reshape(-1).shape[0])
    k = category_num_keypoints(gt)
    if k is not None:
        return k
    # The most common keypoint-list length, so that one malformed annotation is reported as such.
    lengths = [len(ann["keypoints"]) for ann in gt.get("annotations") or [] if ann.get("keypoints")]
    if lengths:
        values, counts = np.unique(lengths, return_counts=True)
        return int(values[np.argmax(counts)]) // 3
    return COCO_SIGMAS.shape[0]


class CocoKeypointEvaluator:
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

    def __init__(
        self,
        gt: Mapping,
        *,
        sigmas: np.ndarray | Sequence[float] | None = None,
        use_area: bool = True,
        gt_name: str = "<ground truth>",
    ) -> None:
        self.gt_name = gt_name
        self.use_area = bool(use_area)
        for key in ("images", "annotations", "categories"):
            if key not in gt:
                raise DatasetError(DataProblem(gt_name, "top level", f"missing the '{key}' list", "bad_value"))
        k = _infer_num_keypoints(gt, sigmas)
        if sigmas is None:
            if k != COCO_SIGMAS.shape[0]:
                raise ValueError(
                    f"{gt_name}: the data has {k} keypoints; pass `sigmas` (the default COCO sigmas have 17)"
                )
            sig = COCO_SIGMAS.copy()
        else:
            sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(sig)) or np.any(sig <= 0):
                raise ValueError("sigmas must be finite and > 0")
        self.num_keypoints = k
        self.sigmas = sig
        self.variances = (sig * 2) ** 2

        img_ids = np.array(sorted({int(im["id"]) for im in gt["images"]}), dtype=np.int64)
        cat_ids = np.array(sorted({int(c["id"]) for c in gt["categories"]}), dtype=np.int64)
        self.img_ids = img_ids
        self.cat_ids = cat_ids
        self._index_annotations(gt["annotations"])

    # ---------------------------------------------------------------------------------------------
    def _read_annotations_fast(self, anns: Sequence[Mapping]):
        """Vectorised read of well-formed annotations; ``None`` when anything needs the checked path."""
        k = self.num_keypoints
        n = len(anns)
        try:
            img = np.fromiter((a["image_id"] for a in anns), dtype=np.int64, count=n)
            cat = np.fromiter((a["category_id"] for a in anns), dtype=np.int64, count=n)
            ids = np.fromiter((a.get("id", 0) for a in anns), dtype=np.int64, count=n)
            crowd = np.fromiter((bool(a.get("iscrowd", 0)) for a in anns), dtype=bool, count=n)
            kp_lists = [a["keypoints"] for a in anns]
            if np.any(np.fromiter(map(len, kp_lists), dtype=np.int64, count=n) != 3 * k):
                return None
            kpts = np.fromiter(chain.from_iterable(kp_lists), dtype=np.float64, count=n * 3 * k).reshape(n, k, 3)
            bb_lists = [a["bbox"] for a in anns]
            if np.any(np.fromiter(map(len, bb_lists), dtype=np.int64, count=n) != 4):
                return None
            boxes = np.fromiter(chain.from_iterable(bb_lists), dtype=np.float64, count=n * 4).reshape(n, 4)
            if self.use_area:
                areas = np.fromiter((a["area"] for a in anns), dtype=np.float64, count=n)
            else:
                areas = np.zeros(n)
            nkp = np.fromiter((a.get("num_keypoints", -1) for a in anns), dtype=np.int64, count=n)
        except (KeyError, TypeError, ValueError):
            return None
        return img, cat, ids, crowd, kpts, boxes, areas, nkp

    def _index_annotations(self, anns: Sequence[Mapping]) -> None:
        fast = self._read_annotations_fast(anns)
        if fast is None:
            fast = self._read_annotations_checked(anns)
        img, cat, ids, crowd, kpts, boxes, areas, nkp = fast
        problems: list[DataProblem] = []
        finite = np.isfinite(kpts).all(axis=(1, 2)) & np.isfinite(boxes).all(axis=1) & np.isfinite(areas)
        for i in np.flatnonzero(~finite):
            problems.append(DataProblem(self.gt_name, f"annotation {ids[i]}", "non-finite keypoint, bbox or area value", "non_finite"))
        if problems:
            raise DatasetError(problems)
        self._finish_index(img, cat, ids, crowd, kpts, boxes, areas, nkp)

    def _read_annotations_checked(self, anns: Sequence[Mapping]):
        """Per-annotation read that reports every malformed annotation (raises :class:`DatasetError`)."""
        k = self.num_keypoints
        problems: list[DataProblem] = []
        n = len(anns)
        kpts = np.zeros((n, k, 3), dtype=np.float64)
        boxes = np.zeros((n, 4), dtype=np.float64)
        areas = np.zeros(n, dtype=np.float64)
        img = np.zeros(n, dtype=np.int64)
        cat = np.zeros(n, dtype=np.int64)
        ids = np.zeros(n, dtype=np.int64)
        crowd = np.zeros(n, dtype=bool)
        nkp = np.full(n, -1, dtype=np.int64)
        for i, ann in enumerate(anns):
            rec = f"annotation {ann.get('id', f'#{i}')}"
            try:
                img[i] = int(ann["image_id"])
                cat[i] = int(ann["category_id"])
                ids[i] = int(ann.get("id", 0))
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(DataProblem(self.gt_name, rec, f"missing or non-integer id field ({exc})", "bad_value"))
                continue
            crowd[i] = bool(ann.get("iscrowd", 0))
            kp = ann.get("keypoints")
            if kp is None or len(kp) == 0:
                if not crowd[i]:
                    problems.append(DataProblem(self.gt_name, rec, "has no 'keypoints'", "keypoint_count"))
                    continue
            else:
                if len(kp) != 3 * k:
                    problems.append(DataProblem(
                        self.gt_name, rec, f"has {len(kp)} keypoint values, expected {3 * k} (K={k})", "keypoint_count"))
                    continue
                kpts[i] = np.asarray(kp, dtype=np.float64).reshape(k, 3)
            bb = ann.get("bbox")
            if bb is None or len(bb) != 4:
                problems.append(DataProblem(self.gt_name, rec, "missing or malformed 'bbox' (need x, y, w, h)", "empty_box"))
                continue
            boxes[i] = bb
            if self.use_area:
                if "area" not in ann:
                    problems.append(DataProblem(
                        self.gt_name, rec, "has no 'area' (use use_area=False for AIC/CrowdPose-style files)", "bad_value"))
                    continue
                areas[i] = float(ann["area"])
            if "num_keypoints" in ann:
                nkp[i] = int(ann["num_keypoints"])
        if problems:
            raise DatasetError(problems)
        return img, cat, ids, crowd, kpts, boxes, areas, nkp

    def _finish_index(self, img, cat, ids, crowd, kpts, boxes, areas, nkp) -> None:
        counted = np.count_nonzero(kpts[:, :, 2] > 0, axis=1)
        have = nkp >= 0
        mismatch = have & (nkp != counted)
        if np.any(mismatch):
            warnings.warn(
                f"{self.gt_name}: {int(mismatch.sum())} annotation(s) (first id {int(ids[np.argmax(mismatch)])}) have a "
                "'num_keypoints' field that differs from the number of keypoints with v > 0; the field is used "
                "(pycocotools behaviour; xtcocotools recounts)", stacklevel=3)
        nkp = np.where(have, nkp, counted)
        if not self.use_area:
            # xtcocotools: tmparea = bbox[3] * bbox[2] * 0.53 (OKS) and bbox[2] * bbox[3] * 0.53 (ranges).
            areas = boxes[:, 2] * boxes[:, 3] * 0.53

        img_pos_c, known_img = _lookup(self.img_ids, img)
        cat_pos_c, known_cat = _lookup(self.cat_ids, cat)
        if not np.all(known_img):
            warnings.warn(
                f"{self.gt_name}: {int((~known_img).sum())} annotation(s) refer to images not in 'images' "
                f"(first: image_id {int(img[np.argmin(known_img)])}); they are not evaluated", stacklevel=3)
        keep = np.flatnonzero(known_img & known_cat)
        # Order: category, image, then annotation order (pycocotools' per-image GT order).
        order = keep[np.lexsort((keep, img_pos_c[keep], cat_pos_c[keep]))]
        self._g_img = img_pos_c[order]
        self._g_cat = cat_pos_c[order]
        self._g_ids = ids[order]
        self._g_kpts = kpts[order]
        self._g_box = boxes[order]
        self._g_area = areas[order]
        self._g_ignore = crowd[order] | (nkp[order] == 0)
        self._g_crowd = crowd[order]

    # ---------------------------------------------------------------------------------------------
    def _parse_results(self, results: Sequence[Mapping] | Mapping[str, np.ndarray]):
        """Results -> (image_id (N,), category_id (N,), score (N,), kpts (N, K, 2|3), area (N,))."""
        k = self.num_keypoints
        if isinstance(results, Mapping):
            return self._parse_arrays(results)
        n = len(results)
        if n == 0:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, k, 3)), np.zeros(0))
        try:
            image_id = np.fromiter((r["image_id"] for r in results), dtype=np.int64, count=n)
            cat_id = np.fromiter((r["category_id"] for r in results), dtype=np.int64, count=n)
            score = np.fromiter((r["score"] for r in results), dtype=np.float64, count=n)
            kp_lists = [r["keypoints"] for r in results]
            if np.any(np.fromiter(map(len, kp_lists), dtype=np.int64, count=n) != 3 * k):
                raise ValueError("keypoint count")
            flat = np.fromiter(chain.from_iterable(kp_lists), dtype=np.float64, count=n * 3 * k)
        except (KeyError, TypeError, ValueError):
            self._explain_bad_result(results)
            raise  # _explain_bad_result always raises; this keeps type checkers happy
        kpts = flat.reshape(n, k, 3)
        first_bbox = results[0].get("bbox")
        if first_bbox is not None and len(first_bbox) > 0:
            try:
                bb = np.fromiter(chain.from_iterable(r["bbox"] for r in results), dtype=np.float64, count=4 * n)
            except (KeyError, TypeError, ValueError):
                bad = next(i for i, r in enumerate(results) if len(r.get("bbox") or ()) != 4)
                raise ValueError(
                    f"result #{bad} (image_id {results[bad].get('image_id')}): the first result has a 'bbox', so every "
                    "result needs a 4-value 'bbox' [x, y, w, h] (pycocotools loadRes takes the detection area from it)"
                ) from None
            bb = bb.reshape(n, 4)
            area = bb[:, 2] * bb[:, 3]
        else:
            area = _keypoint_extent_area(kpts)
        return image_id, cat_id, score, kpts, area

    def _explain_bad_result(self, results: Sequence[Mapping]) -> None:
        k = self.num_keypoints
        for i, r in enumerate(results):
            where = f"result #{i} (image_id {r.get('image_id', '?') if isinstance(r, Mapping) else '?'})"
            if not isinstance(r, Mapping):
                raise ValueError(f"{where}: is a {type(r).__name__}, expected a dict")
            for key in ("image_id", "category_id", "keypoints", "score"):
                if key not in r:
                    raise ValueError(f"{where}: missing '{key}'")
            try:
                int(r["image_id"]), int(r["category_id"]), float(r["score"])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: image_id/category_id must be integers and score a number") from None
            kp = r["keypoints"]
            if len(kp) != 3 * k:
                raise ValueError(f"{where}: has {len(kp)} keypoint values, expected {3 * k} ([x, y, score] * {k})")
            try:
                np.asarray(kp, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: keypoints must be numbers") from None
        raise ValueError("results could not be converted to arrays")

    def _parse_arrays(self, res: Mapping[str, np.ndarray]):
        k = self.num_keypoints
        for key in ("image_id", "keypoints", "score"):
            if key not in res:
                raise ValueError(f"results arrays: missing '{key}'")
        image_id = np.asarray(res["image_id"]).reshape(-1).astype(np.int64)
        n = image_id.shape[0]
        kpts = np.asarray(res["keypoints"], dtype=np.float64)
        if kpts.ndim == 2 and kpts.shape[1] == 3 * k:
            kpts = kpts.reshape(n, k, 3)
        if kpts.shape not in ((n, k, 3), (n, k, 2)):
            raise ValueError(f"results arrays: 'keypoints' must be ({n}, {k}, 2|3), got {kpts.shape}")
        score = np.asarray(res["score"], dtype=np.float64).reshape(-1)
        if score.shape[0] != n:
            raise ValueError(f"results arrays: 'score' has {score.shape[0]} entries for {n} image ids")
        if "category_id" in res and res["category_id"] is not None:
            cat_id = np.asarray(res["category_id"]).reshape(-1).astype(np.int64)
            if cat_id.shape[0] != n:
                raise ValueError(f"results arrays: 'category_id' has {cat_id.shape[0]} entries for {n} image ids")
        else:
            if len(self.cat_ids) != 1:
                raise ValueError("results arrays: 'category_id' is required when the GT has several categories")
            cat_id = np.full(n, self.cat_ids[0], dtype=np.int64)
        if res.get("area") is not None and res.get("bbox") is not None:
            raise ValueError("results arrays: give either 'area' or 'bbox', not both")
        if res.get("area") is not None:
            area = np.asarray(res["area"], dtype=np.float64).reshape(-1)
        elif res.get("bbox") is not None:
            bb = np.asarray(res["bbox"], dtype=np.float64).reshape(n, 4)
            area = bb[:, 2] * bb[:, 3]
        else:
            area = _keypoint_extent_area(kpts)
        if area.shape[0] != n:
            raise ValueError(f"results arrays: 'area' has {area.shape[0]} entries for {n} image ids")
        return image_id, cat_id, score, kpts, area

    # ---------------------------------------------------------------------------------------------
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
                    f"(e.g. {bad[:5].tolist()}); results must correspond to the ground-truth images")
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
            d_unit=unit, d_xy=d_xy, d_oor=d_oor,
            g_unit=g_unit, g_kpts=self._g_kpts[g_sel], g_area=g_area, g_box=self._g_box[g_sel],
            g_ig=g_ig, g_crowd=self._g_crowd[g_sel], variances=self.variances, thresholds=thr,
        )
        precision, recall = _accumulate(
            d_cat=d_cat, d_img=d_img, d_score=d_score, d_orig=sel, matched=matched, d_ig=d_ig,
            g_cat=self._g_cat[g_sel], g_ig=g_ig, n_cat=len(self.cat_ids),
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


# --------------------------------------------------------------------------------------------------
# Vectorised kernels
# --------------------------------------------------------------------------------------------------
def _keypoint_extent_area(kpts: np.ndarray) -> np.ndarray:
    """loadRes' keypoint branch: (max x - min x) * (max y - min y) over ALL keypoints (any score)."""
    if kpts.shape[0] == 0:
        return np.zeros(0)
    x = kpts[:, :, 0]
    y = kpts[:, :, 1]
    return (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))


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
    c_unit, c_d, c_g, c_oks = _candidate_pairs(d_unit, d_xy, g_unit, g_kpts, g_area, g_box, variances,
                                               float(thresholds.min()))
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
    bound = (gap_x ** 2 + gap_y ** 2) / float(variances.max()) / (g_area[p_g] + _EPS) / 2
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

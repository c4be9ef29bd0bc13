"""COCO keypoint evaluation, part 1: loading and indexing the ground truth and the results (pycocotools'
``coco.py`` / ``loadRes`` role). Numpy only.

:class:`CocoKeypointIndex` validates a COCO GT dict once (malformed annotations raise
:class:`~lightning_pose.errors.DatasetError` naming them) and keeps it as sorted arrays; ``_parse_results`` turns
results (dicts or arrays) into arrays with loadRes' detection areas. The matching and accumulation kernels are in
:mod:`lightning_pose.evaluation.coco_kernels`, the evaluator that joins both in :mod:`lightning_pose.evaluation.coco`.
"""

from __future__ import annotations

import warnings
from itertools import chain
from typing import Mapping, Sequence

import numpy as np

from lightning_pose.errors import DataProblem, DatasetError
from lightning_pose.evaluation.coco_kernels import _lookup
from lightning_pose.evaluation.formats.common import category_num_keypoints
from lightning_pose.evaluation.oks import COCO_SIGMAS

__all__ = ["CocoKeypointIndex"]


def _infer_num_keypoints(gt: Mapping, sigmas: np.ndarray | Sequence[float] | None) -> int:
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


class CocoKeypointIndex:
    """Pre-indexed COCO keypoint ground truth; arguments as
    :class:`~lightning_pose.evaluation.coco.CocoKeypointEvaluator` (which adds ``evaluate``)."""

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
            problems.append(
                DataProblem(
                    self.gt_name, f"annotation {ids[i]}", "non-finite keypoint, bbox or area value", "non_finite"
                )
            )
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
                    problems.append(
                        DataProblem(
                            self.gt_name,
                            rec,
                            f"has {len(kp)} keypoint values, expected {3 * k} (K={k})",
                            "keypoint_count",
                        )
                    )
                    continue
                kpts[i] = np.asarray(kp, dtype=np.float64).reshape(k, 3)
            bb = ann.get("bbox")
            if bb is None or len(bb) != 4:
                problems.append(
                    DataProblem(self.gt_name, rec, "missing or malformed 'bbox' (need x, y, w, h)", "empty_box")
                )
                continue
            boxes[i] = bb
            if self.use_area:
                if "area" not in ann:
                    problems.append(
                        DataProblem(
                            self.gt_name,
                            rec,
                            "has no 'area' (use use_area=False for AIC/CrowdPose-style files)",
                            "bad_value",
                        )
                    )
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
                "(pycocotools behaviour; xtcocotools recounts)",
                stacklevel=3,
            )
        nkp = np.where(have, nkp, counted)
        if not self.use_area:
            # xtcocotools: tmparea = bbox[3] * bbox[2] * 0.53 (OKS) and bbox[2] * bbox[3] * 0.53 (ranges).
            areas = boxes[:, 2] * boxes[:, 3] * 0.53

        img_pos_c, known_img = _lookup(self.img_ids, img)
        cat_pos_c, known_cat = _lookup(self.cat_ids, cat)
        if not np.all(known_img):
            warnings.warn(
                f"{self.gt_name}: {int((~known_img).sum())} annotation(s) refer to images not in 'images' "
                f"(first: image_id {int(img[np.argmin(known_img)])}); they are not evaluated",
                stacklevel=3,
            )
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


def _keypoint_extent_area(kpts: np.ndarray) -> np.ndarray:
    """loadRes' keypoint branch: (max x - min x) * (max y - min y) over ALL keypoints (any score)."""
    if kpts.shape[0] == 0:
        return np.zeros(0)
    x = kpts[:, :, 0]
    y = kpts[:, :, 1]
    return (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))

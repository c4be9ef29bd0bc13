"""The constant-predictor baseline and the left/right swap rate (numpy only, no torch).

**Constant predictor.** Every keypoint ``k`` is predicted at the same place relative to the person box: the mean,
over the training persons with ``k`` labelled, of ``((x - x0) / w, (y - y0) / h)`` where ``x0, y0, w, h`` is the
person's GT box (COCO ``xywh``, image pixels). For a validation person it is placed back in that person's GT box.
It needs no image, so any method that does not beat it by a wide margin has not learnt pose. Its scores are
the metrics of these predictions (COCO AP with GT boxes, bbox-normalised PCK), computed exactly as for a model.

**Left/right swap.** For a flip pair ``(l, r)`` with both joints labelled, the prediction is *swapped* when the
crossed assignment is closer than the straight one: ``|p_l - g_r| + |p_r - g_l| < |p_l - g_l| + |p_r - g_r|``.
Pairs whose two GT joints are closer than ``min_separation`` x the box size (``max(w, h)``) are ambiguous and
left out. *Collapsed* pairs are those whose two predictions are closer than ``collapse_tol`` x the box size (the
model put both joints on the same spot, typically the body's midline).

All coordinates are 0-based image-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .coco import evaluate_coco_keypoints
from .pck import pck

__all__ = [
    "ConstantPosePredictor",
    "SwapStats",
    "left_right_swaps",
    "constant_baseline_metrics",
    "persons_from_coco",
]


def persons_from_coco(
    gt: Mapping, num_keypoints: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Non-crowd persons with at least one labelled keypoint of a COCO keypoint dict.

    Returns:
        ``keypoints (N, K, 3)`` (x, y px, v), ``boxes (N, 4)`` xywh px, ``image_ids (N,)``, ``ann_ids (N,)``,
        ``areas (N,)`` px^2, in annotation order.
    """
    kps, boxes, img_ids, ann_ids, areas = [], [], [], [], []
    for a in gt.get("annotations", []):
        if a.get("iscrowd", 0):
            continue
        k = np.asarray(a.get("keypoints", []), dtype=np.float64).reshape(-1, 3)
        if num_keypoints is not None and k.shape[0] != num_keypoints:
            raise ValueError(f"annotation {a.get('id')}: {k.shape[0]} keypoints, expected {num_keypoints}")
        if not (k[:, 2] > 0).any():
            continue
        kps.append(k)
        boxes.append(np.asarray(a["bbox"], dtype=np.float64))
        img_ids.append(int(a["image_id"]))
        ann_ids.append(int(a.get("id", len(ann_ids) + 1)))
        areas.append(float(a.get("area", 0.0)))
    k = num_keypoints if num_keypoints is not None else (kps[0].shape[0] if kps else 0)
    return (
        np.asarray(kps, dtype=np.float64).reshape(-1, k, 3),
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        np.asarray(img_ids, dtype=np.int64),
        np.asarray(ann_ids, dtype=np.int64),
        np.asarray(areas, dtype=np.float64),
    )


@dataclass(frozen=True)
class ConstantPosePredictor:
    """Mean training pose in box-normalised coordinates (see the module doc).

    Attributes:
        mean_pose: ``(K, 2)`` mean ``((x - x0) / w, (y - y0) / h)`` per keypoint (box units, 0..1 inside the
            box); joints never labelled in training get the box centre (0.5, 0.5).
        counts: ``(K,)`` number of training persons that labelled each keypoint.
    """

    mean_pose: np.ndarray
    counts: np.ndarray

    @classmethod
    def fit(cls, keypoints: np.ndarray, boxes: np.ndarray) -> "ConstantPosePredictor":
        """From training ``keypoints (N, K, 3)`` and GT ``boxes (N, 4)`` (xywh, image px)."""
        kp = np.asarray(keypoints, dtype=np.float64)
        b = np.asarray(boxes, dtype=np.float64)
        if kp.ndim != 3 or kp.shape[2] != 3 or b.shape != (kp.shape[0], 4):
            raise ValueError(
                f"constant baseline: keypoints must be (N, K, 3) and boxes (N, 4), got {kp.shape} and {b.shape}"
            )
        ok_box = (b[:, 2] > 0) & (b[:, 3] > 0)
        kp, b = kp[ok_box], b[ok_box]
        rel = (kp[:, :, :2] - b[:, None, :2]) / b[:, None, 2:4]
        lab = kp[:, :, 2] > 0
        counts = lab.sum(axis=0)
        sums = np.where(lab[:, :, None], rel, 0.0).sum(axis=0)
        mean = np.full((kp.shape[1], 2), 0.5)
        seen = counts > 0
        mean[seen] = sums[seen] / counts[seen, None]
        return cls(mean_pose=mean, counts=counts.astype(np.int64))

    def predict(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, K, 2)`` image-frame predictions for GT ``boxes (N, 4)`` (xywh, px)."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return b[:, None, :2] + self.mean_pose[None] * b[:, None, 2:4]


@dataclass(frozen=True)
class SwapStats:
    """Left/right pair statistics (see the module doc).

    Attributes:
        pairs: number of evaluated pairs (both joints labelled, GT joints separated enough).
        swapped: pairs whose crossed assignment is closer than the straight one.
        collapsed: pairs whose two predictions (nearly) coincide.
        per_pair_swapped: ``(P,)`` swapped counts per flip pair (order of ``flip_pairs``); ``per_pair_total`` alike.
    """

    pairs: int
    swapped: int
    collapsed: int
    per_pair_swapped: np.ndarray
    per_pair_total: np.ndarray

    @property
    def swap_rate(self) -> float:
        """Fraction of evaluated pairs that are swapped (NaN when there is none)."""
        return self.swapped / self.pairs if self.pairs else float("nan")

    @property
    def collapse_rate(self) -> float:
        return self.collapsed / self.pairs if self.pairs else float("nan")


def left_right_swaps(
    pred: np.ndarray,
    gt: np.ndarray,
    boxes: np.ndarray,
    flip_pairs: Sequence[tuple[int, int]],
    *,
    min_separation: float = 0.02,
    collapse_tol: float = 0.005,
) -> SwapStats:
    """Swap statistics of ``pred (N, K, 2)`` against ``gt (N, K, 3)`` with GT ``boxes (N, 4)`` xywh (px).

    ``min_separation`` and ``collapse_tol`` are fractions of the box size ``max(w, h)``.
    """
    p = np.asarray(pred, dtype=np.float64)[..., :2]
    g = np.asarray(gt, dtype=np.float64)
    size = np.maximum(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[:, 2:4].max(axis=1), 1e-9)
    if p.shape[:2] != g.shape[:2] or size.shape[0] != p.shape[0]:
        raise ValueError(f"swap rate: pred {p.shape}, gt {g.shape} and boxes ({size.shape[0]}) disagree")
    per_sw, per_tot, collapsed = [], [], 0
    for a, b in flip_pairs:
        both = (g[:, a, 2] > 0) & (g[:, b, 2] > 0)
        sep = np.linalg.norm(g[:, a, :2] - g[:, b, :2], axis=1)
        use = both & (sep >= min_separation * size)
        d = lambda u, v: np.linalg.norm(u - v, axis=1)  # noqa: E731
        straight = d(p[:, a], g[:, a, :2]) + d(p[:, b], g[:, b, :2])
        crossed = d(p[:, a], g[:, b, :2]) + d(p[:, b], g[:, a, :2])
        per_sw.append(int((use & (crossed < straight)).sum()))
        per_tot.append(int(use.sum()))
        collapsed += int((use & (d(p[:, a], p[:, b]) < collapse_tol * size)).sum())
    sw, tot = np.asarray(per_sw, np.int64), np.asarray(per_tot, np.int64)
    return SwapStats(
        pairs=int(tot.sum()), swapped=int(sw.sum()), collapsed=collapsed, per_pair_swapped=sw, per_pair_total=tot
    )


def constant_baseline_metrics(
    train_gt: Mapping,
    val_gt: Mapping,
    sigmas: Sequence[float] | None,
    flip_pairs: Iterable[tuple[int, int]] = (),
    pck_thresholds: Sequence[float] = (0.05, 0.1, 0.2),
) -> dict[str, float]:
    """Metrics of the constant predictor fitted on ``train_gt`` and placed in the GT boxes of ``val_gt``.

    Both are COCO keypoint dicts (image pixels). Returns ``AP``, ``AP50``, ... (when ``sigmas`` is given; every
    prediction scores 1), ``PCK@t`` (bbox-normalised ``max(w, h)``, pooled, strict ``<``) and ``swap_rate``.
    """
    k = len(sigmas) if sigmas is not None else None
    tr_kp, tr_box, *_ = persons_from_coco(train_gt, k)
    if tr_kp.shape[0] == 0:
        raise ValueError("constant baseline: the training annotations hold no labelled person")
    model = ConstantPosePredictor.fit(tr_kp, tr_box)
    kp, boxes, img_ids, _ann_ids, _areas = persons_from_coco(val_gt, tr_kp.shape[1])
    pred = model.predict(boxes)
    out: dict[str, float] = {}
    if sigmas is not None:
        results = {
            "image_id": img_ids,
            "keypoints": np.concatenate([pred, np.ones(pred.shape[:2] + (1,))], axis=2),
            "score": np.ones(len(img_ids)),
        }
        out.update(evaluate_coco_keypoints(val_gt, _as_result_dicts(results), sigmas=np.asarray(sigmas)))
    counts = pck(pred, kp[:, :, :2], kp[:, :, 2] > 0, normalizer="bbox", bboxes=boxes, thresholds=pck_thresholds)
    for t, v in zip(pck_thresholds, counts.micro()):
        out[f"PCK@{t:g}"] = float(v)
    pairs = list(flip_pairs)
    if pairs:
        out["swap_rate"] = left_right_swaps(pred, kp, boxes, pairs).swap_rate
    return out


def _as_result_dicts(res: Mapping[str, np.ndarray]) -> list[dict]:
    return [
        {"image_id": int(i), "category_id": 1, "keypoints": [float(v) for v in k.reshape(-1)], "score": float(s)}
        for i, k, s in zip(res["image_id"], res["keypoints"], res["score"])
    ]

"""AI Challenger 2017 keypoint score: a numpy port of the FINAL official ``keypoint_eval.py`` (commit 0cffc80).

Numpy only. Coordinates are pixels of the original image (any origin, shared by GT and predictions).
The 14 AIC keypoints are in the release order (0 r_shoulder ... 12 head_top, 13 neck).

Semantics (docs/metrics.md#ai-challenger):

* Raw visibility codes: 1 visible, 2 labelled but occluded, 3 not labelled. Only ``v == 1`` joints count.
* Per GT human ``i`` and predicted human ``j``::

      scale = float32((y2 - y1) * (x2 - x1))                       (GT box area, px^2, float32)
      oks_ij = mean over visible k of exp(-d_ijk^2 / 2 / delta_k^2 / (scale + 1)),   delta = 2 * sigma

  and ``oks_ij = 0`` for every ``j`` when the GT has no visible joint (the GT still counts).
* No scores, no one-to-one matching: each GT takes ``max_j oks_ij`` (one prediction may serve several GTs).
* Per image the denominator grows by ``max(#GT, #pred)`` (extra predictions are penalised); an image with no
  predictions (absent, or present with zero humans) adds ``#GT`` zeros.
* ``score = mean over t in linspace(.5, .95, 10) of #(oks > t) / total`` (strict ``>``).

Deviation (documented): image ids are compared after removing a trailing file extension on both sides
(the official script strips it for its membership test only and then fails on the lookup).
"""

from __future__ import annotations

import warnings
from typing import Hashable, Mapping, Sequence

import numpy as np

from lightning_pose.errors import DataProblem, DatasetError

# coco_style_aic_to_release is re-exported: it lives with the other AIC conversions
from lightning_pose.evaluation.formats.aic import coco_style_aic_to_release, release_person_problems
from lightning_pose.skeletons import AIC

__all__ = [
    "AIC_SIGMAS",
    "aic_official_score",
    "aic_score_from_arrays",
    "coco_style_aic_to_release",
]

#: Official AIC sigmas (the script uses ``delta = 2 * sigma``): the AIC keypoint set's, one table in
#: :mod:`lightning_pose.skeletons` (the test checks them against the official script's values).
AIC_SIGMAS: np.ndarray = AIC.sigmas_array()
AIC_SIGMAS.setflags(write=False)
_NUM_KPTS = 14
_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _image_oks(gt_kpts: np.ndarray, gt_boxes: np.ndarray, pred_xy: np.ndarray) -> np.ndarray:
    """``(G, P)`` official OKS for one image (G >= 1, P >= 1).

    Args:
        gt_kpts: ``(G, 14, 3)`` x, y, raw v (1 visible, 2 occluded, 3 unlabelled).
        gt_boxes: ``(G, 4)`` x1, y1, x2, y2 in pixels.
        pred_xy: ``(P, 14, 2)`` predicted x, y in pixels.
    """
    delta = 2 * AIC_SIGMAS
    visible = gt_kpts[:, :, 2] == 1  # (G, K)
    # float32 scale exactly as the official script: np.float32((y2 - y1) * (x2 - x1)), then + 1 in float32.
    area = (gt_boxes[:, 3] - gt_boxes[:, 1]) * (gt_boxes[:, 2] - gt_boxes[:, 0])
    scale1 = (area.astype(np.float32) + np.float32(1)).astype(np.float64)  # (G,)
    dis = np.sum((gt_kpts[:, None, :, :2] - pred_xy[None, :, :, :]) ** 2, axis=3)  # (G, P, K)
    val = np.exp(-dis / 2 / delta[None, None, :] ** 2 / scale1[:, None, None])
    n_vis = visible.sum(axis=1)  # (G,)
    total = np.where(visible[:, None, :], val, 0.0).sum(axis=2)
    return np.divide(total, n_vis[:, None], out=np.zeros_like(total), where=n_vis[:, None] > 0)


def aic_score_from_arrays(
    gt: Mapping[Hashable, tuple[np.ndarray, np.ndarray]],
    preds: Mapping[Hashable, np.ndarray],
) -> float:
    """Official AIC score from arrays.

    Args:
        gt: ``{image_key: (kpts (G, 14, 3) x, y, raw v in {1, 2, 3}, boxes (G, 4) x1, y1, x2, y2)}`` in pixels.
            Every key is an evaluated image, in any order.
        preds: ``{image_key: (P, 14, 2) x, y}`` in pixels (a third column is ignored). Keys absent from
            ``gt`` are ignored (as in the official script).

    Returns:
        The score in [0, 1].
    """
    oks_parts: list[np.ndarray] = []
    total = 0
    for key, (kpts, boxes) in gt.items():
        kp = np.asarray(kpts, dtype=np.float64).reshape(-1, _NUM_KPTS, 3)
        bx = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if bx.shape[0] != kp.shape[0]:
            raise ValueError(f"image {key!r}: {kp.shape[0]} keypoint sets but {bx.shape[0]} boxes")
        g = kp.shape[0]
        pr = preds.get(key)
        p = 0 if pr is None else int(np.asarray(pr).shape[0])
        if p == 0:
            # Absent image: #GT zeros. Present with zero humans: the official oks.T adds no entries but
            # counts max(0, #GT) = #GT in the denominator.
            if pr is None:
                oks_parts.append(np.zeros(g))
            total += g
            continue
        pxy = np.asarray(pr, dtype=np.float64)
        if pxy.ndim != 3 or pxy.shape[1] != _NUM_KPTS or pxy.shape[2] not in (2, 3):
            raise ValueError(f"image {key!r}: predictions must have shape (P, 14, 2|3), got {pxy.shape}")
        if not np.all(np.isfinite(pxy[:, :, :2])):
            raise ValueError(f"image {key!r}: non-finite predicted coordinates")
        if g:
            oks_parts.append(_image_oks(kp, bx, pxy[:, :, :2]).max(axis=1))
        total += max(g, p)
    if total == 0:
        raise ValueError("nothing to evaluate: the ground truth has no humans and there are no predictions")
    oks_all = np.concatenate(oks_parts) if oks_parts else np.zeros(0)
    # Same expression as the official script (np.sum of a bool array divided by a float32 count).
    acc = [np.sum(oks_all > t) / np.float32(total) for t in _THRESHOLDS]
    return float(np.mean(acc))


def _strip_ext(image_id: object) -> str:
    return str(image_id).split(".")[0]


def _release_gt_arrays(gt: Sequence[Mapping], name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    problems: list[DataProblem] = []
    for idx, entry in enumerate(gt):
        if "image_id" not in entry:
            problems.append(DataProblem(name, f"entry #{idx}", "missing 'image_id'", "bad_value"))
            continue
        key = _strip_ext(entry["image_id"])
        rec = f"image {entry['image_id']}"
        if key in out:
            problems.append(DataProblem(name, rec, "image listed twice", "duplicate_id"))
            continue
        kp_annos = entry.get("keypoint_annotations") or {}
        box_annos = entry.get("human_annotations") or {}
        kpts = np.zeros((len(kp_annos), _NUM_KPTS, 3))
        boxes = np.zeros((len(kp_annos), 4))
        ok = True
        for i, (human, values) in enumerate(kp_annos.items()):
            # the one release-person check (official semantics: any visibility code, only v == 1 counts)
            found = release_person_problems(values, box_annos.get(human), check_codes=False)
            if found:
                problems.extend(DataProblem(name, f"{rec}, {human}", problem, kind) for problem, kind in found)
                ok = False
                continue
            kpts[i] = np.asarray(values, dtype=np.float64).reshape(_NUM_KPTS, 3)
            boxes[i] = np.asarray(box_annos[human], dtype=np.float64)
        if ok:
            out[key] = (kpts, boxes)
    if problems:
        raise DatasetError(problems)
    return out


def _release_pred_arrays(preds: Sequence[Mapping]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    dup: list[str] = []
    for idx, entry in enumerate(preds):
        if "image_id" not in entry:
            raise ValueError(f"prediction entry #{idx}: missing 'image_id'")
        key = _strip_ext(entry["image_id"])
        annos = entry.get("keypoint_annotations") or {}
        arr = np.zeros((len(annos), _NUM_KPTS, 2))
        for i, (human, values) in enumerate(annos.items()):
            if len(values) != 3 * _NUM_KPTS:
                raise ValueError(
                    f"prediction for image {entry['image_id']}, {human}: {len(values)} values, expected 42 ([x, y, s] * 14)"
                )
            arr[i] = np.asarray(values, dtype=np.float64).reshape(_NUM_KPTS, 3)[:, :2]
        if key in out:
            dup.append(key)
        out[key] = arr  # the official script keeps the last entry
    if dup:
        warnings.warn(
            f"{len(dup)} image(s) appear several times in the predictions (e.g. {dup[0]}); the last entry is used",
            stacklevel=3,
        )
    return out


def aic_official_score(
    gt: Sequence[Mapping], preds: Sequence[Mapping], *, gt_name: str = "<AIC ground truth>"
) -> float:
    """The official AI Challenger keypoint score (final ``keypoint_eval.py`` semantics).

    Args:
        gt: AIC release format ``[{image_id, human_annotations: {name: [x1, y1, x2, y2]},
            keypoint_annotations: {name: [x, y, v] * 14}}]`` with v 1 visible / 2 occluded / 3 unlabelled.
        preds: ``[{image_id, keypoint_annotations: {name: [x, y, s] * 14}}]`` (pixels; s is ignored).
        gt_name: name of the GT source for error messages.

    Returns:
        The score in [0, 1].

    Raises:
        DatasetError: malformed GT entries (named by image id and human name).
        ValueError: malformed predictions.
    """
    gt_arrays = _release_gt_arrays(gt, gt_name)
    pred_arrays = _release_pred_arrays(preds)
    return aic_score_from_arrays(gt_arrays, pred_arrays)

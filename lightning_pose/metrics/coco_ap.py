"""``COCOKeypointAP``: COCO keypoint AP/AR (pycocotools semantics) as a DDP-safe torchmetrics metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from torch import Tensor

from lightning_pose.evaluation.coco import STAT_NAMES, CocoKeypointEvaluator
from lightning_pose.evaluation.formats.common import category_num_keypoints
from lightning_pose.evaluation.oks import COCO_SIGMAS
from lightning_pose.evaluation.topdown_postprocess import TopDownDetections, postprocess_topdown
from lightning_pose.metrics._base import SampleStateMetric, batch_array

__all__ = ["COCOKeypointAP", "gt_num_keypoints"]


def gt_num_keypoints(gt: Mapping) -> int:
    """K from the first category of a COCO GT dict that lists keypoint names."""
    k = category_num_keypoints(gt)
    if k is not None:
        return k
    raise ValueError("COCO GT: no category lists keypoint names, so K is unknown")


class COCOKeypointAP(SampleStateMetric):
    """COCO keypoint AP/AR over the images seen, with top-down rescoring and OKS-NMS.

    ``update`` stores per sample (flat float64 cat states): ``sample_id``, ``image_id``, ``ann_id``, ``bbox_score``,
    ``crop_area``, the ``(K, 2)`` image-frame prediction and its ``(K,)`` scores. ``compute`` de-duplicates by
    ``sample_id`` (DDP padding) and sorts by it, de-duplicates by ``(image_id, ann_id)`` (mmpose), rescores
    (``bbox_score * mean(kpt scores > score_thr)``), applies OKS-NMS per image (areas = ``crop_area``) and
    evaluates **only the image ids seen** (so sanity checks and ``limit_val_batches`` runs are exact on their
    subset).

    Args:
        gt: COCO-format GT dict (``images``, ``annotations``, ``categories``), image pixels.
        sigmas: ``(K,)`` OKS sigmas (default: COCO's; required when K != 17). Used for both AP and NMS.
        use_area: True = GT ``area`` field (COCO); False = ``0.53 * w * h`` (xtcocotools, AIC/CrowdPose).
        rescore: apply the rescoring above (False: score = ``bbox_score``).
        score_thr: keypoint-score threshold of the rescoring (strict ``>``).
        nms_thr: OKS-NMS threshold, None disables NMS.
        use_gt_boxes: the samples come from GT boxes, so every ``(image_id, ann_id)`` must be a GT annotation;
            ``compute`` checks it (catches id wiring mistakes). Rescoring/NMS still follow the options above, as in
            HRNet/mmpose.
        drop_zero_score: drop detections whose keypoint scores are all <= 0 (xtcocotools behaviour).

    ``compute()`` returns ``AP AP50 AP75 APm APl AR AR50 AR75 ARm ARl`` as fractions (-1 = undefined; all -1 when
    nothing was seen).
    """

    def __init__(
        self,
        gt: Mapping,
        *,
        sigmas: Sequence[float] | np.ndarray | None = None,
        use_area: bool = True,
        rescore: bool = True,
        score_thr: float = 0.2,
        nms_thr: float | None = 0.9,
        use_gt_boxes: bool = False,
        drop_zero_score: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ("sample_id", "image_id", "ann_id", "bbox_score", "crop_area", "keypoints", "keypoint_scores"), **kwargs
        )
        self.gt = gt
        self.num_keypoints = gt_num_keypoints(gt)
        if sigmas is None:
            if self.num_keypoints != COCO_SIGMAS.shape[0]:
                raise ValueError(f"COCOKeypointAP: the GT has {self.num_keypoints} keypoints; give their sigmas")
            sigmas = COCO_SIGMAS
        self.sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
        if self.sigmas.shape[0] != self.num_keypoints:
            raise ValueError(f"COCOKeypointAP: {self.sigmas.shape[0]} sigmas for {self.num_keypoints} keypoints")
        self.use_area = use_area
        self.rescore = rescore
        self.score_thr = float(score_thr)
        self.nms_thr = None if nms_thr is None else float(nms_thr)
        self.use_gt_boxes = use_gt_boxes
        self.drop_zero_score = drop_zero_score
        self._evaluator: CocoKeypointEvaluator | None = None

    def update(self, preds: Tensor, scores: Tensor, batch: Mapping[str, Any]) -> None:
        """Args: ``preds (B, K, 2)`` image-frame pixels, ``scores (B, K)``; batch keys ``sample_id``,
        ``image_id``, ``ann_id``, ``bbox_score``, ``crop_area``."""
        name = type(self).__name__
        k = self.num_keypoints
        p = preds.detach().to("cpu").double().numpy()
        s = scores.detach().to("cpu").double().numpy()
        if p.ndim != 3 or p.shape[1:] not in ((k, 2), (k, 3)):
            raise ValueError(f"{name}: preds must be (B, {k}, 2), got {tuple(p.shape)}")
        if s.shape != p.shape[:2]:
            raise ValueError(f"{name}: scores must be (B, {k}), got {tuple(s.shape)}")
        for key in ("sample_id", "image_id", "ann_id", "bbox_score", "crop_area"):
            self._append(key, batch_array(batch, key, name).reshape(-1))
        self._append("keypoints", p[..., :2])
        self._append("keypoint_scores", s)

    def detections(self) -> TopDownDetections:
        """The post-processed detections that ``compute`` evaluates (after de-dup, rescoring and NMS)."""
        k = self.num_keypoints
        st = self._global_samples(
            {"image_id": 1, "ann_id": 1, "bbox_score": 1, "crop_area": 1, "keypoints": 2 * k, "keypoint_scores": k}
        )
        if self.use_gt_boxes:
            self._check_gt_boxes(st["image_id"], st["ann_id"])
        det = postprocess_topdown(
            st["image_id"],
            st["ann_id"],
            st["keypoints"].reshape(-1, k, 2),
            st["keypoint_scores"],
            st["bbox_score"],
            st["crop_area"],
            sigmas=self.sigmas,
            rescore_instances=self.rescore,
            score_thr=self.score_thr,
            nms_thr=self.nms_thr,
        )
        return det

    def _check_gt_boxes(self, image_ids: np.ndarray, ann_ids: np.ndarray) -> None:
        known = {(int(a["image_id"]), int(a["id"])) for a in self.gt["annotations"]}
        bad = [(int(i), int(a)) for i, a in zip(image_ids, ann_ids) if (int(i), int(a)) not in known]
        if bad:
            raise ValueError(
                f"COCOKeypointAP(use_gt_boxes=True): {len(bad)} sample(s) whose (image_id, ann_id) is "
                f"not a GT annotation, e.g. {bad[:3]}"
            )

    def results(self) -> list[dict]:
        """COCO results list ``{image_id, category_id, keypoints: [x, y, s] * K, score}`` (image pixels) --
        exactly what ``compute`` evaluates; write it with
        :func:`lightning_pose.evaluation.formats.write_coco_results`."""
        return self._results_from(self.detections())

    def _results_from(self, det: TopDownDetections) -> list[dict]:
        cat_id = int(self.gt["categories"][0]["id"]) if self.gt.get("categories") else 1
        trip = np.concatenate([det.keypoints, det.keypoint_scores[..., None]], axis=-1)
        return [
            {
                "image_id": int(det.image_id[i]),
                "category_id": cat_id,
                "keypoints": [float(v) for v in trip[i].reshape(-1)],
                "score": float(det.score[i]),
            }
            for i in range(det.image_id.shape[0])
        ]

    def export_file_names(self, split: str) -> list[str]:
        """``<split>_coco_results.json`` (what ``compute`` evaluates) and ``<split>_coco_gt.json`` (the GT)."""
        return [f"{split}_coco_results.json", f"{split}_coco_gt.json"]

    def write_exports(self, out_dir: Path, split: str) -> list[Path]:
        """The COCO results (image pixels) and the GT they were scored against, so that ``lightning-pose evaluate
        --dataset coco`` reproduces ``compute`` from the files."""
        from lightning_pose.evaluation.formats import write_coco_results
        from lightning_pose.outputs import atomic_write_text

        results_path, gt_path = (Path(out_dir) / name for name in self.export_file_names(split))
        write_coco_results(results_path, self.results())
        atomic_write_text(gt_path, json.dumps(self.gt))
        return [results_path, gt_path]

    def compute(self) -> dict[str, float]:
        det = self.detections()
        if det.seen_image_ids.size == 0:
            return {k: -1.0 for k in STAT_NAMES}
        if self._evaluator is None:
            self._evaluator = CocoKeypointEvaluator(self.gt, sigmas=self.sigmas, use_area=self.use_area)
        stats = self._evaluator.evaluate(
            self._results_from(det), img_ids=[int(i) for i in det.seen_image_ids], drop_zero_score=self.drop_zero_score
        )
        return {k: float(stats[k]) for k in STAT_NAMES}

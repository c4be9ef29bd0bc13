"""``AICScore``: the official AI Challenger keypoint score as a DDP-safe torchmetrics metric.

(The COCO-style AIC AP is :class:`~lightning_pose.metrics.coco_ap.COCOKeypointAP` with the AIC sigmas and
``use_area=False``.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from torch import Tensor

from lightning_pose.evaluation.formats.aic import coco_image_names, coco_style_aic_to_release, human_order
from lightning_pose.evaluation.topdown_postprocess import TopDownDetections, postprocess_topdown
from lightning_pose.metrics._base import SampleStateMetric, batch_array
from lightning_pose.skeletons import AIC

__all__ = ["AICScore"]

_K = 14


class AICScore(SampleStateMetric):
    """Official AI Challenger score (mean over OKS thresholds .50:.05:.95 of the matched-OKS accuracy) on the
    images seen, after the same top-down post-processing as :class:`COCOKeypointAP` (de-dup, rescoring, OKS-NMS
    with the AIC sigmas): the official scorer counts every extra prediction against the score, so NMS matters.

    Args:
        gt: release-format GT (list of ``{image_id, human_annotations, keypoint_annotations}``; the batches'
            ``image_id`` is then the 1-based position of the image in that list, as the AIC reader numbers them)
            or the COCO-style AIC dict (batches carry its COCO image ids; converted to release format with
            :func:`lightning_pose.evaluation.formats.aic.coco_style_aic_to_release`, images matched by file-name stem).
        rescore, score_thr, nms_thr: as in :class:`COCOKeypointAP`.

    ``compute()`` returns ``{"AIC_score": fraction}``.
    """

    def __init__(
        self,
        gt: Sequence[Mapping] | Mapping,
        *,
        rescore: bool = True,
        score_thr: float = 0.2,
        nms_thr: float | None = 0.9,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ("sample_id", "image_id", "ann_id", "bbox_score", "crop_area", "keypoints", "keypoint_scores"), **kwargs
        )
        if isinstance(gt, Mapping):
            release = coco_style_aic_to_release(dict(gt))
            by_name = {str(e["image_id"]): e for e in release}
            self._gt_by_id = {int(i): by_name[stem] for i, stem in coco_image_names(gt).items() if stem in by_name}
        else:
            self._gt_by_id = {i + 1: e for i, e in enumerate(gt)}
        self.sigmas = AIC.sigmas_array()
        self.rescore = rescore
        self.score_thr = float(score_thr)
        self.nms_thr = None if nms_thr is None else float(nms_thr)

    def update(self, preds: Tensor, scores: Tensor, batch: Mapping[str, Any]) -> None:
        """Args: ``preds (B, 14, 2)`` image-frame pixels, ``scores (B, 14)``; batch keys ``sample_id``,
        ``image_id``, ``ann_id``, ``bbox_score``, ``crop_area``."""
        name = type(self).__name__
        p = preds.detach().to("cpu").double().numpy()
        s = scores.detach().to("cpu").double().numpy()
        if p.ndim != 3 or p.shape[1] != _K or s.shape != p.shape[:2]:
            raise ValueError(
                f"{name}: preds must be (B, 14, 2) and scores (B, 14); got {tuple(p.shape)}, {tuple(s.shape)}"
            )
        for key in ("sample_id", "image_id", "ann_id", "bbox_score", "crop_area"):
            self._append(key, batch_array(batch, key, name).reshape(-1))
        self._append("keypoints", p[..., :2])
        self._append("keypoint_scores", s)

    def detections(self) -> TopDownDetections:
        st = self._global_samples(
            {"image_id": 1, "ann_id": 1, "bbox_score": 1, "crop_area": 1, "keypoints": 2 * _K, "keypoint_scores": _K}
        )
        det = postprocess_topdown(
            st["image_id"],
            st["ann_id"],
            st["keypoints"].reshape(-1, _K, 2),
            st["keypoint_scores"],
            st["bbox_score"],
            st["crop_area"],
            sigmas=self.sigmas,
            rescore_instances=self.rescore,
            score_thr=self.score_thr,
            nms_thr=self.nms_thr,
        )
        unknown = sorted({int(i) for i in det.seen_image_ids} - set(self._gt_by_id))
        if unknown:
            raise ValueError(f"AICScore: image ids {unknown[:5]} are not images of the GT")
        return det

    def release_preds(self) -> list[dict]:
        """AI Challenger release predictions (``[{image_id: name, keypoint_annotations: {humanN: [x, y, s]*14}}]``)
        of exactly what ``compute`` scores; write them with
        :func:`lightning_pose.evaluation.formats.write_aic_preds`."""
        det = self.detections()
        out = []
        for img in det.seen_image_ids:
            idx = np.nonzero(det.image_id == img)[0]
            idx = idx[np.argsort(-det.score[idx], kind="stable")]
            anns = {}
            for j, i in enumerate(idx):
                trip = np.concatenate([det.keypoints[i], det.keypoint_scores[i][:, None]], axis=1)
                anns[f"human{j + 1}"] = [float(v) for v in trip.reshape(-1)]
            out.append({"image_id": str(self._gt_by_id[int(img)]["image_id"]), "keypoint_annotations": anns})
        return out

    def export_file_names(self, split: str) -> list[str]:
        """``<split>_aic_preds.json``: the release-format predictions ``compute`` scores."""
        return [f"{split}_aic_preds.json"]

    def write_exports(self, out_dir: Path, split: str) -> list[Path]:
        """The AI Challenger release predictions (``lightning-pose evaluate --dataset aic`` re-scores them)."""
        from lightning_pose.evaluation.formats import write_aic_preds

        path = Path(out_dir) / self.export_file_names(split)[0]
        write_aic_preds(path, self.release_preds())
        return [path]

    def _gt_arrays(self, img: int) -> tuple[np.ndarray, np.ndarray]:
        e = self._gt_by_id[img]
        names = sorted(e["keypoint_annotations"], key=human_order)
        kpts = np.asarray([e["keypoint_annotations"][n] for n in names], dtype=np.float64).reshape(-1, _K, 3)
        boxes = np.asarray([e["human_annotations"][n] for n in names], dtype=np.float64).reshape(-1, 4)
        return kpts, boxes

    def compute(self) -> dict[str, float]:
        from lightning_pose.evaluation.aic import aic_score_from_arrays

        det = self.detections()
        if det.seen_image_ids.size == 0:
            return {"AIC_score": float("nan")}
        gt = {int(i): self._gt_arrays(int(i)) for i in det.seen_image_ids}
        preds = {int(i): det.keypoints[det.image_id == i] for i in det.seen_image_ids}
        return {"AIC_score": float(aic_score_from_arrays(gt, preds))}

"""Which metrics a split is evaluated with, and the export of what they evaluated in native formats.

| dataset | metrics (keys as logged, after the ``val/`` or ``test/`` prefix) |
|---|---|
| any, with GT boxes | ``PCK@t`` (bbox-normalised, pooled), ``PCK@t_macro``, per joint |
| mpii | ``PCKh@0.5``, ``PCKh@0.1``, ``PCKh_AUC``, per part (official MATLAB semantics) |
| coco, demo | COCO keypoint AP: ``AP AP50 AP75 APm APl AR AR50 AR75 ARm ARl`` (GT boxes, or detections with rescoring and OKS-NMS) |
| aic | the official AI Challenger score (``AIC_score``) and the COCO-style AP with AIC sigmas and area ``0.53 w h`` |

Exported files (``export_dir``): ``<split>_coco_results.json`` (COCO results format), ``<split>_mpii_preds.mat``
(``preds`` N x 16 x 2 in the 1-based frame of ``gt_valid.mat``, rows in the annotation order), and
``<split>_aic_preds.json`` (AI Challenger release format), plus the matching ground truth where the datamodule has it
(``<split>_coco_gt.json``), so that ``lightning-pose evaluate`` reproduces the logged numbers from the files. Exports are written atomically
and never replace a file lightning-pose did not write (:func:`check_export_dir` checks this at ``setup``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from torchmetrics import Metric

from lightning_pose.skeletons import KeypointSet

__all__ = ["build_metrics", "export_metric_predictions", "export_file_names", "check_export_dir", "uses_gt_boxes"]


def uses_gt_boxes(datamodule: Any, split: str) -> bool:
    """Whether the split's samples are GT person boxes (PCK needs them) rather than detections."""
    boxes = getattr(datamodule, "boxes", {}).get(split, "gt")
    return boxes in (None, "gt")


def build_metrics(datamodule: Any, split: str, keypoint_set: KeypointSet,
                  pck_thresholds: tuple[float, ...] = (0.05, 0.1, 0.2)) -> dict[str, Metric]:
    """The metrics of ``split`` for ``datamodule`` (see the module table)."""
    from lightning_pose.metrics import PCK, PCKh, COCOKeypointAP

    name = str(getattr(datamodule, "dataset_name", "")).lower()
    gt_boxes = uses_gt_boxes(datamodule, split)
    metrics: dict[str, Metric] = {}
    if gt_boxes:
        metrics["pck"] = PCK(keypoint_set, thresholds=pck_thresholds, normalizer="bbox")
    if name == "mpii":
        metrics["pckh"] = PCKh()
    if name in ("coco", "demo", "aic") and keypoint_set.sigmas is not None:
        gt = datamodule.ground_truth(split)
        metrics["coco_ap"] = COCOKeypointAP(gt, sigmas=keypoint_set.sigmas, use_area=name != "aic",
                                            use_gt_boxes=gt_boxes)
    if name == "aic":
        from lightning_pose.metrics import AICScore

        metrics["aic"] = AICScore(datamodule.ground_truth(split))
    return metrics


def export_file_names(metrics: Mapping[str, Any], split: str) -> list[str]:
    """The file names :func:`export_metric_predictions` writes for ``split`` with these metrics (in order)."""
    names = []
    if "coco_ap" in metrics:
        names += [f"{split}_coco_results.json", f"{split}_coco_gt.json"]
    if "pckh" in metrics:
        names.append(f"{split}_mpii_preds.mat")
    if "aic" in metrics:
        names.append(f"{split}_aic_preds.json")
    return names


def check_export_dir(metrics: Mapping[str, Any], split: str, out_dir: Path) -> None:
    """Early check (before training/evaluating) that the exports of ``split`` can be written to ``out_dir``.

    Raises:
        OutputPathError: the folder cannot be created or written, or an export file name is already taken by a file
            lightning-pose did not write there (a user's file, or a dataset file: it is never overwritten).
    """
    from lightning_pose.outputs import ToolFiles, prepare_output_dir

    prepare_output_dir(out_dir, option="export_dir")
    ToolFiles(out_dir).claim(export_file_names(metrics, split), option="export_dir", flag=None)


def export_metric_predictions(metrics: Mapping[str, Metric], datamodule: Any, split: str, out_dir: Path) -> list[Path]:
    """Write the predictions the metrics evaluated (before their reset) in the native formats.

    Each file is written atomically and recorded in ``out_dir/.lightning_pose_outputs.json``; a file of the same
    name that lightning-pose did not write is refused (:class:`~lightning_pose.errors.OutputPathError`), files of an
    earlier epoch or run are replaced.
    """
    from lightning_pose.evaluation.formats import write_aic_preds, write_coco_results, write_mpii_preds
    from lightning_pose.outputs import ToolFiles, atomic_write_text

    out_dir = Path(out_dir)
    owned = ToolFiles(out_dir)
    owned.claim(export_file_names(metrics, split), option="export_dir", flag=None)
    written: list[Path] = []
    if "coco_ap" in metrics:
        path = out_dir / f"{split}_coco_results.json"
        write_coco_results(path, metrics["coco_ap"].results())
        written.append(path)
        gt_path = out_dir / f"{split}_coco_gt.json"
        atomic_write_text(gt_path, json.dumps(datamodule.ground_truth(split)))
        written.append(gt_path)
    if "pckh" in metrics:
        path = out_dir / f"{split}_mpii_preds.mat"
        records = datamodule.records(split)
        num_persons = sum(len(r.persons) for r in records)
        # 0-based package frame + 1 = the 1-based frame of gt_valid.mat
        write_mpii_preds(path, metrics["pckh"].mpii_preds(num_persons=num_persons, one_based=True), one_based=True)
        written.append(path)
    if "aic" in metrics:
        path = out_dir / f"{split}_aic_preds.json"
        write_aic_preds(path, metrics["aic"].release_preds())
        written.append(path)
    for path in written:
        owned.record(path.name)
    return written


def predictions_to_coco_results(batches: list[dict], *, score_thr: float = 0.2) -> list[dict]:
    """``predict_step`` outputs -> COCO results dicts (image frame, 0-based pixels), one per person crop.

    The instance score is the top-down rescoring ``bbox_score * mean(keypoint scores > score_thr)``; each dict also
    carries ``ann_id`` (the GT annotation or detection the crop came from) so users can join back.
    """
    import numpy as np

    from lightning_pose.evaluation.nms import rescore

    results: list[dict] = []
    for batch in batches:
        kpts = batch["keypoints"].detach().cpu().double().numpy()
        scores = batch["scores"].detach().cpu().double().numpy()
        n = kpts.shape[0]
        bbox_scores = (batch["bbox_score"].detach().cpu().double().numpy() if "bbox_score" in batch
                       else np.ones(n))
        inst = rescore(bbox_scores, scores, thr=score_thr)
        for i in range(n):
            triplets = np.concatenate([kpts[i], scores[i][:, None]], axis=1).reshape(-1)
            entry = {"image_id": int(batch["image_id"][i]), "category_id": 1,
                     "keypoints": [float(v) for v in triplets], "score": float(inst[i])}
            if "ann_id" in batch:
                entry["ann_id"] = int(batch["ann_id"][i])
            results.append(entry)
    return results

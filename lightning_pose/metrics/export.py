"""Export of what the metrics of a split evaluated, each metric in its own native format(s).

Every metric names its files (``export_file_names(split)``) and writes them (``write_exports(out_dir, split)``):

| metric | files in ``export_dir`` |
|---|---|
| :class:`~lightning_pose.metrics.COCOKeypointAP` (and bottom-up) | ``<split>_coco_results.json`` (COCO results), ``<split>_coco_gt.json`` (the GT scored against) |
| :class:`~lightning_pose.metrics.PCKh` | ``<split>_mpii_preds.mat`` (``preds`` N x 16 x 2, 1-based frame of ``gt_valid.mat``, rows in the annotation order) |
| :class:`~lightning_pose.metrics.AICScore` (and bottom-up) | ``<split>_aic_preds.json`` (AI Challenger release format) |

so that ``lightning-pose evaluate`` reproduces the logged numbers from the files. Exports are written atomically and
never replace a file lightning-pose did not write (:func:`check_export_dir` checks this before any work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

__all__ = ["export_file_names", "check_export_dir", "export_metric_predictions", "predictions_to_coco_results"]


def export_file_names(metrics: Mapping[str, Any], split: str) -> list[str]:
    """The file names :func:`export_metric_predictions` writes for ``split`` with these metrics (in order)."""
    names: list[str] = []
    for metric in metrics.values():
        names += list(getattr(metric, "export_file_names", lambda s: [])(split))
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


def export_metric_predictions(metrics: Mapping[str, Any], split: str, out_dir: Path) -> list[Path]:
    """Write the predictions the metrics evaluated (before their reset), each metric its own files.

    Each file is written atomically and recorded in ``out_dir/.lightning_pose_outputs.json``; a file of the same
    name that lightning-pose did not write is refused (:class:`~lightning_pose.errors.OutputPathError`), files of an
    earlier epoch or run are replaced.
    """
    from lightning_pose.outputs import ToolFiles

    out_dir = Path(out_dir)
    owned = ToolFiles(out_dir)
    owned.claim(export_file_names(metrics, split), option="export_dir", flag=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for metric in metrics.values():
        written += list(getattr(metric, "write_exports", lambda d, s: [])(out_dir, split))
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
        bbox_scores = batch["bbox_score"].detach().cpu().double().numpy() if "bbox_score" in batch else np.ones(n)
        inst = rescore(bbox_scores, scores, thr=score_thr)
        for i in range(n):
            triplets = np.concatenate([kpts[i], scores[i][:, None]], axis=1).reshape(-1)
            entry = {
                "image_id": int(batch["image_id"][i]),
                "category_id": 1,
                "keypoints": [float(v) for v in triplets],
                "score": float(inst[i]),
            }
            if "ann_id" in batch:
                entry["ann_id"] = int(batch["ann_id"][i])
            results.append(entry)
    return results

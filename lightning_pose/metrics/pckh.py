"""``PCKh``: MPII PCKh (official MATLAB semantics) as a DDP-safe torchmetrics metric, plus MPII export."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from torch import Tensor

from lightning_pose.evaluation.pckh import (
    MPII_PARTS,
    MPII_PCKH_THRESHOLDS,
    counts_from_distances,
    pckh_distances,
    table_from_counts,
)
from lightning_pose.metrics._base import SampleStateMetric, batch_array

__all__ = ["PCKh"]

_K = 16


class PCKh(SampleStateMetric):
    """MPII PCKh over the samples seen (de-duplicated by ``sample_id``).

    Uses ``batch["head_size"]`` (``0.6 * head-box diagonal``, pixels; NaN = no head box -> person excluded and
    counted) and ``batch["gt_keypoints"]`` (``(B, 16, 3)`` 0-based image frame, v > 0 = annotated). Predictions are
    ``(B, 16, 2)`` in the same 0-based image frame (distances are frame-independent).

    Args:
        hrnet_compat: report HRNet's variants (Head = head top only, ``PCKh@0.1`` read at 0.11).
        num_persons: the GT person count of the split (rows of the native export, :meth:`write_exports`);
            default ``max(source_index) + 1``.

    ``compute()`` keys (percent): ``PCKh@0.5`` (pooled over the 14 joints), ``PCKh@0.1``, ``PCKh_AUC``,
    ``PCKh@0.5/<part>`` for Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, UBody, and
    ``PCKh/excluded_no_headbox`` (count).
    """

    def __init__(self, hrnet_compat: bool = False, num_persons: int | None = None, **kwargs: Any) -> None:
        super().__init__(("sample_id", "dist", "has_head", "pred", "source_index"), **kwargs)
        self.hrnet_compat = hrnet_compat
        self.num_persons = None if num_persons is None else int(num_persons)

    def update(self, preds: Tensor, scores: Tensor, batch: Mapping[str, Any]) -> None:
        """Args: ``preds (B, 16, 2)`` image frame; ``scores`` unused; batch keys ``gt_keypoints``, ``head_size``,
        ``sample_id`` and (optional, for :meth:`mpii_preds`) ``source_index``."""
        name = type(self).__name__
        pred = preds.detach().to("cpu").double().numpy()[..., :2]
        gt = batch_array(batch, "gt_keypoints", name)
        if pred.ndim != 3 or pred.shape[1] != _K or gt.shape[:2] != pred.shape[:2]:
            raise ValueError(f"{name}: preds {tuple(pred.shape)} and gt_keypoints {gt.shape} must be (B, 16, 2|3)")
        hs = batch_array(batch, "head_size", name).reshape(-1)
        dist, has_head = pckh_distances(pred, gt[..., :2], gt[..., 2] > 0, hs)
        b = pred.shape[0]
        src = batch_array(batch, "source_index", name).reshape(-1) if "source_index" in batch else np.full(b, -1.0)
        self._append("sample_id", batch_array(batch, "sample_id", name).reshape(-1))
        self._append("dist", dist)
        self._append("has_head", has_head.astype(np.float64))
        self._append("pred", pred)
        self._append("source_index", src)

    def compute(self) -> dict[str, float]:
        s = self._unique_samples({"dist": _K, "has_head": 1, "pred": 2 * _K, "source_index": 1})
        correct, valid = counts_from_distances(s["dist"], MPII_PCKH_THRESHOLDS)
        table = table_from_counts(correct, valid, hrnet_compat=self.hrnet_compat)
        out = {"PCKh@0.5": table["Mean"], "PCKh@0.1": table["Mean@0.1"], "PCKh_AUC": table["AUC"]}
        for part in (*MPII_PARTS, "UBody"):
            out[f"PCKh@0.5/{part}"] = table[part]
        out["PCKh/excluded_no_headbox"] = float((s["has_head"] == 0).sum())
        return out

    def mpii_preds(self, num_persons: int | None = None, one_based: bool = True) -> np.ndarray:
        """Predictions in the native MPII order (row = ``source_index``), ready for
        :func:`lightning_pose.evaluation.formats.write_mpii_preds`.

        Args:
            num_persons: rows of the output (the GT person count); default ``max(source_index) + 1``.
            one_based: add 1 (MATLAB 1-based pixels, like ``gt_valid.mat``); else the 0-based image frame.

        Returns:
            ``(num_persons, 16, 2)`` float64; rows of persons not seen are NaN (they count as wrong).

        Raises:
            ValueError: a sample has no ``source_index`` (-1), or an index is >= ``num_persons``.
        """
        s = self._global_samples({"pred": 2 * _K, "source_index": 1})
        src = s["source_index"].astype(np.int64)
        if (src < 0).any():
            raise ValueError(
                "PCKh.mpii_preds: some samples have no source_index (-1); the batches must carry "
                "'source_index' (the MPII GT row) to export in the native order"
            )
        n = int(src.max()) + 1 if num_persons is None and src.size else int(num_persons or 0)
        if src.size and src.max() >= n:
            raise ValueError(f"PCKh.mpii_preds: source_index {int(src.max())} >= num_persons {n}")
        out = np.full((n, _K, 2), np.nan)
        out[src] = s["pred"].reshape(-1, _K, 2) + (1.0 if one_based else 0.0)
        return out

    def export_file_names(self, split: str) -> list[str]:
        """``<split>_mpii_preds.mat``: ``preds`` ``(N, 16, 2)``, rows in the GT order, 1-based like ``gt_valid.mat``."""
        return [f"{split}_mpii_preds.mat"]

    def write_exports(self, out_dir: Path, split: str) -> list[Path]:
        """The MPII predictions of :meth:`mpii_preds` (``num_persons`` rows; 0-based package frame + 1 = the 1-based
        frame of ``gt_valid.mat``), so that ``lightning-pose evaluate --dataset mpii`` reproduces ``compute``."""
        from lightning_pose.evaluation.formats import write_mpii_preds

        path = Path(out_dir) / self.export_file_names(split)[0]
        write_mpii_preds(path, self.mpii_preds(num_persons=self.num_persons, one_based=True), one_based=True)
        return [path]

"""Hybrid detection + localisation codec (DS-CNN / Bulat & Tzimiropoulos style): the targets of the three branches,
their flip test and the fusion policy of the decoder.

Network outputs (:class:`~lightning_pose.models.hybrid.HybridPoseNet`): ``det`` part-detection logits and ``reg``
localisation heatmaps, both ``(B, K, H_h, W_h)`` at stride ``s = input / heatmap`` (convention A, heatmap pixel
``i`` sits at input ``x = i * s``), and ``coords`` ``(B, K, 2)`` normalised input-frame coordinates
``(x / W_in, y / H_in)`` (soft-argmax of ``reg``).

Decoding (``mode``):

* ``"fuse"`` (default): the refined heatmap is decoded (argmax + quarter offset) and averaged with the soft-argmax
  coordinates; the score is the refined-heatmap peak (clamped to [0, 1]) times the detection peak probability. Both
  branches vote, as DS-CNN fuses detection and localisation;
* ``"heatmap"``: the refined heatmap only; ``"coords"``: soft-argmax coordinates with the refined-heatmap peak as
  score; ``"detection"``: the detection probabilities only (argmax + quarter offset).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from lightning_pose.codecs.base import as_size
from lightning_pose.codecs.disk import DiskCodec
from lightning_pose.codecs.heatmap import HeatmapCodec
from lightning_pose.codecs.regression import RegressionCodec

__all__ = ["HybridCodec", "HYBRID_DECODE_MODES", "HYBRID_BRANCHES"]

HYBRID_DECODE_MODES = ("fuse", "heatmap", "coords", "detection")
#: branch name -> the target keys :meth:`HybridCodec.encode` returns for it
HYBRID_BRANCHES = {
    "det": ("disks", "disk_weights"),
    "reg": ("heatmaps", "heatmap_weights"),
    "coords": ("coords", "coord_weights"),
}


class HybridCodec:
    """Keypoints (input frame) <-> the hybrid network's three outputs (a :class:`~lightning_pose.codecs.base.Codec`).

    Args:
        input_size: ``(W_in, H_in)`` in px (width first).
        heatmap_size: ``(W_h, H_h)`` of ``det`` / ``reg`` in px (width first).
        sigma: Gaussian sigma (heatmap px) of the localisation heatmaps.
        disk_radius: detection disk radius (heatmap px).
        decode_mode: default of :meth:`decode` (``fuse`` | ``heatmap`` | ``coords`` | ``detection``).
    """

    target_keys = tuple(k for keys in HYBRID_BRANCHES.values() for k in keys)

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int],
        *,
        sigma: float = 2.0,
        disk_radius: float = 1.5,
        decode_mode: str = "fuse",
    ) -> None:
        if decode_mode not in HYBRID_DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {HYBRID_DECODE_MODES}, got {decode_mode!r}")
        self.input_size = as_size(input_size, "HybridCodec input_size")
        self.heatmap_size = as_size(heatmap_size, "HybridCodec heatmap_size")
        self.decode_mode = decode_mode
        self.heatmap = HeatmapCodec(self.input_size, self.heatmap_size, sigma=sigma)
        self.disk = DiskCodec(self.input_size, self.heatmap_size, radius=disk_radius)
        self.coords = RegressionCodec(self.input_size)

    def __repr__(self) -> str:
        return (
            f"HybridCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.heatmap.sigma}, disk_radius={self.disk.radius}, decode_mode={self.decode_mode!r})"
        )

    def encode(self, keypoints: Tensor, branches: Sequence[str] = ("det", "reg", "coords")) -> dict[str, Tensor]:
        """Targets of the requested branches (all by default).

        Args:
            keypoints: ``(B, K, 3)`` = (x, y, v) in input-frame px.
            branches: subset of ``("det", "reg", "coords")``.

        Returns:
            ``disks`` ``(B, K, H_h, W_h)`` {0, 1} and ``disk_weights`` ``(B, K)`` (det); ``heatmaps``
            ``(B, K, H_h, W_h)`` peak-1 Gaussians and ``heatmap_weights`` ``(B, K)`` (reg); ``coords`` ``(B, K, 2)``
            normalised and ``coord_weights`` ``(B, K)`` (coords).
        """
        unknown = [b for b in branches if b not in HYBRID_BRANCHES]
        if unknown:
            raise ValueError(
                f"HybridCodec.encode: unknown branches {unknown}, expected a subset of {tuple(HYBRID_BRANCHES)}"
            )
        out: dict[str, Tensor] = {}
        if "det" in branches:
            t = self.disk.encode(keypoints)
            out.update(disks=t["disks"], disk_weights=t["weights"])
        if "reg" in branches:
            t = self.heatmap.encode(keypoints)
            out.update(heatmaps=t["heatmaps"], heatmap_weights=t["weights"])
        if "coords" in branches:
            t = self.coords.encode(keypoints)
            out.update(coords=t["coords"], coord_weights=t["weights"])
        return out

    def merge_flip(
        self, outputs: dict[str, Tensor], flipped: dict[str, Tensor], flip_indices: Sequence[int]
    ) -> dict[str, Tensor]:
        """Flip test: ``det_prob`` (sigmoid of ``det``, merged as *probabilities* since flip-back interpolates),
        ``reg`` and ``coords`` averaged with their flipped-back counterparts (exact convention-A shift)."""
        det_prob = torch.sigmoid(outputs["det"].float())
        det_prob_flipped = torch.sigmoid(flipped["det"].float())
        return {
            "det_prob": 0.5 * (det_prob + self.heatmap.flip_back(det_prob_flipped, flip_indices)),
            "reg": 0.5 * (outputs["reg"] + self.heatmap.flip_back(flipped["reg"], flip_indices)),
            "coords": 0.5 * (outputs["coords"] + self.coords.flip_back(flipped["coords"], flip_indices)),
        }

    def decode(self, outputs: dict[str, Tensor], mode: str | None = None) -> tuple[Tensor, Tensor]:
        """Outputs (raw, or merged by :meth:`merge_flip`) -> ``coords (B, K, 2)`` input-frame px and
        ``scores (B, K)`` by the fusion policy ``mode`` (default: the codec's ``decode_mode``; module docstring)."""
        mode = self.decode_mode if mode is None else mode
        if mode not in HYBRID_DECODE_MODES:
            raise ValueError(f"decode_mode must be one of {HYBRID_DECODE_MODES}, got {mode!r}")
        det_prob = outputs["det_prob"] if "det_prob" in outputs else torch.sigmoid(outputs["det"].float())
        if mode == "detection":
            return self.disk.decode(det_prob)
        hm_coords, hm_scores = self.heatmap.decode(outputs["reg"].float())
        if mode == "heatmap":
            return hm_coords, hm_scores
        sa_coords, _ = self.coords.decode(outputs["coords"].float())
        if mode == "coords":
            return sa_coords, hm_scores
        _, det_scores = self.disk.decode(det_prob)
        return 0.5 * (hm_coords + sa_coords), hm_scores.clamp(0, 1) * det_scores

"""Hybrid detection + localisation LightningModule (DS-CNN / Bulat & Tzimiropoulos style).

Network: :class:`~lightning_pose.models.hybrid.HybridPoseNet` — a detection branch (per-joint part logits, trained
with weighted BCE on binary disks, like Bulat's part detector) and a localisation branch (refined Gaussian heatmaps
fed with the detections and stride-4 features, and coordinates from their soft-argmax, trained with MSE + L1).

Loss: ``det_weight * BCE(det, disk) + reg_weight * MSE(reg, gaussian) + coord_weight * L1(coords, target)``, each
mean-reduced and masked by the target weights (docs/methods.md#hybrid starting point: 1, 1e3, 1).

Decoding (``decode_mode``):
* ``"fuse"`` (default): the refined heatmap is decoded (argmax + quarter offset) and averaged with the soft-argmax
  coordinates; the score is the refined-heatmap peak times the detection peak probability. Both branches vote, as
  DS-CNN fuses detection and localisation;
* ``"heatmap"``: the refined heatmap only; ``"coords"``: soft-argmax only; ``"detection"``: the detection logits only
  (argmax + quarter offset). The ablation (detection only / localisation only / both) uses these with the matching
  loss weights set to 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lightning_pose.codecs import DiskCodec, HeatmapCodec, RegressionCodec
from lightning_pose.losses.heatmap import weighted_bce_heatmap, weighted_mse_heatmap
from lightning_pose.losses.regression import coordinate_loss
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.input_size import check_input_size

__all__ = ["HybridTask"]

_MODES = ("fuse", "heatmap", "coords", "detection")


class HybridTask(PoseTask):
    """Joint detection + localisation.

    Args:
        backbone, pretrained, deconv_channels: the network's backbone and detection head.
        refine_channels, dilations: the localisation (refinement) sub-network.
        sigma: Gaussian sigma (heatmap px) of the localisation heatmaps; disk_radius: detection disk radius (heatmap px).
        det_weight, reg_weight, coord_weight: multi-task loss weights.
        decode_mode: ``fuse`` | ``heatmap`` | ``coords`` | ``detection``.
    """

    method_name = "hybrid"

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        deconv_channels: tuple[int, ...] = (256, 256, 256),
        refine_channels: int = 128,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
        sigma: float = 2.0,
        disk_radius: float = 1.5,
        det_weight: float = 1.0,
        reg_weight: float = 1000.0,
        coord_weight: float = 1.0,
        decode_mode: str = "fuse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if decode_mode not in _MODES:
            raise ValueError(f"decode_mode must be one of {_MODES}, got {decode_mode!r}")
        from lightning_pose.models.hybrid import HybridPoseNet

        self._net_args = {"backbone": backbone}
        self.network = HybridPoseNet(self.num_keypoints, backbone, pretrained=pretrained,
                                     deconv_channels=tuple(deconv_channels), refine_channels=refine_channels,
                                     dilations=tuple(dilations))
        check_input_size(self.network, self.input_size, type(self).__name__)
        stride = int(self.network.stride)
        w, h = self.input_size
        hm_size = (w // stride, h // stride)
        self.heatmap_codec = HeatmapCodec(input_size=self.input_size, heatmap_size=hm_size, sigma=sigma)
        self.disk_codec = DiskCodec(input_size=self.input_size, heatmap_size=hm_size, radius=disk_radius)
        self.coord_codec = RegressionCodec(input_size=self.input_size)
        self.det_weight, self.reg_weight, self.coord_weight = float(det_weight), float(reg_weight), float(coord_weight)
        self.decode_mode = decode_mode

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.network(images)

    def compute_loss(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        kp = batch["keypoints"].float()
        parts: dict[str, Tensor] = {}
        loss = outputs["reg"].new_zeros(())
        if self.det_weight > 0:
            disk, w_det = self.disk_codec.encode(kp)
            det_loss = weighted_bce_heatmap(outputs["det"], disk, w_det)
            loss = loss + self.det_weight * det_loss
            parts["loss_det"] = det_loss.detach()
        if self.reg_weight > 0:
            gauss, w_reg = self.heatmap_codec.encode(kp)
            reg_loss = weighted_mse_heatmap(outputs["reg"], gauss, w_reg)
            loss = loss + self.reg_weight * reg_loss
            parts["loss_reg"] = reg_loss.detach()
        if self.coord_weight > 0:
            target, w_c = self.coord_codec.encode(kp)
            c_loss = coordinate_loss(outputs["coords"], target, w_c, kind="l1")
            loss = loss + self.coord_weight * c_loss
            parts["loss_coords"] = c_loss.detach()
        return loss, parts

    def merge_flip(self, outputs: dict[str, Tensor], flipped_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        fi = self.flip_indices
        # flip_back interpolates: merge detection *probabilities* (non-negative maps), not raw logits
        det_prob = torch.sigmoid(outputs["det"].float())
        det_prob_flipped = torch.sigmoid(flipped_outputs["det"].float())
        return {
            "det_prob": 0.5 * (det_prob + self.heatmap_codec.flip_back(det_prob_flipped, fi)),
            "reg": 0.5 * (outputs["reg"] + self.heatmap_codec.flip_back(flipped_outputs["reg"], fi)),
            "coords": 0.5 * (outputs["coords"] + self.coord_codec.flip_back(flipped_outputs["coords"], fi)),
        }

    def decode(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        mode = self.decode_mode
        det_prob = outputs["det_prob"] if "det_prob" in outputs else torch.sigmoid(outputs["det"].float())
        if mode == "detection":
            return self.heatmap_codec.decode(det_prob)
        hm_coords, hm_scores = self.heatmap_codec.decode(outputs["reg"].float())
        sa_coords = self.coord_codec.decode(outputs["coords"].float())
        if mode == "heatmap":
            return hm_coords, hm_scores
        if mode == "coords":
            return sa_coords, hm_scores
        fused = 0.5 * (hm_coords + sa_coords)
        _, det_scores = self.heatmap_codec.decode(det_prob)
        return fused, hm_scores.clamp(0, 1) * det_scores


"""Hybrid detection + localisation LightningModule (DS-CNN / Bulat & Tzimiropoulos style).

Network: :class:`~lightning_pose.models.hybrid.HybridPoseNet` — a detection branch (per-joint part logits, trained
with weighted BCE on binary disks, like Bulat's part detector) and a localisation branch (refined Gaussian heatmaps
fed with the detections and stride-4 features, and coordinates from their soft-argmax, trained with MSE + L1).

Loss: ``det_weight * BCE(det, disk) + reg_weight * MSE(reg, gaussian) + coord_weight * L1(coords, target)``, each
mean-reduced and masked by the target weights (docs/methods.md#hybrid starting point: 1, 1e3, 1).

Decoding (``decode_mode``, the fusion policy of :class:`~lightning_pose.codecs.HybridCodec`): ``fuse`` (default;
heatmap and soft-argmax coordinates averaged, score = heatmap peak x detection peak), ``heatmap``, ``coords`` or
``detection``. The ablation (detection only / localisation only / both) uses these with the matching loss weights
set to 0.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_pose.codecs import HybridCodec
from lightning_pose.codecs.hybrid import HYBRID_DECODE_MODES
from lightning_pose.losses.heatmap import weighted_bce_heatmap, weighted_mse_heatmap
from lightning_pose.losses.regression import coordinate_loss
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.input_size import check_input_size
from lightning_pose.tasks.network import NetworkSpec, network_int
from lightning_pose.tasks.network_args import drop_legacy_hparams, network_from_legacy_args

__all__ = ["HybridTask"]

_MODES = HYBRID_DECODE_MODES
_NET = "lightning_pose.models.hybrid.HybridPoseNet"
_LEGACY = ("backbone", "pretrained", "deconv_channels", "refine_channels", "dilations")


class HybridTask(PoseTask):
    """Joint detection + localisation.

    Args:
        network: ``{class_path: lightning_pose.models.HybridPoseNet, init_args: {backbone, pretrained,
            deconv_channels, refine_channels, dilations, ...}}`` (any network returning ``{"det", "reg", "coords"}``
            with a ``stride`` attribute).
        backbone, pretrained, deconv_channels, refine_channels, dilations: the older way to give the
            ``HybridPoseNet`` arguments; used when ``network`` is not given.
        sigma: Gaussian sigma (heatmap px) of the localisation heatmaps; disk_radius: detection disk radius (heatmap px).
        det_weight, reg_weight, coord_weight: multi-task loss weights.
        decode_mode: ``fuse`` | ``heatmap`` | ``coords`` | ``detection``.
    """

    method_name = "hybrid"

    def __init__(
        self,
        backbone: str | None = None,
        pretrained: bool | None = None,
        deconv_channels: tuple[int, ...] | None = None,
        refine_channels: int | None = None,
        dilations: tuple[int, ...] | None = None,
        sigma: float = 2.0,
        disk_radius: float = 1.5,
        det_weight: float = 1.0,
        reg_weight: float = 1000.0,
        coord_weight: float = 1.0,
        decode_mode: str = "fuse",
        network: NetworkSpec | None = None,
        **kwargs: Any,
    ) -> None:
        legacy = dict(
            backbone=backbone,
            pretrained=pretrained,
            deconv_channels=deconv_channels,
            refine_channels=refine_channels,
            dilations=dilations,
        )
        network = network_from_legacy_args(type(self).__name__, network, _NET, legacy)
        super().__init__(network=network, **kwargs)
        drop_legacy_hparams(self, _LEGACY)
        if decode_mode not in _MODES:
            raise ValueError(f"decode_mode must be one of {_MODES}, got {decode_mode!r}")
        self.network = self.make_network()
        check_input_size(self.network, self.input_size, type(self).__name__)
        stride = network_int(self.network, "stride")
        w, h = self.input_size
        self.codec = HybridCodec(
            self.input_size, (w // stride, h // stride), sigma=sigma, disk_radius=disk_radius, decode_mode=decode_mode
        )
        self.det_weight, self.reg_weight, self.coord_weight = float(det_weight), float(reg_weight), float(coord_weight)
        self.decode_mode = decode_mode

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.network(images)

    def compute_loss(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        weights = {"det": self.det_weight, "reg": self.reg_weight, "coords": self.coord_weight}
        t = self.codec.encode(batch["keypoints"].float(), branches=[b for b, w in weights.items() if w > 0])
        parts: dict[str, Tensor] = {}
        loss = outputs["reg"].new_zeros(())
        if self.det_weight > 0:
            det_loss = weighted_bce_heatmap(outputs["det"], t["disks"], t["disk_weights"])
            loss = loss + self.det_weight * det_loss
            parts["loss_det"] = det_loss.detach()
        if self.reg_weight > 0:
            reg_loss = weighted_mse_heatmap(outputs["reg"], t["heatmaps"], t["heatmap_weights"])
            loss = loss + self.reg_weight * reg_loss
            parts["loss_reg"] = reg_loss.detach()
        if self.coord_weight > 0:
            c_loss = coordinate_loss(outputs["coords"], t["coords"], t["coord_weights"], kind="l1")
            loss = loss + self.coord_weight * c_loss
            parts["loss_coords"] = c_loss.detach()
        return loss, parts

    def merge_flip(self, outputs: dict[str, Tensor], flipped_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.codec.merge_flip(outputs, flipped_outputs, self.flip_indices)

    def decode(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.codec.decode(outputs, mode=self.decode_mode)

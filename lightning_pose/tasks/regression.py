"""Coordinate-regression LightningModules: DeepPose (with its cascade and RLE) and integral regression.

Targets come from :class:`~lightning_pose.codecs.RegressionCodec`: normalised input-frame coordinates
``(x / W_in, y / H_in)``; weights 0 for unlabelled joints and joints outside the crop.

DeepPose cascade (Toshev & Szegedy, CVPR14), as built here: stage 1 is the global regressor; each refinement stage
``s`` crops the image around every joint's current estimate (``grid_sample``, differentiable) and regresses a
displacement. It is trained on *simulated* estimates ``gt + N(0, std_s)`` where ``std_s`` (per joint and axis) is a
running estimate of the residual spread of the previous stage on the training batches, as the paper draws its
training crops from the previous stage's error distribution. At inference the stages are applied in turn.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_pose.codecs import RegressionCodec, soft_argmax
from lightning_pose.losses.regression import coordinate_loss
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.input_size import check_input_size

__all__ = ["DeepPoseTask", "IntegralRegressionTask"]


class DeepPoseTask(PoseTask):
    """DeepPose-style regression of normalised joint coordinates from a timm backbone.

    Args:
        backbone: timm model name (``resnet50`` as mmpose's regression baselines).
        pretrained: timm ImageNet weights (downloads; never in tests).
        loss: ``"smooth_l1"`` (mmpose config), ``"l1"``, ``"l2"`` (the paper) or ``"rle"`` (residual log-likelihood).
        hidden: optional hidden FC width before the output layer; dropout its dropout.
        cascade_stages: number of refinement stages after the regressor (0 = none; the paper used 2 more).
        cascade_crop_size: side in pixels of the crop each refinement stage sees.
        cascade_box_factor: crop side = this x torso diameter of the current estimate.
        cascade_loss_weight: weight of each refinement stage's L1 loss.
        cascade_min_std: floor of the simulated-estimate noise (normalised units).
    """

    method_name = "deeppose"

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        loss: str = "smooth_l1",
        hidden: int | None = None,
        dropout: float = 0.0,
        cascade_stages: int = 0,
        cascade_crop_size: int = 64,
        cascade_box_factor: float = 1.0,
        cascade_loss_weight: float = 1.0,
        cascade_min_std: float = 0.01,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if loss not in ("smooth_l1", "l1", "l2", "rle"):
            raise ValueError(f"loss must be smooth_l1, l1, l2 or rle, got {loss!r}")
        from lightning_pose.models.deeppose import DeepPoseRegressor

        self._net_args = {"backbone": backbone}
        self.loss_kind = loss
        self.network = DeepPoseRegressor(self.num_keypoints, backbone, pretrained=pretrained, rle=loss == "rle",
                                         hidden=hidden, dropout=dropout)
        self.codec = RegressionCodec(input_size=self.input_size)
        if loss == "rle":
            from lightning_pose.losses.rle import RLELoss

            self.rle_loss = RLELoss()
        self.cascade_stages = int(cascade_stages)
        self.cascade_loss_weight = float(cascade_loss_weight)
        self.cascade_min_std = float(cascade_min_std)
        if self.cascade_stages > 0:
            from lightning_pose.models.cascade import DeepPoseCascade

            self.cascade = DeepPoseCascade(
                self.num_keypoints, num_stages=self.cascade_stages, crop_size=cascade_crop_size,
                box_factor=cascade_box_factor, torso_pairs=_torso_pairs(self.keypoint_set),
            )
            # residual spread (normalised units) of the previous stage, per stage, joint and axis
            self.register_buffer("residual_std", torch.full((self.cascade_stages, self.num_keypoints, 2), 0.05))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``{"coords": (B,K,2) normalised, "sigma": (B,K,2) (RLE)}``; the cascade refines coords in eval mode."""
        out = self.network(images)
        if self.cascade_stages > 0 and not self.training:
            coords = out["coords"]
            for stage in range(self.cascade_stages):
                coords = coords + self.cascade(images, coords, stage)
            out = dict(out, coords=coords)
        return out

    def compute_loss(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        target, weight = self.codec.encode(batch["keypoints"].float())
        if self.loss_kind == "rle":
            loss = self.rle_loss(outputs["coords"], outputs["sigma"], target, weight)
        else:
            loss = coordinate_loss(outputs["coords"], target, weight, kind=self.loss_kind)
        parts: dict[str, Tensor] = {"loss_regressor": loss.detach()}
        if self.cascade_stages > 0 and self.training:
            coords_prev = outputs["coords"].detach()
            for stage in range(self.cascade_stages):
                self._update_residual_std(stage, coords_prev - target, weight)
                simulated = self.cascade.jitter(target, self.residual_std[stage].clamp_min(self.cascade_min_std))
                # unlabelled joints have no ground truth to jitter: keep the previous estimate there
                simulated = torch.where(weight[..., None] > 0, simulated, coords_prev)
                delta = self.cascade(batch["image"], simulated, stage)
                stage_loss = coordinate_loss(simulated + delta, target, weight, kind="l1")
                loss = loss + self.cascade_loss_weight * stage_loss
                parts[f"loss_cascade{stage + 1}"] = stage_loss.detach()
                coords_prev = (simulated + delta).detach()
        return loss, parts

    @torch.no_grad()
    def _update_residual_std(self, stage: int, residual: Tensor, weight: Tensor, momentum: float = 0.1) -> None:
        w = (weight > 0).to(residual.dtype)[..., None]
        count = w.sum(dim=0)
        var = (residual.pow(2) * w).sum(dim=0) / count.clamp_min(1)
        std = var.sqrt()
        has = count > 0
        self.residual_std[stage] = torch.where(has, (1 - momentum) * self.residual_std[stage] + momentum * std,
                                               self.residual_std[stage])

    def merge_flip(self, outputs: dict[str, Tensor], flipped_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        coords = 0.5 * (outputs["coords"] + self.codec.flip_back(flipped_outputs["coords"], self.flip_indices))
        merged = {"coords": coords}
        if "sigma" in outputs:
            back_sigma = flipped_outputs["sigma"][:, self.flip_indices]
            merged["sigma"] = 0.5 * (outputs["sigma"] + back_sigma)
        return merged

    def decode(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        coords = self.codec.decode(outputs["coords"].float())
        if "sigma" in outputs:
            scores = 1.0 - outputs["sigma"].float().mean(dim=-1)  # RLE confidence (mmpose: 1 - mean sigma)
        else:
            scores = torch.ones(coords.shape[:2], dtype=coords.dtype, device=coords.device)
        return coords, scores


class IntegralRegressionTask(PoseTask):
    """Integral regression (Sun et al., ECCV18): soft-argmax over heatmap logits of a SimpleBaseline network.

    Args:
        backbone, pretrained, deconv_channels: the SimpleBaseline network.
        beta: softmax temperature multiplier.
        debias: the debiased soft-argmax (Gu et al.).
        loss: coordinate loss ``"l1"`` / ``"smooth_l1"`` / ``"l2"``.
        heatmap_loss_weight: weight of an auxiliary MSE between the softmax map and the Gaussian target (IPR-style);
            0 disables it.
        sigma: Gaussian sigma (heatmap px) of that auxiliary target.
    """

    method_name = "integral"

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        deconv_channels: tuple[int, ...] = (256, 256, 256),
        beta: float = 1.0,
        debias: bool = False,
        loss: str = "l1",
        heatmap_loss_weight: float = 0.0,
        sigma: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from lightning_pose.codecs import HeatmapCodec
        from lightning_pose.models.simple_baseline import SimpleBaseline

        self._net_args = {"backbone": backbone}
        self.network = SimpleBaseline(self.num_keypoints, backbone, pretrained=pretrained,
                                      deconv_channels=tuple(deconv_channels))
        self.beta, self.debias, self.loss_kind = float(beta), bool(debias), loss
        self.heatmap_loss_weight = float(heatmap_loss_weight)
        self.codec = RegressionCodec(input_size=self.input_size)
        check_input_size(self.network, self.input_size, type(self).__name__)
        stride = int(self.network.stride)
        self.heatmap_codec = HeatmapCodec(input_size=self.input_size,
                                          heatmap_size=(self.input_size[0] // stride, self.input_size[1] // stride),
                                          sigma=sigma)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        logits = self.network(images)[-1]
        coords, probs = soft_argmax(logits, beta=self.beta, debias=self.debias)
        return {"coords": coords, "probs": probs, "logits": logits}

    def compute_loss(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        target, weight = self.codec.encode(batch["keypoints"].float())
        loss = coordinate_loss(outputs["coords"], target, weight, kind=self.loss_kind)
        parts = {"loss_coords": loss.detach()}
        if self.heatmap_loss_weight > 0:
            from lightning_pose.losses.heatmap import weighted_mse_heatmap

            hm_target, hm_weight = self.heatmap_codec.encode(batch["keypoints"].float())
            probs = outputs["probs"]
            peak = probs.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
            hm_loss = weighted_mse_heatmap(probs / peak, hm_target, hm_weight)
            loss = loss + self.heatmap_loss_weight * hm_loss
            parts["loss_heatmap"] = hm_loss.detach()
        return loss, parts

    def merge_flip(self, outputs: dict[str, Tensor], flipped_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        coords = 0.5 * (outputs["coords"] + self.codec.flip_back(flipped_outputs["coords"], self.flip_indices))
        probs = 0.5 * (outputs["probs"] + flipped_outputs["probs"].flip(-1)[:, self.flip_indices])
        return {"coords": coords, "probs": probs}

    def decode(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        coords = self.codec.decode(outputs["coords"].float())
        scores = outputs["probs"].float().flatten(2).amax(dim=-1)
        return coords, scores


def _torso_pairs(keypoint_set: Any) -> tuple[tuple[int, int], ...]:
    """Opposite shoulder-hip pairs used for the torso diameter (DeepPose's crop size), when the names exist."""
    names = keypoint_set.keypoints
    pairs = []
    for a, b in (("left_shoulder", "right_hip"), ("right_shoulder", "left_hip")):
        if a in names and b in names:
            pairs.append((names.index(a), names.index(b)))
    return tuple(pairs)

"""Coordinate-regression LightningModules: DeepPose (with its cascade and RLE) and integral regression.

Targets come from :class:`~lightning_pose.codecs.RegressionCodec`: normalised input-frame coordinates
``(x / W_in, y / H_in)``; weights 0 for unlabelled joints and joints outside the crop.

DeepPose cascade (Toshev & Szegedy, CVPR14), as built here: stage 1 is the global regressor; each refinement stage
``s`` crops the image around every joint's current estimate (``grid_sample``, differentiable) and regresses a
displacement. It is trained on *simulated* estimates ``gt + N(0, std_s)`` where ``std_s`` (per joint and axis) is a
running estimate of the residual spread of the previous stage on the training batches, as the paper draws its
training crops from the previous stage's error distribution. At inference the stages are applied in turn. The
algorithm (stage loop, running residual spread, jitter, torso pairs) lives in
:class:`~lightning_pose.models.cascade.DeepPoseCascade`; this module only wires it (the running spread is a buffer
of the task, ``residual_std``, so checkpoints keep their keys). Integral regression's soft-argmax and flip-back
live in :class:`~lightning_pose.codecs.IntegralCodec`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor

from lightning_pose.codecs import IntegralCodec, RegressionCodec
from lightning_pose.losses.regression import coordinate_loss
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.input_size import check_input_size
from lightning_pose.tasks.network import NetworkSpec, network_int
from lightning_pose.tasks.network_args import drop_legacy_hparams, network_from_legacy_args, override_network_args

__all__ = ["DeepPoseTask", "IntegralRegressionTask"]

_DEEPPOSE_NET = "lightning_pose.models.deeppose.DeepPoseRegressor"
_DEEPPOSE_LEGACY = ("backbone", "pretrained", "hidden", "dropout")
_INTEGRAL_NET = "lightning_pose.models.simple_baseline.SimpleBaseline"
_INTEGRAL_LEGACY = ("backbone", "pretrained", "deconv_channels")


class DeepPoseTask(PoseTask):
    """DeepPose-style regression of normalised joint coordinates.

    Args:
        network: the regressor, ``{class_path: lightning_pose.models.DeepPoseRegressor, init_args: {backbone,
            pretrained, hidden, dropout}}`` (any network taking ``rle`` and returning ``{"coords"(, "sigma")}``
            normalised; its ``rle`` argument is always set from ``loss``).
        backbone, pretrained, hidden, dropout: the older way to give the ``DeepPoseRegressor`` arguments (timm
            backbone name, ImageNet weights, optional hidden FC width, dropout); used when ``network`` is not given.
        loss: ``"smooth_l1"`` (mmpose config), ``"l1"``, ``"l2"`` (the paper) or ``"rle"`` (residual log-likelihood).
        cascade_stages: number of refinement stages after the regressor (0 = none; the paper used 2 more).
        cascade_crop_size: side in pixels of the crop each refinement stage sees.
        cascade_box_factor: crop side = this x torso diameter of the current estimate.
        cascade_loss_weight: weight of each refinement stage's L1 loss.
        cascade_min_std: floor of the simulated-estimate noise (normalised units).
    """

    #: running spread of the cascade stages' training residuals (registered buffer, saved in checkpoints)
    residual_std: Tensor

    method_name = "deeppose"

    def __init__(
        self,
        backbone: str | None = None,
        pretrained: bool | None = None,
        loss: str = "smooth_l1",
        hidden: int | None = None,
        dropout: float | None = None,
        cascade_stages: int = 0,
        cascade_crop_size: int = 64,
        cascade_box_factor: float = 1.0,
        cascade_loss_weight: float = 1.0,
        cascade_min_std: float = 0.01,
        network: NetworkSpec | None = None,
        **kwargs: Any,
    ) -> None:
        legacy = dict(backbone=backbone, pretrained=pretrained, hidden=hidden, dropout=dropout)
        network = network_from_legacy_args(type(self).__name__, network, _DEEPPOSE_NET, legacy)
        super().__init__(network=network, **kwargs)
        drop_legacy_hparams(self, _DEEPPOSE_LEGACY)
        if loss not in ("smooth_l1", "l1", "l2", "rle"):
            raise ValueError(f"loss must be smooth_l1, l1, l2 or rle, got {loss!r}")
        self.loss_kind = loss
        # the loss decides whether the regressor predicts RLE sigmas
        assert self.network_spec is not None
        self.network_spec = override_network_args(self.network_spec, rle=loss == "rle")
        self.network = self.make_network()
        self.codec = RegressionCodec(input_size=self.input_size)
        if loss == "rle":
            from lightning_pose.losses.rle import RLELoss

            self.rle_loss = RLELoss()
        self.cascade_stages = int(cascade_stages)
        self.cascade_loss_weight = float(cascade_loss_weight)
        self.cascade_min_std = float(cascade_min_std)
        if self.cascade_stages > 0:
            from lightning_pose.models.cascade import DeepPoseCascade, torso_pairs

            self.cascade = DeepPoseCascade(
                self.num_keypoints,
                num_stages=self.cascade_stages,
                crop_size=cascade_crop_size,
                box_factor=cascade_box_factor,
                torso_pairs=torso_pairs(self.keypoint_set.keypoints),
            )
            # residual spread (normalised units) of the previous stage, per stage, joint and axis; updated by the
            # cascade's training loop, kept here so that checkpoints keep their "residual_std" key
            self.register_buffer("residual_std", torch.full((self.cascade_stages, self.num_keypoints, 2), 0.05))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``{"coords": (B,K,2) normalised, "sigma": (B,K,2) (RLE)}``; the cascade refines coords in eval mode."""
        out = self.network(images)
        if self.cascade_stages > 0 and not self.training:
            out = dict(out, coords=self.cascade.refine(images, out["coords"])[-1])
        return out

    def compute_loss(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        targets = self.codec.encode(batch["keypoints"].float())
        target, weight = targets["coords"], targets["weights"]
        if self.loss_kind == "rle":
            loss = self.rle_loss(outputs["coords"], outputs["sigma"], target, weight)
        else:
            loss = coordinate_loss(outputs["coords"], target, weight, kind=self.loss_kind)
        parts: dict[str, Tensor] = {"loss_regressor": loss.detach()}
        if self.cascade_stages > 0 and self.training:
            stage_losses = self.cascade.training_losses(
                batch["image"],
                outputs["coords"],
                target,
                weight,
                self.residual_std,
                partial(coordinate_loss, kind="l1"),
                min_std=self.cascade_min_std,
            )
            for stage, stage_loss in enumerate(stage_losses):
                loss = loss + self.cascade_loss_weight * stage_loss
                parts[f"loss_cascade{stage + 1}"] = stage_loss.detach()
        return loss, parts

    def merge_flip(self, outputs: dict[str, Tensor], flipped_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        coords = 0.5 * (outputs["coords"] + self.codec.flip_back(flipped_outputs["coords"], self.flip_indices))
        merged = {"coords": coords}
        if "sigma" in outputs:
            back_sigma = flipped_outputs["sigma"][:, self.flip_indices]
            merged["sigma"] = 0.5 * (outputs["sigma"] + back_sigma)
        return merged

    def decode(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        sigma = outputs.get("sigma")
        return self.codec.decode(outputs["coords"].float(), None if sigma is None else sigma.float())


class IntegralRegressionTask(PoseTask):
    """Integral regression (Sun et al., ECCV18): soft-argmax (:class:`~lightning_pose.codecs.IntegralCodec`) over
    the last heatmap logits of a heatmap network.

    Args:
        network: the heatmap network, ``{class_path: lightning_pose.models.SimpleBaseline, init_args: {backbone,
            pretrained, deconv_channels}}`` (any network returning a list of ``(B, K, H/s, W/s)`` maps with a
            ``stride`` attribute).
        backbone, pretrained, deconv_channels: the older way to give the ``SimpleBaseline`` arguments; used when
            ``network`` is not given.
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
        backbone: str | None = None,
        pretrained: bool | None = None,
        deconv_channels: tuple[int, ...] | None = None,
        beta: float = 1.0,
        debias: bool = False,
        loss: str = "l1",
        heatmap_loss_weight: float = 0.0,
        sigma: float = 2.0,
        network: NetworkSpec | None = None,
        **kwargs: Any,
    ) -> None:
        legacy = dict(backbone=backbone, pretrained=pretrained, deconv_channels=deconv_channels)
        network = network_from_legacy_args(type(self).__name__, network, _INTEGRAL_NET, legacy)
        super().__init__(network=network, **kwargs)
        drop_legacy_hparams(self, _INTEGRAL_LEGACY)
        self.network = self.make_network()
        self.beta, self.debias, self.loss_kind = float(beta), bool(debias), loss
        self.heatmap_loss_weight = float(heatmap_loss_weight)
        check_input_size(self.network, self.input_size, type(self).__name__)
        stride = network_int(self.network, "stride")
        self.codec = IntegralCodec(
            self.input_size,
            (self.input_size[0] // stride, self.input_size[1] // stride),
            beta=self.beta,
            debias=self.debias,
            heatmap_sigma=sigma if self.heatmap_loss_weight > 0 else None,
        )

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """``{"coords": (B, K, 2) normalised soft-argmax, "probs": (B, K, h, w) softmax maps, "logits"}``."""
        return self.codec.integrate(self.network(images)[-1])

    def compute_loss(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        targets = self.codec.encode(batch["keypoints"].float())
        loss = coordinate_loss(outputs["coords"], targets["coords"], targets["weights"], kind=self.loss_kind)
        parts = {"loss_coords": loss.detach()}
        if self.heatmap_loss_weight > 0:
            from lightning_pose.losses.heatmap import weighted_mse_heatmap

            probs = outputs["probs"]
            peak = probs.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
            hm_loss = weighted_mse_heatmap(probs / peak, targets["heatmaps"], targets["heatmap_weights"])
            loss = loss + self.heatmap_loss_weight * hm_loss
            parts["loss_heatmap"] = hm_loss.detach()
        return loss, parts

    def merge_flip(self, outputs: dict[str, Tensor], flipped_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.codec.merge_flip(outputs, flipped_outputs, self.flip_indices)

    def decode(self, outputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.codec.decode(outputs["coords"].float(), outputs["probs"].float())

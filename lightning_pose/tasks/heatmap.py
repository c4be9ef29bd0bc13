"""Heatmap LightningModules: SimpleBaseline, Stacked Hourglass and Convolutional Pose Machines.

They share one module (:class:`HeatmapTask`): Gaussian heatmap targets from :class:`~lightning_pose.codecs.HeatmapCodec`
encoded on the device from the batch's input-frame keypoints, weighted MSE on every stack/stage (intermediate
supervision), decoding of the **last** stack/stage (argmax + quarter offset or DARK) and the flip test
``0.5 * (H + flip_back(H_flipped))`` with the shift the codec's convention requires.

Loss convention (stated, as docs/conventions.md#heatmap-loss asks): per stack/stage the mmpose ``KeypointMSELoss`` (mean over
B, K, H, W of ``(pred - target)^2 * weight``); stacks/stages are **summed** (``loss_aggregate="sum"``, mmpose and the
original CPM) or **averaged** (``"mean"``, Princeton's hourglass code). The two differ by a constant factor only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_pose.codecs import HeatmapCodec
from lightning_pose.losses.heatmap import multi_stage_heatmap_loss
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.input_size import check_input_size

__all__ = ["HeatmapTask", "SimpleBaselineTask", "StackedHourglassTask", "CPMTask"]


class HeatmapTask(PoseTask):
    """Shared heatmap module; subclasses implement :meth:`build_network`.

    Args:
        sigma: Gaussian sigma of the targets in heatmap pixels.
        decode: ``"quarter"`` (argmax + quarter-pixel offset) or ``"dark"`` (Taylor refinement; pair with ``unbiased``).
        unbiased: centre the target Gaussian at the exact sub-pixel position (DARK's unbiased encoding).
        loss_aggregate: ``"sum"`` or ``"mean"`` of the per-stack/stage losses.
        background: add the CPM background channel ``max(0, 1 - max_k H_k)`` to targets and outputs.
        **kwargs: see :class:`~lightning_pose.tasks.base.PoseTask`.
    """

    method_name = "heatmap"

    def __init__(
        self,
        sigma: float = 2.0,
        decode: str = "quarter",
        unbiased: bool = False,
        loss_aggregate: str = "sum",
        background: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if loss_aggregate not in ("sum", "mean"):
            raise ValueError(f"loss_aggregate must be 'sum' or 'mean', got {loss_aggregate!r}")
        self.loss_aggregate = loss_aggregate
        self.background = bool(background)
        self.network = self.build_network(self.num_keypoints)
        check_input_size(self.network, self.input_size, type(self).__name__)
        stride = int(self.network.stride)
        w, h = self.input_size
        self.codec = HeatmapCodec(
            input_size=self.input_size,
            heatmap_size=(w // stride, h // stride),
            sigma=sigma,
            unbiased=unbiased,
            decode=decode,
            background=self.background,
            num_keypoints=self.num_keypoints,
        )

    def build_network(self, num_keypoints: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, images: Tensor) -> list[Tensor]:
        """Per-stack/stage heatmaps ``(B, K(+1), H/stride, W/stride)``."""
        return self.network(images)

    def compute_loss(self, outputs: list[Tensor], batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        # keypoints stay float32 (a bf16 cast would quantise the coordinates)
        targets = self.codec.encode(batch["keypoints"].float())
        target, weight = targets["heatmaps"].to(outputs[-1].dtype), targets["channel_weights"]
        loss = multi_stage_heatmap_loss(outputs, target, weight, aggregate=self.loss_aggregate)
        parts = {"loss_last_stage": multi_stage_heatmap_loss(outputs[-1:], target, weight, aggregate="sum").detach()}
        return loss, parts

    def _joint_maps(self, heatmaps: Tensor) -> Tensor:
        return heatmaps[:, : self.num_keypoints]

    def merge_flip(self, outputs: list[Tensor], flipped_outputs: list[Tensor]) -> list[Tensor]:
        direct = self._joint_maps(outputs[-1])
        back = self.codec.flip_back(self._joint_maps(flipped_outputs[-1]), self.flip_indices)
        return [0.5 * (direct + back)]

    def decode(self, outputs: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.codec.decode(self._joint_maps(outputs[-1]).float())


class SimpleBaselineTask(HeatmapTask):
    """SimpleBaseline (Xiao et al., ECCV18): a timm backbone + three deconvolutions + 1x1 conv.

    Args:
        backbone: any timm model name with ``features_only`` support (``resnet50``, ``resnet18``, ``convnext_tiny``...).
        pretrained: load timm's ImageNet weights (downloads them; never in tests).
        deconv_channels: channels of the deconvolution layers (their number sets the stride: 32 / 2^n).
    """

    method_name = "simple_baseline"

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        deconv_channels: tuple[int, ...] = (256, 256, 256),
        **kwargs: Any,
    ) -> None:
        self._net_args = {"backbone": backbone, "pretrained": pretrained, "deconv_channels": tuple(deconv_channels)}
        super().__init__(**kwargs)

    def build_network(self, num_keypoints: int) -> nn.Module:
        from lightning_pose.models.simple_baseline import SimpleBaseline

        return SimpleBaseline(num_keypoints, **self._net_args)


class StackedHourglassTask(HeatmapTask):
    """Stacked Hourglass (Newell et al., ECCV16) with intermediate supervision on every stack.

    Args:
        num_stacks: number of hourglasses (8 in the paper).
        channels: feature channels (256 in the paper).
        depth: downsamplings per hourglass (4).
        stem_channels: width of the stem's first 7x7 convolution (64 in the paper; smaller for CPU-sized runs).
    """

    method_name = "hourglass"

    def __init__(self, num_stacks: int = 8, channels: int = 256, depth: int = 4, stem_channels: int = 64,
                 **kwargs: Any) -> None:
        self._net_args = {"num_stacks": num_stacks, "channels": channels, "depth": depth,
                          "stem_channels": stem_channels}
        super().__init__(**kwargs)

    def build_network(self, num_keypoints: int) -> nn.Module:
        from lightning_pose.models.hourglass import StackedHourglass

        return StackedHourglass(num_keypoints, **self._net_args)


class CPMTask(HeatmapTask):
    """Convolutional Pose Machines (Wei et al., CVPR16), every stage supervised.

    Args:
        num_stages: stages (6 in the paper).
        channels: width of the stage convolutions (128 in the paper).
        center_map: feed the Gaussian centre map (original CPM; for top-down crops it is the crop centre).
        batch_norm: the modern variant with batch norm (mmpose); ``False`` for the original network.
        background: (HeatmapTask arg) the original background channel.
    """

    method_name = "cpm"

    def __init__(
        self,
        num_stages: int = 6,
        channels: int = 128,
        center_map: bool = False,
        batch_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        self._net_args = {"num_stages": num_stages, "channels": channels, "center_map": center_map,
                          "batch_norm": batch_norm}
        super().__init__(**kwargs)

    def build_network(self, num_keypoints: int) -> nn.Module:
        from lightning_pose.models.cpm import ConvolutionalPoseMachine

        return ConvolutionalPoseMachine(num_keypoints, background=self.background, **self._net_args)

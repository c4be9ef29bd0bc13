"""Heatmap LightningModules: one :class:`HeatmapTask` for every heatmap network (SimpleBaseline, Stacked Hourglass,
Convolutional Pose Machines, or any ``nn.Module`` given as ``network``).

The task does the same for every network: Gaussian heatmap targets from :class:`~lightning_pose.codecs.HeatmapCodec`
encoded on the device from the batch's input-frame keypoints, weighted MSE on every stack/stage (intermediate
supervision), decoding of the **last** stack/stage (argmax + quarter offset or DARK) and the flip test
``0.5 * (H + flip_back(H_flipped))`` with the shift the codec's convention requires.

Loss convention (stated, as docs/conventions.md#heatmap-loss asks): per stack/stage the mmpose ``KeypointMSELoss``
(mean over B, K, H, W of ``(pred - target)^2 * weight``); stacks/stages are **summed** (``loss_aggregate="sum"``,
mmpose and the original CPM) or **averaged** (``"mean"``, Princeton's hourglass code). The two differ by a constant
factor only.

What a heatmap network must provide (nothing else is assumed):

* first constructor argument ``num_keypoints`` (K);
* ``forward(images (B, 3, H, W)) -> list`` of per-stack/stage maps ``(B, K(+1), H/stride, W/stride)``, the last the
  final prediction;
* an integer attribute ``stride`` (input pixels per heatmap pixel), optionally ``min_input_side`` (px);
* optionally ``background`` (bool, default ``False``): the network emits a background channel as channel K;
* optionally a class attribute ``method_name`` naming the method for trackers (default: the class name in
  snake case, ``TinyNet`` -> ``tiny_net``).

``SimpleBaselineTask``, ``StackedHourglassTask`` and ``CPMTask`` are thin subclasses kept for Python code and older
checkpoints: they turn their historical network arguments into the network spec.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from lightning_pose.codecs import HeatmapCodec
from lightning_pose.errors import ConfigError
from lightning_pose.losses.heatmap import multi_stage_heatmap_loss
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.input_size import check_input_size
from lightning_pose.tasks.network import NetworkSpec, _import, _unwrap, describe_network

__all__ = ["HeatmapTask", "SimpleBaselineTask", "StackedHourglassTask", "CPMTask", "network_method_name"]


def _network_class(spec: NetworkSpec | None) -> Any:
    """The class (or function) a network spec builds, without building it; ``None`` without a spec."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return _import(describe_network(spec)["class_path"])
    return _unwrap(spec)[0]


def _accepts(target: Any, name: str) -> bool:
    """Whether ``target(...)`` takes a keyword argument ``name``."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def network_method_name(spec: NetworkSpec | None) -> str:
    """Method name of a heatmap network for trackers: its class attribute ``method_name``, else its class name in
    snake case (``ConvolutionalPoseMachine`` -> ``convolutional_pose_machine``); ``"heatmap"`` without a network."""
    target = _network_class(spec)
    if target is None:
        return "heatmap"
    name = getattr(target, "method_name", None)
    if isinstance(name, str) and name:
        return name
    raw = getattr(target, "__name__", type(target).__name__)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", raw)).lower()


class HeatmapTask(PoseTask):
    """Heatmap pose estimation over an injected network (see the module docstring for what a network provides).

    Args:
        network: the network factory ``num_keypoints -> nn.Module``: in YAML
            ``{class_path: lightning_pose.models.SimpleBaseline, init_args: {backbone: resnet50}}``; from Python a
            class, a ``functools.partial`` of one or such a mapping (see :mod:`lightning_pose.tasks.network`).
            Stored in the hyper-parameters, so a checkpoint rebuilds it alone.
        sigma: Gaussian sigma of the targets in heatmap pixels.
        decode: ``"quarter"`` (argmax + quarter-pixel offset) or ``"dark"`` (Taylor refinement; pair with ``unbiased``).
        unbiased: centre the target Gaussian at the exact sub-pixel position (DARK's unbiased encoding).
        loss_aggregate: ``"sum"`` or ``"mean"`` of the per-stack/stage losses.
        background: add the CPM background channel ``max(0, 1 - max_k H_k)`` to targets and outputs. Rule: the
            flag is passed to the network as ``background=`` when its constructor takes that argument and the spec
            does not set it; the built network's ``background`` attribute (``False`` when absent) must then equal
            the flag, otherwise the task refuses it with one line (a YAML network block lists every argument, so
            set both ``model.init_args.background`` and the network's ``background``).
        **kwargs: see :class:`~lightning_pose.tasks.base.PoseTask`.
    """

    def __init__(
        self,
        network: NetworkSpec | None = None,
        sigma: float = 2.0,
        decode: str = "quarter",
        unbiased: bool = False,
        loss_aggregate: str = "sum",
        background: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(network=network, **kwargs)
        if loss_aggregate not in ("sum", "mean"):
            raise ValueError(f"loss_aggregate must be 'sum' or 'mean', got {loss_aggregate!r}")
        self.loss_aggregate = loss_aggregate
        self.background = bool(background)
        self.network = self._build_heatmap_network()
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

    @property
    def method_name(self) -> str:  # type: ignore[override]
        """Tracker/grouping name: the network's ``method_name`` (see :func:`network_method_name`)."""
        return network_method_name(self.network_spec)

    def _build_heatmap_network(self) -> nn.Module:
        """Build the injected network, passing ``background`` when it takes it, and check stride and background."""
        owner = type(self).__name__
        if self.network_spec is None:
            raise ConfigError(
                f"{owner}: no network given; set model.init_args.network, e.g. "
                "{class_path: lightning_pose.models.SimpleBaseline, init_args: {backbone: resnet50}}"
            )
        target = _network_class(self.network_spec)
        extra = {"background": self.background} if _accepts(target, "background") else {}
        net = self.make_network(**extra)
        name = type(net).__name__
        stride = getattr(net, "stride", None)
        if isinstance(stride, bool) or not isinstance(stride, numbers.Integral) or stride < 1:
            raise ConfigError(
                f"{owner}: network {name} has no integer 'stride' attribute (input pixels per heatmap "
                f"pixel), got {stride!r}"
            )
        net_background = bool(getattr(net, "background", False))
        if net_background != self.background:
            raise ConfigError(
                f"{owner}: background={self.background} but network {name} has "
                f"background={net_background}; set model.init_args.background and the network's "
                "background to the same value"
            )
        return net

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


def _own_network(owner: str, cls: type, args: dict[str, Any], given: NetworkSpec | None) -> functools.partial:
    """The network spec of a thin task class: ``cls`` with its own ``args``.

    A ``network`` given as well (the stored description in checkpoints of these classes) must be of the same class
    and agree with ``args`` (``pretrained`` excepted: weights come from the checkpoint); arguments it adds are kept.
    """
    if given is None:
        return functools.partial(cls, **args)
    stored = describe_network(given)
    own = describe_network(functools.partial(cls, **args))
    if _network_class(given) is not cls:
        raise ConfigError(
            f"{owner} builds a {cls.__name__}, not the given network {stored['class_path']}; "
            "use HeatmapTask with that network instead"
        )
    clash = sorted(
        k
        for k, v in own["init_args"].items()
        if k != "pretrained" and k in stored["init_args"] and stored["init_args"][k] != v
    )
    if clash:
        k = clash[0]
        raise ConfigError(
            f"{owner}: network argument {k}={stored['init_args'][k]!r} contradicts the task's "
            f"{k}={own['init_args'][k]!r}; set it once, or use HeatmapTask with a network"
        )
    return functools.partial(cls, **{**stored["init_args"], **args})


class SimpleBaselineTask(HeatmapTask):
    """SimpleBaseline (Xiao et al., ECCV18): ``HeatmapTask`` with a :class:`~lightning_pose.models.SimpleBaseline`.

    Args:
        backbone: any timm model name with ``features_only`` support (``resnet50``, ``resnet18``, ``convnext_tiny``...).
        pretrained: load timm's ImageNet weights (downloads them; never in tests).
        deconv_channels: channels of the deconvolution layers (their number sets the stride: 32 / 2^n).
        **kwargs: see :class:`HeatmapTask`.
    """

    method_name = "simple_baseline"

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        deconv_channels: tuple[int, ...] = (256, 256, 256),
        **kwargs: Any,
    ) -> None:
        from lightning_pose.models.simple_baseline import SimpleBaseline

        args = {"backbone": backbone, "pretrained": pretrained, "deconv_channels": tuple(deconv_channels)}
        network = _own_network(type(self).__name__, SimpleBaseline, args, kwargs.pop("network", None))
        super().__init__(network=network, **kwargs)


class StackedHourglassTask(HeatmapTask):
    """Stacked Hourglass (Newell et al., ECCV16): ``HeatmapTask`` with a
    :class:`~lightning_pose.models.StackedHourglass` (intermediate supervision on every stack).

    Args:
        num_stacks: number of hourglasses (8 in the paper).
        channels: feature channels (256 in the paper).
        depth: downsamplings per hourglass (4).
        stem_channels: width of the stem's first 7x7 convolution (64 in the paper; smaller for CPU-sized runs).
        **kwargs: see :class:`HeatmapTask`.
    """

    method_name = "hourglass"

    def __init__(
        self, num_stacks: int = 8, channels: int = 256, depth: int = 4, stem_channels: int = 64, **kwargs: Any
    ) -> None:
        from lightning_pose.models.hourglass import StackedHourglass

        args = {"num_stacks": num_stacks, "channels": channels, "depth": depth, "stem_channels": stem_channels}
        network = _own_network(type(self).__name__, StackedHourglass, args, kwargs.pop("network", None))
        super().__init__(network=network, **kwargs)


class CPMTask(HeatmapTask):
    """Convolutional Pose Machines (Wei et al., CVPR16): ``HeatmapTask`` with a
    :class:`~lightning_pose.models.ConvolutionalPoseMachine`, every stage supervised.

    Args:
        num_stages: stages (6 in the paper).
        channels: width of the stage convolutions (128 in the paper).
        center_map: feed the Gaussian centre map (original CPM; for top-down crops it is the crop centre).
        batch_norm: the modern variant with batch norm (mmpose); ``False`` for the original network.
        **kwargs: see :class:`HeatmapTask`; its ``background`` (the original background channel) is also given to
            the network.
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
        from lightning_pose.models.cpm import ConvolutionalPoseMachine

        args = {
            "num_stages": num_stages,
            "channels": channels,
            "center_map": center_map,
            "batch_norm": batch_norm,
            "background": bool(kwargs.get("background", False)),
        }
        network = _own_network(type(self).__name__, ConvolutionalPoseMachine, args, kwargs.pop("network", None))
        super().__init__(network=network, **kwargs)

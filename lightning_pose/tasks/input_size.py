"""Check, when a task is built, that the network can take the configured input size (one clear line, not a shape
error in the first training step)."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from lightning_pose.errors import ConfigError

__all__ = ["check_input_size"]


def _nearest(value: int, stride: int) -> str:
    lower, upper = value // stride * stride, -(-value // stride) * stride
    return f"{upper}" if lower == 0 or lower == upper else f"{lower} or {upper}"


def check_input_size(network: nn.Module, input_size: Sequence[int], owner: str) -> None:
    """Refuse an input size the network's geometry cannot take.

    Args:
        network: the task's network; its ``stride`` (input pixels per output-map pixel, default 1) and optional
            ``min_input_side`` (smallest input side in pixels) are used.
        input_size: ``(W, H)`` of the network input in pixels (linked from the datamodule's ``input_size``).
        owner: the task class name, for the message.

    Raises:
        ConfigError: a side that is not a multiple of the stride, or smaller than the network's minimum.
    """
    w, h = (int(v) for v in input_size)
    stride = int(getattr(network, "stride", 1) or 1)
    if w % stride or h % stride:
        raise ConfigError(
            f"{owner}: input_size [{w}, {h}] (W, H; the datamodule's input_size) is not a multiple of the network "
            f"stride {stride} px; use a width of {_nearest(w, stride)} and a height of {_nearest(h, stride)}"
        )
    min_side = int(getattr(network, "min_input_side", 0) or 0)
    if min(w, h) < min_side:
        raise ConfigError(
            f"{owner}: input_size [{w}, {h}] (W, H; the datamodule's input_size) is too small: this "
            f"network needs at least {min_side} px on each side"
        )

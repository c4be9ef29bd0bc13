"""Stacked Hourglass network (Newell, Yang & Deng, ECCV 2016), as published.

Architecture (docs/methods.md#stacked-hourglass; the Lua ``hg.lua`` model and its PyTorch port):

* pre-activation bottleneck residual ``BN-ReLU-C1(in->out/2)-BN-ReLU-C3(out/2)-BN-ReLU-C1(->out)`` plus a skip
  (identity, or ``C1(in->out)`` when ``in != out``); every convolution has a bias;
* stem ``C7/2(3->s)-BN-ReLU, Res(s->2s), MaxPool2, Res(2s->2s), Res(2s->channels)`` (``s = stem_channels``;
  the published net has ``s = 64``, i.e. 128 intermediate channels), giving stride 4;
* recursive hourglass of ``depth`` levels: ``up1 = Res(x)``, ``low = Res(MaxPool2(x))``, ``low = HG(depth-1)``
  (or ``Res`` at the bottom), ``low = Res(low)``, ``out = up1 + NearestUpsample(low)``; constant width;
* per stack: ``y = lin(Res(HG(x)))`` with ``lin = C1-BN-ReLU``, ``pred = C1(channels->K)(y)``; between stacks
  ``x = x + C1(y) + C1(pred)`` (intermediate supervision on every ``pred``).

Sizes: 8 stacks, 256 channels, K = 16 at 256x256 -> 25.43 M parameters, 27.4 GMACs (conv MACs).

Weight init: PyTorch defaults (kaiming-uniform convolutions, BN weight 1 / bias 0), like the reference PyTorch port.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PreActResidual", "Hourglass", "StackedHourglass"]


class PreActResidual(nn.Module):
    """Pre-activation bottleneck residual module of the hourglass papers.

    Maps ``(B, in_channels, H, W)`` to ``(B, out_channels, H, W)``; ``out_channels`` must be even.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 2 or out_channels % 2:
            raise ValueError(
                "PreActResidual needs in_channels >= 1 and an even out_channels >= 2, "
                f"got {in_channels}, {out_channels}"
            )
        mid = out_channels // 2
        self.branch = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1),
        )
        self.skip: nn.Module = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        # the first ReLU is in-place on the BN output (a new tensor), so x itself is never modified
        return self.branch(x) + self.skip(x)


def _residuals(in_channels: int, out_channels: int, num_blocks: int) -> nn.Sequential:
    """``num_blocks`` residual modules in a row (the first changes the width if needed)."""
    blocks = [PreActResidual(in_channels if i == 0 else out_channels, out_channels) for i in range(num_blocks)]
    return nn.Sequential(*blocks)


class Hourglass(nn.Module):
    """One recursive hourglass of ``depth`` max-pool levels at constant width ``channels``.

    Maps ``(B, channels, H, W)`` to the same shape. Each level halves the resolution with ``MaxPool2d(2)``
    (floor) and restores it with nearest-neighbour upsampling to the skip branch's exact size (for even sizes
    this is the published ``x2`` nearest upsampling; odd sizes such as 23 at 368x368 input still line up).
    """

    def __init__(self, depth: int, channels: int, num_blocks: int = 1) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"Hourglass depth must be >= 1, got {depth}")
        self.depth = depth
        self.up1 = _residuals(channels, channels, num_blocks)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = _residuals(channels, channels, num_blocks)
        self.low2: nn.Module = (
            Hourglass(depth - 1, channels, num_blocks) if depth > 1 else _residuals(channels, channels, num_blocks)
        )
        self.low3 = _residuals(channels, channels, num_blocks)

    def forward(self, x: Tensor) -> Tensor:
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(self.pool(x))))
        return up1 + F.interpolate(low, size=up1.shape[-2:], mode="nearest")


class StackedHourglass(nn.Module):
    """Newell et al.'s stacked hourglass network with intermediate supervision.

    Args:
        num_keypoints: K, heatmap channels per stack.
        num_stacks: number of hourglasses (published: 8; 2 and 1 in the ablations).
        channels: hourglass width ``nFeats`` (published 256; use 32-64 for CPU tests).
        depth: number of down-samplings inside each hourglass (published 4).
        num_blocks: residual modules per hourglass position ``nModules`` (published 1).
        stem_channels: width of the first 7x7 convolution (published 64; the stem's residuals use twice this).

    Forward input ``x``: ``(B, 3, H, W)`` in the input frame, ``H`` and ``W`` multiples of 4 and at least
    ``4 * 2**depth``. Output: a list of ``num_stacks`` heatmap tensors ``(B, K, H/4, W/4)`` (heatmap frame,
    stride 4; the last entry is the final prediction). The pixel-to-heatmap convention is owned by the codecs.
    """

    stride: int = 4
    #: the method this network stands for in trackers (``HeatmapTask.method_name``, W&B group)
    method_name = "hourglass"

    def __init__(
        self,
        num_keypoints: int,
        num_stacks: int = 8,
        channels: int = 256,
        depth: int = 4,
        num_blocks: int = 1,
        stem_channels: int = 64,
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        if num_stacks < 1 or num_blocks < 1 or depth < 1:
            raise ValueError(f"num_stacks, num_blocks and depth must be >= 1, got {num_stacks}, {num_blocks}, {depth}")
        if channels < 2 or channels % 2 or stem_channels < 1:
            raise ValueError(f"channels must be even and >= 2 and stem_channels >= 1, got {channels}, {stem_channels}")
        self.num_keypoints = num_keypoints
        self.num_stacks = num_stacks
        self.channels = channels
        self.depth = depth
        mid = 2 * stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 7, stride=2, padding=3),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            PreActResidual(stem_channels, mid),
            nn.MaxPool2d(2, 2),
            PreActResidual(mid, mid),
            PreActResidual(mid, channels),
        )
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels, num_blocks) for _ in range(num_stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                _residuals(channels, channels, num_blocks),
                nn.Conv2d(channels, channels, 1),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
            for _ in range(num_stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(channels, num_keypoints, 1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1))
        self.merge_preds = nn.ModuleList(nn.Conv2d(num_keypoints, channels, 1) for _ in range(num_stacks - 1))

    @property
    def min_input_side(self) -> int:
        """Smallest input side in pixels (``stride * 2**depth``: the innermost hourglass level keeps one pixel)."""
        return self.stride * 2**self.depth

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return one ``(B, K, H/4, W/4)`` heatmap tensor per stack (see the class docstring)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"StackedHourglass expects a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        min_side = self.stride * 2**self.depth
        if h % self.stride or w % self.stride or h < min_side or w < min_side:
            raise ValueError(
                f"StackedHourglass input {h}x{w} (HxW) must be a multiple of {self.stride} "
                f"and at least {min_side} px on each side for depth {self.depth}"
            )
        x = self.stem(x)
        outputs: list[Tensor] = []
        for i in range(self.num_stacks):
            y = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](y)
            outputs.append(pred)
            if i < self.num_stacks - 1:
                x = x + self.merge_features[i](y) + self.merge_preds[i](pred)
        return outputs

"""Convolutional Pose Machines (Wei, Ramakrishna, Kanade & Sheikh, CVPR 2016).

Architecture (docs/methods.md#cpm; the released Caffe ``pose_deploy_centerMap.prototxt`` and mmpose's ``CPM``), with
``c = channels`` (128 published), ``t = trunk_channels`` (defaults to ``c``) and ``K' = K (+1 with background)``:

* stage 1 on the image: ``C9(3->t)-P, C9(t->t)-P, C9(t->t)-P, C5(t->c/4), C9(c/4->4c), C1(4c->4c), C1(4c->K')``;
* shared image trunk for stages >= 2: ``C9(3->t)-P, C9(t->t)-P, C9(t->t)-P`` (stride 8);
* stage s >= 2: ``f_s = C5(t->c/4)(trunk)`` (own weights per stage), ``z = concat(f_s, belief_{s-1}[, centre])``,
  then ``C11(->c), C11(c), C11(c), C1(c), C1(c->K')``;
* every convolution is followed by [BN and] ReLU except the ``K'`` belief outputs; pools are
  ``MaxPool2d(3, 2, padding=1)`` (368 -> 184 -> 92 -> 46, same sizes as Caffe's ceil-mode 3x3/2 pools).

Original variant: ``background=True, center_map=True, batch_norm=False`` (K' = K + 1, Gaussian centre map with
sigma 21 input px, average-pooled 9/8 to the belief resolution and appended to every stage >= 2's input).
Modern (mmpose) variant: the defaults (BN, no background, no centre map). With BN the convolutions have no bias.

Sizes: 6 stages, K = 16 at 368x368 -> 31.23 M parameters (mmpose style) / 31.22 M (original, K' = 15).

Weight init: every convolution weight ~ Normal(0, 0.01) with zero bias (the Caffe ``weight_filler`` of the released
``genProto.py``), BN weight 1 / bias 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ConvolutionalPoseMachine", "gaussian_center_map"]


def gaussian_center_map(
    batch: int,
    height: int,
    width: int,
    sigma: float,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Gaussian centre map at the centre of a ``height x width`` input, in input pixels.

    The centre is ``((width - 1) / 2, (height - 1) / 2)`` in the 0-based input frame (pixel centres at integers),
    i.e. the crop centre of a top-down sample. Value ``exp(-d^2 / (2 sigma^2))`` with ``d`` in input pixels, peak 1
    (exactly 1 only when the centre falls on a pixel).

    Returns:
        ``(batch, 1, height, width)`` tensor.
    """
    if height < 1 or width < 1 or batch < 1:
        raise ValueError(f"centre map needs positive batch/height/width, got {batch}, {height}, {width}")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"centre map sigma must be a positive finite number of input pixels, got {sigma}")
    ys = torch.arange(height, device=device, dtype=dtype) - (height - 1) / 2.0
    xs = torch.arange(width, device=device, dtype=dtype) - (width - 1) / 2.0
    d2 = ys[:, None] ** 2 + xs[None, :] ** 2
    cmap = torch.exp(-d2 / (2.0 * sigma * sigma))
    return cmap.expand(batch, 1, height, width).contiguous()


def _conv(in_channels: int, out_channels: int, kernel: int, batch_norm: bool, activation: bool = True) -> nn.Sequential:
    """``Conv(k, same padding)`` [+ BN] [+ ReLU]; no bias when followed by BN."""
    use_bn = batch_norm and activation
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=not use_bn)]
    if use_bn:
        layers.append(nn.BatchNorm2d(out_channels))
    if activation:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


def _image_trunk(width: int, batch_norm: bool) -> list[nn.Module]:
    """Three ``C9-P`` blocks from RGB to ``width`` channels at stride 8."""
    return [
        _conv(3, width, 9, batch_norm),
        _pool(),
        _conv(width, width, 9, batch_norm),
        _pool(),
        _conv(width, width, 9, batch_norm),
        _pool(),
    ]


class ConvolutionalPoseMachine(nn.Module):
    """Multi-stage CPM producing belief maps at stride 8.

    Args:
        num_keypoints: K.
        num_stages: number of stages (published 6); each emits a belief map (intermediate supervision).
        background: add a background belief channel (the original), as the **last** channel (index K).
        center_map: append the pooled Gaussian centre map to the input of stages >= 2 (the original).
        batch_norm: BN after every hidden convolution (mmpose); ``False`` reproduces the original net.
        channels: width ``c`` of the stage >= 2 convolutions (published 128); also sets the stage-1 head width
            ``4c`` and the per-stage image feature width ``c // 4``. Use e.g. 16-32 for CPU tests.
        trunk_channels: width of the 9x9 image convolutions (stage 1 and the shared trunk); default ``channels``.
        center_sigma: centre-map Gaussian sigma in input pixels (21 in the original).

    Forward input ``x``: ``(B, 3, H, W)`` in the input frame, ``H`` and ``W`` multiples of 8. Optional
    ``center_map``: ``(B, 1, H, W)`` at input resolution (only with ``center_map=True``; when omitted it is built at
    the input centre with :func:`gaussian_center_map`). It is average-pooled 9/8 (padding 4) to ``H/8 x W/8``.

    Output: list of ``num_stages`` tensors ``(B, out_channels, H/8, W/8)`` (heatmap frame, stride 8); the last is the
    final prediction. ``out_channels = K + 1`` with background, else ``K``.
    """

    stride: int = 8
    #: the method this network stands for in trackers (``HeatmapTask.method_name``, W&B group)
    method_name = "cpm"

    def __init__(
        self,
        num_keypoints: int,
        num_stages: int = 6,
        *,
        background: bool = False,
        center_map: bool = False,
        batch_norm: bool = True,
        channels: int = 128,
        trunk_channels: int | None = None,
        center_sigma: float = 21.0,
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        if channels < 4:
            raise ValueError(f"channels must be >= 4 (per-stage features use channels // 4), got {channels}")
        trunk = channels if trunk_channels is None else trunk_channels
        if trunk < 1:
            raise ValueError(f"trunk_channels must be >= 1, got {trunk_channels}")
        if center_map and not (center_sigma > 0 and math.isfinite(center_sigma)):
            raise ValueError(f"center_sigma must be a positive number of input pixels, got {center_sigma}")
        self.num_keypoints = num_keypoints
        self.num_stages = num_stages
        self.background = background
        self.use_center_map = center_map
        self.batch_norm = batch_norm
        self.channels = channels
        self.trunk_channels = trunk
        self.center_sigma = float(center_sigma)
        self.out_channels = num_keypoints + (1 if background else 0)
        k_out = self.out_channels
        feat = channels // 4
        head = 4 * channels

        self.stage1 = nn.Sequential(
            *_image_trunk(trunk, batch_norm),
            _conv(trunk, feat, 5, batch_norm),
            _conv(feat, head, 9, batch_norm),
            _conv(head, head, 1, batch_norm),
            _conv(head, k_out, 1, batch_norm, activation=False),
        )
        self.trunk: nn.Module | None = nn.Sequential(*_image_trunk(trunk, batch_norm)) if num_stages > 1 else None
        self.stage_features = nn.ModuleList(_conv(trunk, feat, 5, batch_norm) for _ in range(num_stages - 1))
        stage_in = feat + k_out + (1 if center_map else 0)
        self.stages = nn.ModuleList(
            nn.Sequential(
                _conv(stage_in, channels, 11, batch_norm),
                _conv(channels, channels, 11, batch_norm),
                _conv(channels, channels, 11, batch_norm),
                _conv(channels, channels, 1, batch_norm),
                _conv(channels, k_out, 1, batch_norm, activation=False),
            )
            for _ in range(num_stages - 1)
        )
        self.center_pool = nn.AvgPool2d(kernel_size=9, stride=8, padding=4)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Convolutions ~ Normal(0, 0.01) with zero bias; BN weight 1, bias 0 (see the module docstring)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _pooled_center_map(self, x: Tensor, center_map: Tensor | None) -> Tensor:
        b, _, h, w = x.shape
        if center_map is None:
            center_map = gaussian_center_map(b, h, w, self.center_sigma, device=x.device, dtype=x.dtype)
        else:
            if center_map.dim() == 3:
                center_map = center_map.unsqueeze(1)
            if tuple(center_map.shape) != (b, 1, h, w):
                raise ValueError(
                    f"center_map must have shape (B, 1, H, W) = {(b, 1, h, w)} at input resolution, "
                    f"got {tuple(center_map.shape)}"
                )
            center_map = center_map.to(dtype=x.dtype)
        return self.center_pool(center_map)

    def forward(self, x: Tensor, center_map: Tensor | None = None) -> list[Tensor]:
        """Return one ``(B, out_channels, H/8, W/8)`` belief map per stage (see the class docstring)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ConvolutionalPoseMachine expects a (B, 3, H, W) batch, got shape {tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if h % self.stride or w % self.stride:
            raise ValueError(f"ConvolutionalPoseMachine input {h}x{w} (HxW) must be a multiple of {self.stride}")
        if center_map is not None and not self.use_center_map:
            raise ValueError("a center_map was given but the model was built with center_map=False")
        belief = self.stage1(x)
        outputs = [belief]
        if self.trunk is None:
            return outputs
        trunk = self.trunk(x)
        pooled = self._pooled_center_map(x, center_map) if self.use_center_map else None
        for feature_conv, stage in zip(self.stage_features, self.stages):
            parts = [feature_conv(trunk), belief]
            if pooled is not None:
                parts.append(pooled)
            belief = stage(torch.cat(parts, dim=1))
            outputs.append(belief)
        return outputs

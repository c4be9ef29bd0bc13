"""Hybrid part-detection + localisation network (DS-CNN idea, Bulat & Tzimiropoulos ECCV16 cascade; docs/methods.md#hybrid).

Design::

    x (B,3,H,W) --backbone (timm features_only)--> f_last (stride R, e.g. 32)      f_skip (stride 4, e.g. ResNet layer1)
    f_last --[ConvT(k4,s2,no bias)-BN-ReLU] x n--> g (B, D, H/4, W/4) --1x1--> det logits (B, K, H/4, W/4)
    concat(sigmoid(det), g, f_skip) --1x1-BN-ReLU--> refine_channels
        --dilated bottleneck residual blocks (dilation 1, 2, 4, 8)--> --1x1--> reg heatmaps (B, K, H/4, W/4)
    coords = soft-argmax(reg)  (or, fc_regressor=True, an MLP on the 8x8-pooled reg maps)

Why this design:

* **Detection** (DS-CNN's "is joint k here", Bulat's part detector): the SimpleBaseline deconvolution head, the
  strongest simple stride-4 detector on a ResNet; trained with pixel-wise sigmoid BCE on binary disks.
  Its final bias starts at ``log(0.01 / 0.99)`` (prior probability 1 %) so early BCE is not dominated by the huge
  negative background.
* **Regression/localisation subnet** (Bulat's second stage): it sees the detection *probabilities* (where parts
  are and how confident) stacked with the detector's own features ``g`` (Bulat stacks the detection features) and
  the high-resolution stride-4 backbone features ``f_skip`` (docs/methods.md#hybrid; they carry precise low-level location
  cues lost in the 32x bottleneck). Dilated 3x3 convolutions (dilations 1, 2, 4, 8 -> receptive field
  ``1 + 4 * (1 + 2 + 4 + 8) = 61`` heatmap px = 244 input px, more than half of a 256 px input) let it infer
  occluded parts from the configuration of the others at full stride-4 resolution, without pooling. Bottleneck
  blocks (1x1 reduce to ``refine_channels / 2``, two dilated 3x3, 1x1 expand) keep the whole subnet at ~1.3 GMACs
  for 256x192 (vs ~3.6 GMACs for 3x3 convolutions at full width).
* **Coordinates** (DS-CNN's "localisation"): a differentiable soft-argmax of ``reg`` so a coordinate loss can train
  the whole cascade end to end; ``fc_regressor=True`` replaces it with a fully connected regressor on pooled ``reg``
  maps for the pure-regression ablation.

Frames: heatmaps are at stride ``self.stride`` (4 for ResNets with three deconvs); heatmap pixel ``(i, j)`` stands
for input pixel ``(i * stride, j * stride)`` (convention A, docs/conventions.md#heatmap-frame), so the soft-argmax grid ``i / W_h`` is the
normalised input coordinate ``x / W_in`` used by ``RegressionCodec``. ``coords`` are ``(B, K, 2)`` normalised input
coordinates ``(x / W_in, y / H_in)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_pose.codecs import soft_argmax
from lightning_pose.models.backbones import create_backbone
from lightning_pose.models.simple_baseline import deconv_padding

__all__ = ["HybridPoseNet"]


class _DilatedBottleneck(nn.Module):
    """Residual block ``1x1 (C->C/2) - 3x3 dil d - 3x3 dil d (C/2) - 1x1 (C/2->C)``, BN + ReLU; size kept.

    Two dilated 3x3 convolutions per block: the receptive field grows by ``4 d`` heatmap px per block.
    """

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        mid = max(channels // 2, 1)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


def _feature_reductions(name: str) -> list[int]:
    """Strides of every feature level of timm model ``name`` (built on the meta device: no memory, no weights)."""
    import timm

    if not isinstance(name, str) or not timm.is_model(name):
        raise ValueError(f"HybridPoseNet: unknown timm backbone {name!r} (see timm.list_models())")
    try:
        with torch.device("meta"):
            probe = timm.create_model(name, features_only=True, pretrained=False)
    except (RuntimeError, NotImplementedError):  # a model whose constructor computes on tensors: build it for real
        probe = timm.create_model(name, features_only=True, pretrained=False)
    return [int(r) for r in probe.feature_info.reduction()]


class HybridPoseNet(nn.Module):
    """Part detection (``det``) + heatmap regression (``reg``) + coordinates; see the module docstring.

    Args:
        num_keypoints: K.
        backbone: timm model name (features_only).
        pretrained: ImageNet weights via timm (default False).
        deconv_channels: widths of the stride-2 deconvolutions of the detection head.
        refine_channels: width of the refinement subnet.
        dilations: one dilated bottleneck residual block per entry.
        fc_regressor: coordinates from an MLP on ``AdaptiveAvgPool(8, 8)(reg)`` instead of soft-argmax.
        softargmax_beta: softmax temperature applied to ``reg``. ``reg`` is trained towards peak-1 Gaussians, so
            with beta = 20 a trained peak outweighs the ~3000 zero-valued background pixels by ~1e5 (background
            pull towards the map centre < 0.01 heatmap px) while an untrained, near-zero map still gives smooth
            gradients (coords near the centre).
        softargmax_debias: remove the uniform background contribution of the softmax (docs/methods.md#integral-regression). Off by
            default: on near-constant maps (fresh network) the correction divides by ``1 - rho ~ 0`` and is unstable.

    Attributes:
        stride: input pixels per heatmap pixel.

    ``forward(x (B, 3, H, W))`` with ``H, W`` multiples of ``stride`` returns
    ``{"det": (B, K, H/s, W/s) logits, "reg": (B, K, H/s, W/s) heatmaps, "coords": (B, K, 2) normalised}``.
    """

    def __init__(
        self,
        num_keypoints: int,
        backbone: str = "resnet50",
        *,
        pretrained: bool = False,
        deconv_channels: Sequence[int] = (256, 256, 256),
        refine_channels: int = 128,
        dilations: Sequence[int] = (1, 2, 4, 8),
        fc_regressor: bool = False,
        softargmax_beta: float = 20.0,
        softargmax_debias: bool = False,
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"HybridPoseNet: num_keypoints must be >= 1, got {num_keypoints}")
        widths = [int(c) for c in deconv_channels]
        if not widths or any(c < 1 for c in widths):
            raise ValueError(
                f"HybridPoseNet: deconv_channels must be non-empty and positive, got {tuple(deconv_channels)}"
            )
        if refine_channels < 2 or any(int(d) < 1 for d in dilations):
            raise ValueError("HybridPoseNet: refine_channels must be >= 2 and dilations >= 1")
        if softargmax_beta <= 0:
            raise ValueError(f"HybridPoseNet: softargmax_beta must be > 0, got {softargmax_beta}")
        self.num_keypoints = num_keypoints
        self.fc_regressor = fc_regressor
        self.softargmax_beta = float(softargmax_beta)
        self.softargmax_debias = softargmax_debias

        reductions = _feature_reductions(backbone)
        last = reductions[-1]
        if last % (2 ** len(widths)):
            raise ValueError(
                f"HybridPoseNet: backbone stride {last} is not divisible by 2**{len(widths)} deconvolutions"
            )
        self.stride: int = last // 2 ** len(widths)
        skip_idx = min(range(len(reductions)), key=lambda i: (abs(reductions[i] - self.stride), i))
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=(skip_idx, len(reductions) - 1))
        skip_ch, in_ch = int(self.backbone.channels[0]), int(self.backbone.channels[1])

        padding, output_padding = deconv_padding(4)
        layers: list[nn.Module] = []
        for width in widths:
            layers += [
                nn.ConvTranspose2d(
                    in_ch, width, 4, stride=2, padding=padding, output_padding=output_padding, bias=False
                ),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_ch = width
        self.deconv = nn.Sequential(*layers)
        self.det_out = nn.Conv2d(in_ch, num_keypoints, 1)

        self.refine_in = nn.Sequential(
            nn.Conv2d(num_keypoints + in_ch + skip_ch, refine_channels, 1, bias=False),
            nn.BatchNorm2d(refine_channels),
            nn.ReLU(inplace=True),
        )
        self.refine = nn.Sequential(*[_DilatedBottleneck(refine_channels, int(d)) for d in dilations])
        self.reg_out = nn.Conv2d(refine_channels, num_keypoints, 1)

        self.coord_fc: nn.Module | None = None
        if fc_regressor:
            self.coord_fc = nn.Sequential(
                nn.AdaptiveAvgPool2d((8, 8)),
                nn.Flatten(),
                nn.Linear(num_keypoints * 64, 256),
                nn.ReLU(inplace=True),
                nn.Linear(256, num_keypoints * 2),
            )
        self.reset_head_parameters()

    def reset_head_parameters(self) -> None:
        """Deconv / output convs ~ N(0, 0.001); BN (1, 0); det bias = log(0.01/0.99); FC coords bias 0.5."""
        for m in list(self.deconv.modules()) + list(self.refine_in.modules()) + list(self.refine.modules()):
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.det_out.weight, std=0.001)
        nn.init.constant_(self.det_out.bias, math.log(0.01 / 0.99))
        nn.init.normal_(self.reg_out.weight, std=0.001)
        nn.init.zeros_(self.reg_out.bias)
        if self.coord_fc is not None:
            last = self.coord_fc[-1]
            nn.init.normal_(last.weight, std=1e-3)
            nn.init.constant_(last.bias, 0.5)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"HybridPoseNet expects a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = int(x.shape[-2]) // self.stride, int(x.shape[-1]) // self.stride
        if h * self.stride != x.shape[-2] or w * self.stride != x.shape[-1]:
            raise ValueError(
                f"HybridPoseNet input {tuple(x.shape[-2:])} (H, W) must be a multiple of stride {self.stride}"
            )
        skip, last = self.backbone(x)
        g = self.deconv(last)[..., :h, :w]
        if g.shape[-2:] != (h, w):
            raise RuntimeError(f"HybridPoseNet: detection head gave {tuple(g.shape[-2:])} maps, expected {(h, w)}")
        if skip.shape[-2:] != (h, w):
            skip = F.interpolate(skip, size=(h, w), mode="bilinear", align_corners=False)
        det = self.det_out(g)
        feats = self.refine_in(torch.cat((det.sigmoid(), g, skip), dim=1))
        reg = self.reg_out(self.refine(feats))
        if self.coord_fc is not None:
            coords = self.coord_fc(reg).view(x.shape[0], self.num_keypoints, 2)
        else:
            coords, _ = soft_argmax(reg, beta=self.softargmax_beta, debias=self.softargmax_debias)
        return {"det": det, "reg": reg, "coords": coords}

"""Associative Embedding networks: every output predicts K detection heatmaps and K x L tag maps.

Both networks return a list of :class:`AEOutput` (one per supervised output, the last is the final prediction);
``heatmaps`` are ``(B, K, h, w)`` and ``tags`` ``(B, K * L, h, w)`` (joint-major: channels ``k * L .. k * L + L - 1``
belong to joint ``k``) or ``None`` for a heatmap-only output. The pixel convention is owned by the codec.

* :class:`HourglassAENet` -- the paper's network (docs/methods.md#ae-network, pose-ae-train ``PoseNet``): stem
  ``C7/2(3->s), C3(s->2s), MaxPool2, C3(2s->2s), C3(2s->c)`` (stride 4); per stack an hourglass of plain 3x3
  conv units whose width grows by ``increase`` per level (256 -> 384 -> 512 -> 640 -> 768 in the paper), then
  ``C3(c), C3(c)``, a 1x1 output ``C1(c -> K + K L)`` and between stacks ``x = x + C1(out) + C1(y)``. Units are
  ``conv(bias) -> ReLU`` (the original, ``batch_norm=False``) or ``conv -> BN -> ReLU`` (mmpose). Published size:
  4 stacks, c = 256, s = 64, K = 17, L = 1 at 512x512 -> 138.9 M parameters, 221 GMACs.
* :class:`HigherHRNetAENet` -- a HigherHRNet-style head over any timm feature extractor (created without
  downloading weights unless ``pretrained=True``): the backbone's multi-resolution features are projected to
  ``channels``, upsampled to the finest stride (4 for ResNets / HRNets) and summed; a 1x1 layer predicts
  heatmaps + tags there; a deconvolution module (concat(features, prediction) -> 4x4 transposed conv /2 ->
  ``num_blocks`` residual blocks -> 1x1) predicts heatmaps at twice that resolution (stride 2, no tags).
* :class:`SimpleBaselineAENet` -- the SimpleBaseline of the top-down methods (a timm backbone, cut at any feature
  level, then stride-2 deconvolutions) whose last 1x1 layer predicts the K heatmaps and K x L tags together: one
  output at the deconvolutions' stride (4 for a ResNet cut at ``layer3`` with two deconvolutions): the quickstart's
  network for bottom-up data, any timm backbone (``configs/associative_embedding/demo_simple_baseline.yaml``; on the
  CPU demo it learns less per second than the small hourglass of ``demo.yaml``).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AEOutput", "HourglassAENet", "HigherHRNetAENet", "SimpleBaselineAENet", "ConvUnit"]


class AEOutput(NamedTuple):
    """One supervised output: ``heatmaps (B, K, h, w)``, ``tags (B, K * L, h, w)`` or ``None``."""

    heatmaps: Tensor
    tags: Tensor | None


class ConvUnit(nn.Sequential):
    """``conv(k x k, stride, bias) -> [BN] -> ReLU`` (the ReLU and BN optional)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 3,
        stride: int = 1,
        *,
        bn: bool = False,
        relu: bool = True,
    ) -> None:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(out_channels))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _AEHourglass(nn.Module):
    """Recursive hourglass with plain conv units, ``channels + increase`` at the next lower level."""

    def __init__(self, depth: int, channels: int, increase: int, bn: bool) -> None:
        super().__init__()
        inner = channels + increase
        self.up1 = ConvUnit(channels, channels, bn=bn)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = ConvUnit(channels, inner, bn=bn)
        self.low2: nn.Module = (
            _AEHourglass(depth - 1, inner, increase, bn) if depth > 1 else ConvUnit(inner, inner, bn=bn)
        )
        self.low3 = ConvUnit(inner, channels, bn=bn)

    def forward(self, x: Tensor) -> Tensor:
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(self.pool(x))))
        return up1 + F.interpolate(low, size=up1.shape[-2:], mode="nearest")


class HourglassAENet(nn.Module):
    """The associative-embedding stacked hourglass (module docstring).

    Args:
        num_keypoints: K.
        tag_dim: L, tag dimensions per joint (1 in the paper).
        num_stacks: hourglasses (4 in the paper), every one supervised.
        channels: width between hourglasses (256).
        increase: added width per hourglass level (128).
        depth: down-samplings per hourglass (4).
        stem_channels: width of the first 7x7 conv (64; its next unit has twice that).
        batch_norm: ``conv -> BN -> ReLU`` units instead of the original ``conv -> ReLU``.

    Input ``(B, 3, H, W)`` with H, W multiples of ``4 * 2**depth``; output: ``num_stacks`` :class:`AEOutput` at
    stride 4.
    """

    stride: int = 4

    def __init__(
        self,
        num_keypoints: int,
        tag_dim: int = 1,
        num_stacks: int = 4,
        channels: int = 256,
        increase: int = 128,
        depth: int = 4,
        stem_channels: int = 64,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_keypoints < 1 or tag_dim < 1 or num_stacks < 1 or depth < 1 or channels < 1 or stem_channels < 1:
            raise ValueError(
                "HourglassAENet: num_keypoints, tag_dim, num_stacks, depth, channels and stem_channels "
                f"must be >= 1, got {num_keypoints}, {tag_dim}, {num_stacks}, {depth}, {channels}, "
                f"{stem_channels}"
            )
        if increase < 0:
            raise ValueError(f"HourglassAENet: increase must be >= 0, got {increase}")
        self.num_keypoints, self.tag_dim, self.num_stacks, self.depth = num_keypoints, tag_dim, num_stacks, depth
        bn = bool(batch_norm)
        s = stem_channels
        self.stem = nn.Sequential(
            ConvUnit(3, s, 7, 2, bn=bn),
            ConvUnit(s, 2 * s, bn=bn),
            nn.MaxPool2d(2, 2),
            ConvUnit(2 * s, 2 * s, bn=bn),
            ConvUnit(2 * s, channels, bn=bn),
        )
        out_ch = num_keypoints * (1 + tag_dim)
        self.features = nn.ModuleList(
            nn.Sequential(
                _AEHourglass(depth, channels, increase, bn),
                ConvUnit(channels, channels, bn=bn),
                ConvUnit(channels, channels, bn=bn),
            )
            for _ in range(num_stacks)
        )
        self.outs = nn.ModuleList(nn.Conv2d(channels, out_ch, 1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1))
        self.merge_preds = nn.ModuleList(nn.Conv2d(out_ch, channels, 1) for _ in range(num_stacks - 1))

    @property
    def size_divisor(self) -> int:
        """Input sides must be multiples of this."""
        return self.stride * 2**self.depth

    def forward(self, x: Tensor) -> list[AEOutput]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"HourglassAENet expects a (B, 3, H, W) batch, got {tuple(x.shape)}")
        d = self.size_divisor
        if x.shape[-1] % d or x.shape[-2] % d:
            raise ValueError(f"HourglassAENet input {x.shape[-2]}x{x.shape[-1]} (HxW) must be a multiple of {d}")
        k = self.num_keypoints
        x = self.stem(x)
        outputs = []
        for i in range(self.num_stacks):
            y = self.features[i](x)
            out = self.outs[i](y)
            outputs.append(AEOutput(out[:, :k], out[:, k:]))
            if i < self.num_stacks - 1:
                x = x + self.merge_preds[i](out) + self.merge_features[i](y)
        return outputs


class _BasicBlock(nn.Module):
    """ResNet basic block ``C3-BN-ReLU-C3-BN + x -> ReLU`` (HigherHRNet deconvolution module)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvUnit(channels, channels, bn=True), ConvUnit(channels, channels, bn=True, relu=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + x)


class HigherHRNetAENet(nn.Module):
    """HigherHRNet-style associative-embedding head over a timm backbone (module docstring).

    Args:
        num_keypoints: K.
        backbone: timm model name (``hrnet_w32`` for HigherHRNet-W32, ``resnet18``, ...).
        pretrained: download timm's ImageNet weights (never by default).
        out_indices: the backbone feature levels to fuse (timm indexing); the finest sets the tagged stride.
        tag_dim: L.
        channels: width of the fused features and of the deconvolution module.
        num_blocks: residual blocks after the deconvolution (4 in HigherHRNet).
        deconv: add the stride-halving heatmap-only output (HigherHRNet); ``False`` = one output.

    Input ``(B, 3, H, W)`` with sides multiples of the backbone's coarsest stride (32). Output:
    ``[AEOutput(heatmaps, tags) at stride r, AEOutput(heatmaps, None) at stride r/2]``.
    """

    def __init__(
        self,
        num_keypoints: int,
        backbone: str = "hrnet_w32",
        *,
        pretrained: bool = False,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        tag_dim: int = 1,
        channels: int = 32,
        num_blocks: int = 4,
        deconv: bool = True,
    ) -> None:
        super().__init__()
        from lightning_pose.models.backbones import create_backbone

        if num_keypoints < 1 or tag_dim < 1 or channels < 1 or num_blocks < 0:
            raise ValueError("HigherHRNetAENet: num_keypoints, tag_dim, channels must be >= 1 and num_blocks >= 0")
        self.num_keypoints, self.tag_dim = num_keypoints, tag_dim
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=out_indices)
        reductions = list(self.backbone.reductions)
        self.stride = int(min(reductions))
        self.size_divisor = int(max(reductions))
        self.finest = reductions.index(self.stride)
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels))
            for c in self.backbone.channels
        )
        self.fuse = ConvUnit(channels, channels, bn=True)
        out_ch = num_keypoints * (1 + tag_dim)
        self.head = nn.Conv2d(channels, out_ch, 1)
        self.deconv: nn.Module | None = None
        if deconv:
            self.deconv = nn.Sequential(
                nn.ConvTranspose2d(channels + out_ch, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                *[_BasicBlock(channels) for _ in range(num_blocks)],
            )
            self.deconv_head = nn.Conv2d(channels, num_keypoints, 1)

    def forward(self, x: Tensor) -> list[AEOutput]:
        d = self.size_divisor
        if x.dim() != 4 or x.shape[-1] % d or x.shape[-2] % d:
            raise ValueError(f"HigherHRNetAENet input {tuple(x.shape)} must be (B, 3, H, W) with H, W multiples of {d}")
        feats = self.backbone(x)
        size = feats[self.finest].shape[-2:]
        fused = torch.zeros((), device=x.device, dtype=feats[0].dtype)
        for f, lat in zip(feats, self.lateral):
            y = lat(f)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            fused = fused + y
        feat = self.fuse(F.relu(fused))
        out = self.head(feat)
        k = self.num_keypoints
        outputs = [AEOutput(out[:, :k], out[:, k:])]
        if self.deconv is not None:
            up = self.deconv(torch.cat([feat, out], dim=1))
            outputs.append(AEOutput(self.deconv_head(up), None))
        return outputs


class SimpleBaselineAENet(nn.Module):
    """SimpleBaseline (timm backbone + deconvolutions) predicting AE heatmaps and tags (module docstring).

    Args:
        num_keypoints: K.
        backbone: timm model name (``resnet18``, ``resnet50``, ...).
        pretrained: download timm's ImageNet weights (never by default).
        tag_dim: L.
        deconv_channels: width of each stride-2 deconvolution (their count sets the upsampling).
        feature_index: the backbone level the deconvolutions start from (timm indexing; ``3`` = a ResNet's
            stride-16 ``layer3``, whose later stages are then not built; ``-1`` = the deepest).
        final_kernel: kernel of the output convolution (odd).

    Input ``(B, 3, H, W)`` with sides multiples of the backbone level's stride (``size_divisor``). Output:
    ``[AEOutput(heatmaps (B, K, H/stride, W/stride), tags (B, K * L, H/stride, W/stride))]``, in the input frame's
    stride grid anchored at input pixel 0 (the codec owns the pixel convention).
    """

    def __init__(
        self,
        num_keypoints: int,
        backbone: str = "resnet18",
        *,
        pretrained: bool = False,
        tag_dim: int = 1,
        deconv_channels: Sequence[int] = (128, 64),
        feature_index: int = 3,
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        from lightning_pose.models.simple_baseline import SimpleBaseline

        if num_keypoints < 1 or tag_dim < 1:
            raise ValueError("SimpleBaselineAENet: num_keypoints and tag_dim must be >= 1")
        self.num_keypoints, self.tag_dim = num_keypoints, tag_dim
        self.net = SimpleBaseline(
            num_keypoints * (1 + tag_dim),
            backbone,
            pretrained=pretrained,
            deconv_channels=deconv_channels,
            final_kernel=final_kernel,
            feature_index=feature_index,
        )
        self.stride = int(self.net.stride)
        self.size_divisor = int(self.net.backbone.reductions[-1])  # type: ignore[index]

    def forward(self, x: Tensor) -> list[AEOutput]:
        d = self.size_divisor
        if x.dim() != 4 or x.shape[-1] % d or x.shape[-2] % d:
            raise ValueError(
                f"SimpleBaselineAENet input {tuple(x.shape)} must be (B, 3, H, W) with H, W multiples of {d}"
            )
        out = self.net(x)[0]
        k = self.num_keypoints
        return [AEOutput(out[:, :k], out[:, k:])]

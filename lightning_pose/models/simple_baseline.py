"""SimpleBaseline (Xiao, Wu & Wei, ECCV 2018): timm backbone + deconvolution head.

``backbone (last feature map, stride r) -> [ConvTranspose(k, stride 2, no bias) - BN - ReLU] x n -> Conv(final_kernel)
-> K heatmaps`` at stride ``r / 2**n`` (4 for ResNets with the published three 256-channel 4x4 deconvolutions).

Sizes: ResNet-50, 256x192 input, K = 17 -> 34.0 M parameters, 5.43 GMACs (docs/methods.md#simplebaseline).

Weight init (as in the paper's code): deconvolution and final-convolution weights ~ Normal(0, 0.001), final bias 0,
BN weight 1 / bias 0; the backbone keeps timm's init (or its pretrained weights with ``pretrained=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lightning_pose.models.backbones import create_backbone

__all__ = ["SimpleBaseline", "deconv_padding"]


def deconv_padding(kernel: int) -> tuple[int, int]:
    """``(padding, output_padding)`` making ``ConvTranspose2d(kernel, stride=2)`` exactly double the size.

    Supported kernels: 4 -> (1, 0), 3 -> (1, 1), 2 -> (0, 0).
    """
    table = {4: (1, 0), 3: (1, 1), 2: (0, 0)}
    if kernel not in table:
        raise ValueError(f"deconv_kernel must be one of {sorted(table)}, got {kernel}")
    return table[kernel]


class SimpleBaseline(nn.Module):
    """Heatmap network: timm backbone + deconvolution head.

    Args:
        num_keypoints: K output heatmaps.
        backbone: timm model name (``resnet50`` published; ``resnet18`` for small runs).
        pretrained: load timm's ImageNet weights for the backbone (downloads; ``False`` in tests).
        deconv_channels: output width of each stride-2 deconvolution; their count sets the upsampling ``2**n``
            (may be empty: then the final convolution sits directly on the backbone features).
        deconv_kernel: 4 (published), 3 or 2.
        final_kernel: odd kernel size of the last convolution (1 published, or 3).
        feature_index: which backbone feature level the head sits on (timm ``out_indices`` indexing; ``-1``
            published: the deepest, stride-32 map of a ResNet; ``3`` = a ResNet's stride-16 ``layer3``, whose
            later stages are then not built). Small inputs (e.g. 96x128 demo crops, a 3x4 stride-32 map) keep
            more spatial detail with an earlier level and fewer deconvolutions.

    Attributes:
        stride: input pixels per heatmap pixel (backbone reduction / 2**len(deconv_channels)).

    Forward input ``x``: ``(B, 3, H, W)`` in the input frame with ``H`` and ``W`` multiples of ``stride``.
    Output: ``[heatmaps]``, a one-element list holding a ``(B, K, H/stride, W/stride)`` tensor (a list so that
    single- and multi-stage networks share one interface). When ``H`` or ``W`` is not a multiple of the backbone
    reduction, the backbone rounds its map size up and the head then covers a little more than the input at the
    bottom/right; since the stride grids of both are anchored at input pixel 0 (top-left), the map is cropped to its
    top-left ``H/stride x W/stride`` part (e.g. 96 -> 92 rows at 368 px with a stride-32 ResNet).
    """

    #: the method this network stands for in trackers (``HeatmapTask.method_name``, W&B group)
    method_name = "simple_baseline"

    def __init__(
        self,
        num_keypoints: int,
        backbone: str = "resnet50",
        *,
        pretrained: bool = False,
        deconv_channels: Sequence[int] = (256, 256, 256),
        deconv_kernel: int = 4,
        final_kernel: int = 1,
        feature_index: int = -1,
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1, got {num_keypoints}")
        if final_kernel < 1 or final_kernel % 2 == 0:
            raise ValueError(f"final_kernel must be a positive odd integer, got {final_kernel}")
        widths = [int(c) for c in deconv_channels]
        if any(c < 1 for c in widths):
            raise ValueError(f"deconv_channels must be positive, got {tuple(deconv_channels)}")
        padding, output_padding = deconv_padding(deconv_kernel) if widths else (0, 0)

        self.num_keypoints = num_keypoints
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=(int(feature_index),))
        in_channels = self.backbone.channels[-1]
        reduction = self.backbone.reductions[-1]
        upsample = 2 ** len(widths)
        if reduction % upsample:
            raise ValueError(
                f"backbone {backbone!r} has stride {reduction}, which {len(widths)} stride-2 deconvolutions "
                f"cannot divide evenly"
            )
        self.stride: int = reduction // upsample

        layers: list[nn.Module] = []
        for width in widths:
            layers += [
                nn.ConvTranspose2d(
                    in_channels,
                    width,
                    deconv_kernel,
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                    bias=False,
                ),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(in_channels, num_keypoints, final_kernel, padding=final_kernel // 2)
        self.reset_head_parameters()

    def reset_head_parameters(self) -> None:
        """Head init of Xiao et al.: Normal(0, 0.001) deconv/final weights, zero final bias, BN (1, 0)."""
        for m in self.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Return ``[heatmaps (B, K, H/stride, W/stride)]`` (see the class docstring)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SimpleBaseline expects a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if h % self.stride or w % self.stride:
            raise ValueError(f"SimpleBaseline input {h}x{w} (HxW) must be a multiple of its stride {self.stride}")
        feats = self.backbone(x)[-1]
        heatmaps = self.final(self.deconv(feats))
        out_h, out_w = h // self.stride, w // self.stride
        if heatmaps.shape[-2] < out_h or heatmaps.shape[-1] < out_w:
            raise RuntimeError(
                f"SimpleBaseline head produced {tuple(heatmaps.shape[-2:])} maps for a {h}x{w} input, "
                f"smaller than the expected {(out_h, out_w)}: backbone {self.backbone.name!r} rounds sizes down"
            )
        return [heatmaps[..., :out_h, :out_w]]

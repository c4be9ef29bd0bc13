"""DeepPose-style direct coordinate regression (Toshev & Szegedy, CVPR14; mmpose ``RegressionHead``/``RLEHead``).

Network: backbone (timm ``features_only``, last level) -> average pool to a ``pool_grid`` of cells (default 1 x 1:
global pooling; a grid keeps where in the crop the features are, as DeepPose's fully connected layers over the last
convolution map do) -> flatten -> optional hidden
``Linear + ReLU + Dropout`` -> ``Linear(C, K*2)`` (plain) or ``Linear(C, K*4)`` (RLE: ``mu_x, mu_y`` and two
sigma logits).

Output frame: coordinates are **normalised input-frame coordinates** ``(x / W_in, y / H_in)`` where ``x, y`` are
0-based pixels of the network input with pixel centres at integers (the ``RegressionCodec`` target). A value of
0 is the centre of the first pixel, ``(W_in - 1) / W_in`` the centre of the last one.

Initialisation: the output layer starts with small weights (std 1e-3) and bias 0.5 for the coordinates, so a fresh
network predicts every joint near the crop centre instead of at the (0, 0) corner; sigma logits start with bias 0
(sigma = 0.5).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_pose.models.backbones import create_backbone

__all__ = ["DeepPoseRegressor"]


class DeepPoseRegressor(nn.Module):
    """Pooled-feature coordinate regressor (DeepPose with a modern backbone), optionally with RLE sigmas.

    Args:
        num_keypoints: K, number of joints.
        backbone: timm model name (``features_only``; only the last, lowest-resolution level is used).
        pretrained: load ImageNet weights through timm (default False: no download).
        rle: also predict per-coordinate scales ``sigma = sigmoid(logit)`` for Residual Log-likelihood Estimation.
        hidden: width of an optional hidden fully connected layer (with ReLU) after pooling; ``None`` = none.
        dropout: dropout probability applied to the pooled (or hidden) features before the output layer.
        pool_grid: ``(rows, cols)`` of the adaptive average pool over the last feature map before the fully
            connected layers (``C x rows x cols`` features); ``(1, 1)`` (default) is global average pooling.

    ``forward(x)`` takes ``x`` of shape ``(B, 3, H_in, W_in)`` and returns a dict:
        ``"coords"``: ``(B, K, 2)`` normalised input-frame coordinates ``(x / W_in, y / H_in)``;
        ``"sigma"`` (only when ``rle``): ``(B, K, 2)`` in ``(0, 1)``, in the same normalised units as ``coords``.
    """

    def __init__(
        self,
        num_keypoints: int,
        backbone: str = "resnet50",
        *,
        pretrained: bool = False,
        rle: bool = False,
        hidden: int | None = None,
        dropout: float = 0.0,
        pool_grid: tuple[int, int] | list[int] = (1, 1),
    ) -> None:
        super().__init__()
        grid = tuple(int(v) for v in pool_grid)
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"DeepPoseRegressor: pool_grid must be two integers >= 1 (rows, cols), got {pool_grid}")
        if num_keypoints < 1:
            raise ValueError(f"DeepPoseRegressor: num_keypoints must be >= 1, got {num_keypoints}")
        if hidden is not None and hidden < 1:
            raise ValueError(f"DeepPoseRegressor: hidden must be None or >= 1, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DeepPoseRegressor: dropout must be in [0, 1), got {dropout}")
        self.num_keypoints = num_keypoints
        self.rle = rle
        self.backbone = create_backbone(backbone, pretrained=pretrained, out_indices=(-1,))
        in_ch = int(self.backbone.channels[-1]) * grid[0] * grid[1]
        self.pool_grid = grid
        self.pool = nn.AdaptiveAvgPool2d(grid)
        layers: list[nn.Module] = []
        if hidden is not None:
            layers += [nn.Linear(in_ch, hidden), nn.ReLU(inplace=True)]
            in_ch = hidden
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.neck = nn.Sequential(*layers)
        self.fc = nn.Linear(in_ch, num_keypoints * (4 if rle else 2))
        self._init_output()

    def _init_output(self) -> None:
        nn.init.normal_(self.fc.weight, std=1e-3)
        with torch.no_grad():
            bias = self.fc.bias.view(self.num_keypoints, -1)
            bias[:, :2] = 0.5
            bias[:, 2:] = 0.0

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.dim() != 4:
            raise ValueError(f"DeepPoseRegressor: expected input (B, 3, H, W), got shape {tuple(x.shape)}")
        feat = self.backbone(x)[-1]
        pooled = self.neck(self.pool(feat).flatten(1))
        out = self.fc(pooled).view(x.shape[0], self.num_keypoints, -1)
        result = {"coords": out[..., :2]}
        if self.rle:
            result["sigma"] = out[..., 2:4].sigmoid()
        return result

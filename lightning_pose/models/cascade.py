"""DeepPose cascade refinement stages (Toshev & Szegedy, CVPR14, §3.2) on top of any coordinate regressor.

Stage ``s`` looks at a square crop around every joint's current estimate and predicts that joint's displacement.
Stages share no weights with the first regressor or with each other; inside a stage one small CNN is shared by all
joints and has a per-joint output (``K * 2`` outputs, the crop of joint ``k`` reads pair ``k``).

Coordinate frames and the crop geometry (all exact, no half-pixel drift):

* Coordinates given and returned are **normalised input-frame coordinates** ``u = x / W_in, v = y / H_in`` where
  ``x, y`` are 0-based input pixels with pixel centres at integers (the package ``RegressionCodec`` convention).
* ``grid_sample(align_corners=False)`` addresses a map of width ``w`` with ``g in [-1, 1]`` where pixel ``p``
  (continuous, centres at integers) sits at ``g = (2 p + 1) / w - 1``. For the input image ``w = W_in`` and
  ``p = x``, hence **``g_x = (2 x + 1) / W_in - 1 = 2 u - 1 + 1 / W_in``** (same for ``y`` with ``H_in``).
  A feature map of stride ``r`` (``w = W_in / r``) follows the package's heatmap convention A (codecs): feature
  pixel ``j`` sits at input ``x = r j`` -- which is also where a ResNet's symmetric-padded stride-``r`` units have
  their receptive-field centre -- so ``p = x / r`` and **``g_x = (2 x + r) / W_in - 1``** (``r = 1``: the image
  formula). In general ``g_x = (2 x + r) / W_in - 1`` with ``r = 1`` for ``source="image"``.
* Crop of joint ``k``: centre ``c_k`` (input px), side ``L`` (input px, the same for all joints of a person),
  ``S = crop_size`` samples per side; crop pixel ``i`` (0-based) samples input position
  ``x = c_x + (i - (S - 1) / 2) * L / S``. Thus the crop centre ``(S - 1) / 2`` is exactly ``c_k`` and adjacent crop
  pixels are ``L / S`` input px apart (for odd ``S`` the centre is a crop pixel; for even ``S`` it is the point
  between the four central crop pixels).
* Box side: ``L = box_factor * torso diameter`` of the current estimate, the torso diameter being the mean
  input-pixel length of the ``torso_pairs`` segments (e.g. left shoulder - right hip). Without torso pairs,
  ``L = box_factor * fallback_fraction * min(W_in, H_in)``. ``L`` is clamped to
  ``[min_side_fraction * min(W_in, H_in), max(W_in, H_in)]`` so a collapsed or exploded estimate stays usable.
* The stage CNN predicts the displacement in **crop units** (fractions of ``L``); ``forward`` converts it to
  normalised input coordinates: ``du = d_crop_x * L / W_in``, ``dv = d_crop_y * L / H_in``.

Training (paper): the stage is trained on crops around *simulated* estimates ``y_gt + delta``,
``delta ~ N(0, residual_std)`` per joint, the std fitted to the previous stage's residuals
(:meth:`DeepPoseCascade.estimate_residual_std`, :meth:`DeepPoseCascade.jitter`); the target of stage ``s`` is
``y_gt - estimate``. The incoming estimates are detached by default (stages trained separately, docs/methods.md#deeppose-cascade).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DeepPoseCascade", "torso_pairs", "TORSO_PAIR_NAMES"]

#: opposite shoulder-hip pairs whose mean length is the torso diameter (DeepPose's crop size)
TORSO_PAIR_NAMES = (("left_shoulder", "right_hip"), ("right_shoulder", "left_hip"))


def torso_pairs(keypoint_names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Index pairs of :data:`TORSO_PAIR_NAMES` present in ``keypoint_names`` (empty when the set has no torso)."""
    names = list(keypoint_names)
    return tuple((names.index(a), names.index(b)) for a, b in TORSO_PAIR_NAMES if a in names and b in names)


class _StageNet(nn.Module):
    """Tiny CNN: ``(N, C, S, S)`` crops -> ``(N, K, 2)`` per-joint displacements in crop units.

    3x3 convs with stride 2 (BN + ReLU each) until the map is <= 4 px: the first maps ``C -> width``, the next
    double the channels up to ``2 * width``; the final (<= 4 x 4) map is flattened -- not averaged, a displacement
    needs *where* the joint is in the crop -- into ``Linear(., K * 2)`` initialised to zero (a fresh stage moves
    nothing). S = 64, width = 64, K = 17: 0.44 M parameters, 0.55 GMACs per stage (17 crops).
    """

    def __init__(self, in_channels: int, num_keypoints: int, crop_size: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        ch, size = width, (crop_size + 1) // 2
        while size > 4:
            out = min(ch * 2, 2 * width)
            layers += [
                nn.Conv2d(ch, out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            ch, size = out, (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch * size * size, num_keypoints * 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.num_keypoints = num_keypoints

    def forward(self, crops: Tensor) -> Tensor:
        x = self.features(crops).flatten(1)
        return self.head(x).view(crops.shape[0], self.num_keypoints, 2)


class DeepPoseCascade(nn.Module):
    """DeepPose refinement stages: per-joint crops (``grid_sample``) -> tiny CNN -> displacement.

    Args:
        num_keypoints: K.
        num_stages: number of refinement stages (the regressor is not counted); stages are indexed ``0..num_stages-1``.
        crop_size: S, crop side in samples (pixels of the crop given to each stage).
        box_factor: crop side = ``box_factor`` x torso diameter (or x ``fallback_fraction * min(W_in, H_in)``).
        source: ``"image"`` (crops of the network input, 3 channels) or ``"features"`` (crops of a feature map of
            stride ``feature_stride`` in the input frame, ``in_channels`` channels).
        torso_pairs: ``(a, b)`` joint index pairs whose mean length is the torso diameter; empty = unknown torso.
        width: channels of the first stage conv (doubling up to 4x).
        in_channels: channels of the source (default 3 for images; required for features).
        feature_stride: input px per feature-map px (``source="features"`` only).
        fallback_fraction: crop side fraction of ``min(W_in, H_in)`` (times ``box_factor``) without torso pairs.
        min_side_fraction: lower clamp of the crop side as a fraction of ``min(W_in, H_in)``.
        detach_coords: stop gradients through the incoming estimates (crop centres and sides).
    """

    def __init__(
        self,
        num_keypoints: int,
        num_stages: int = 2,
        *,
        crop_size: int = 64,
        box_factor: float = 1.0,
        source: str = "image",
        torso_pairs: Sequence[tuple[int, int]] = (),
        width: int = 64,
        in_channels: int | None = None,
        feature_stride: int = 4,
        fallback_fraction: float = 0.25,
        min_side_fraction: float = 0.05,
        detach_coords: bool = True,
    ) -> None:
        super().__init__()
        if num_keypoints < 1 or num_stages < 1:
            raise ValueError(
                f"DeepPoseCascade: need num_keypoints >= 1 and num_stages >= 1, got {num_keypoints}, {num_stages}"
            )
        if crop_size < 2:
            raise ValueError(f"DeepPoseCascade: crop_size must be >= 2, got {crop_size}")
        if box_factor <= 0 or fallback_fraction <= 0 or min_side_fraction <= 0:
            raise ValueError("DeepPoseCascade: box_factor, fallback_fraction and min_side_fraction must be > 0")
        if source not in ("image", "features"):
            raise ValueError(f"DeepPoseCascade: source must be 'image' or 'features', got {source!r}")
        if source == "features" and in_channels is None:
            raise ValueError("DeepPoseCascade: source='features' needs in_channels (channels of the feature map)")
        if feature_stride < 1:
            raise ValueError(f"DeepPoseCascade: feature_stride must be >= 1, got {feature_stride}")
        pairs = tuple((int(a), int(b)) for a, b in torso_pairs)
        for a, b in pairs:
            if not (0 <= a < num_keypoints and 0 <= b < num_keypoints) or a == b:
                raise ValueError(f"DeepPoseCascade: torso pair ({a}, {b}) invalid for {num_keypoints} keypoints")
        self.num_keypoints = num_keypoints
        self.num_stages = num_stages
        self.crop_size = crop_size
        self.box_factor = float(box_factor)
        self.source = source
        self.torso_pairs = pairs
        self.in_channels = 3 if in_channels is None else int(in_channels)
        self.feature_stride = feature_stride if source == "features" else 1
        self.fallback_fraction = float(fallback_fraction)
        self.min_side_fraction = float(min_side_fraction)
        self.detach_coords = detach_coords
        self.stages = nn.ModuleList(
            [_StageNet(self.in_channels, num_keypoints, crop_size, width) for _ in range(num_stages)]
        )

    # ------------------------------------------------------------------ geometry
    def input_size(self, source: Tensor) -> tuple[int, int]:
        """``(W_in, H_in)`` of the input frame for a source map ``(B, C, h, w)``."""
        return source.shape[-1] * self.feature_stride, source.shape[-2] * self.feature_stride

    def crop_sides(self, coords: Tensor, input_size: tuple[int, int]) -> Tensor:
        """Crop side ``L`` (B,) in input pixels for estimates ``coords`` (B, K, 2) normalised; see module docstring."""
        w_in, h_in = input_size
        lo, hi = self.min_side_fraction * min(w_in, h_in), float(max(w_in, h_in))
        if self.torso_pairs:
            a = torch.tensor([p[0] for p in self.torso_pairs], device=coords.device)
            b = torch.tensor([p[1] for p in self.torso_pairs], device=coords.device)
            scale = coords.new_tensor([w_in, h_in])
            seg = (coords[:, a] - coords[:, b]) * scale  # (B, P, 2) input px
            side = self.box_factor * seg.norm(dim=-1).mean(dim=1)
        else:
            side = coords.new_full((coords.shape[0],), self.box_factor * self.fallback_fraction * min(w_in, h_in))
        return side.clamp(lo, hi)

    def sample_crops(self, source: Tensor, coords: Tensor) -> tuple[Tensor, Tensor]:
        """Bilinear crops around every joint.

        Args:
            source: ``(B, C, h, w)`` image (input frame) or feature map (stride ``feature_stride``).
            coords: ``(B, K, 2)`` normalised input-frame centres.

        Returns:
            crops ``(B, K, C, S, S)`` (zeros outside the source) and sides ``L`` ``(B,)`` in input px.
        """
        if source.dim() != 4 or source.shape[1] != self.in_channels:
            raise ValueError(
                f"DeepPoseCascade: source must be (B, {self.in_channels}, h, w), got shape {tuple(source.shape)}"
            )
        if coords.dim() != 3 or coords.shape[0] != source.shape[0] or coords.shape[1:] != (self.num_keypoints, 2):
            raise ValueError(
                f"DeepPoseCascade: coords must be (B={source.shape[0]}, K={self.num_keypoints}, 2), "
                f"got {tuple(coords.shape)}"
            )
        if self.detach_coords:
            coords = coords.detach()
        coords = coords.to(source.dtype)
        b, c = source.shape[:2]
        k, s = self.num_keypoints, self.crop_size
        w_in, h_in = self.input_size(source)
        side = self.crop_sides(coords, (w_in, h_in))  # (B,)
        steps = torch.arange(s, device=source.device, dtype=source.dtype) - (s - 1) / 2.0
        offs = steps[None, :] * (side[:, None] / s)  # (B, S) input px
        x = coords[..., 0:1] * w_in + offs[:, None, :]  # (B, K, S) crop column j -> input x
        y = coords[..., 1:2] * h_in + offs[:, None, :]  # (B, K, S) crop row i -> input y
        r = float(self.feature_stride)  # 1 for images
        gx = (2.0 * x + r) / w_in - 1.0
        gy = (2.0 * y + r) / h_in - 1.0
        grid = torch.stack(
            (gx[:, :, None, :].expand(b, k, s, s), gy[:, :, :, None].expand(b, k, s, s)), dim=-1
        ).reshape(b, k * s, s, 2)
        out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.view(b, c, k, s, s).permute(0, 2, 1, 3, 4), side

    # ------------------------------------------------------------------ network
    def forward(self, image: Tensor, coords: Tensor, stage: int) -> Tensor:
        """Displacement ``(B, K, 2)`` in normalised input coords predicted by refinement stage ``stage``.

        Args:
            image: ``(B, C, h, w)`` source (input image, or feature map when ``source="features"``).
            coords: ``(B, K, 2)`` current normalised estimates (crop centres).
            stage: 0-based refinement stage index in ``[0, num_stages)``.
        """
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"DeepPoseCascade: stage must be in [0, {self.num_stages}), got {stage}")
        crops, side = self.sample_crops(image, coords)
        b, k = crops.shape[:2]
        per_joint = self.stages[stage](crops.reshape(b * k, *crops.shape[2:]))  # (B*K, K, 2) crop units
        idx = torch.arange(k, device=crops.device).repeat(b)
        delta_crop = per_joint[torch.arange(b * k, device=crops.device), idx].view(b, k, 2)
        w_in, h_in = self.input_size(image)
        scale = torch.stack((side / w_in, side / h_in), dim=-1)[:, None, :]  # (B, 1, 2)
        return delta_crop * scale

    def refine(self, image: Tensor, coords: Tensor, num_stages: int | None = None) -> list[Tensor]:
        """Apply stages ``0..n-1`` in turn (``y_s = y_{s-1} + delta_s``); returns the ``n`` refined (B, K, 2) coords."""
        n = self.num_stages if num_stages is None else num_stages
        if not 0 < n <= self.num_stages:
            raise ValueError(f"DeepPoseCascade.refine: num_stages must be in [1, {self.num_stages}], got {n}")
        outs = []
        current = coords
        for s in range(n):
            current = current + self.forward(image, current, s)
            outs.append(current)
        return outs

    # ------------------------------------------------------------------ training
    def training_losses(
        self,
        image: Tensor,
        coords: Tensor,
        target: Tensor,
        weight: Tensor,
        residual_std: Tensor,
        stage_loss: Callable[[Tensor, Tensor, Tensor], Tensor],
        min_std: float = 0.01,
        momentum: float = 0.1,
    ) -> list[Tensor]:
        """The paper's stage-wise training on simulated estimates, one loss per stage.

        For each stage ``s``: update the running residual spread of the previous stage
        (:meth:`update_residual_std`, in place), draw simulated estimates ``target + N(0, max(std_s, min_std))``
        (:meth:`jitter`; unlabelled joints keep the previous estimate: they have no ground truth to jitter), predict
        the displacement from crops around them and take ``stage_loss(simulated + delta, target, weight)``; the next
        stage starts from those (detached) refined estimates.

        Args:
            image: ``(B, C, h, w)`` source of the crops (see :meth:`forward`).
            coords: ``(B, K, 2)`` normalised estimates of the regressor (detached here).
            target: ``(B, K, 2)`` normalised ground truth; weight: ``(B, K)`` (> 0 = labelled).
            residual_std: ``(num_stages, K, 2)`` running std in normalised units, updated in place (a buffer of
                the caller, so that it is saved with the checkpoint).
            stage_loss: ``(pred, target, weight) -> scalar`` (the task uses the masked L1).
            min_std: floor of the simulated-estimate noise (normalised units).
            momentum: weight of the batch estimate in the running std.
        """
        if tuple(residual_std.shape) != (self.num_stages, self.num_keypoints, 2):
            raise ValueError(
                f"DeepPoseCascade.training_losses: residual_std must be ({self.num_stages}, "
                f"{self.num_keypoints}, 2), got {tuple(residual_std.shape)}"
            )
        losses = []
        previous = coords.detach()
        for stage in range(self.num_stages):
            self.update_residual_std(residual_std[stage], previous - target, weight, momentum)
            simulated = self.jitter(target, residual_std[stage].clamp_min(min_std))
            simulated = torch.where(weight[..., None] > 0, simulated, previous)
            refined = simulated + self.forward(image, simulated, stage)
            losses.append(stage_loss(refined, target, weight))
            previous = refined.detach()
        return losses

    @staticmethod
    @torch.no_grad()
    def update_residual_std(running_std: Tensor, residual: Tensor, weight: Tensor, momentum: float = 0.1) -> None:
        """Exponential moving average of the per-joint RMS residual, in place.

        ``running_std (K, 2) <- (1 - momentum) running_std + momentum * rms`` for joints with at least one labelled
        sample (``weight > 0``) in ``residual (B, K, 2)`` (normalised units); other joints keep their value.
        """
        std = DeepPoseCascade.estimate_residual_std(residual, torch.zeros_like(residual), weight)
        seen = (weight > 0).any(dim=0)[:, None]
        running_std.copy_(torch.where(seen, (1 - momentum) * running_std + momentum * std, running_std))

    @staticmethod
    def jitter(coords_gt: Tensor, residual_std: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Simulated previous-stage estimates ``coords_gt + delta``, ``delta ~ N(0, residual_std)`` per coordinate.

        Args:
            coords_gt: ``(B, K, 2)`` normalised ground truth.
            residual_std: std in normalised units, broadcastable to ``(B, K, 2)`` (e.g. ``(K, 2)`` per joint).
            generator: optional ``torch.Generator`` (on the device of ``coords_gt``) for reproducibility.
        """
        std = torch.as_tensor(residual_std, dtype=coords_gt.dtype, device=coords_gt.device)
        if (std < 0).any():
            raise ValueError("DeepPoseCascade.jitter: residual_std must be >= 0")
        try:
            std = std.expand_as(coords_gt)
        except RuntimeError as exc:
            raise ValueError(
                f"DeepPoseCascade.jitter: residual_std shape {tuple(std.shape)} does not broadcast to "
                f"{tuple(coords_gt.shape)}"
            ) from exc
        noise = torch.randn(coords_gt.shape, generator=generator, dtype=coords_gt.dtype, device=coords_gt.device)
        return coords_gt + noise * std

    @staticmethod
    def estimate_residual_std(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """Per-joint RMS residual ``(K, 2)`` of ``pred - target`` (both ``(B, K, 2)``) over samples with weight > 0.

        This is the maximum-likelihood std of a zero-mean Normal fitted to the residuals (the paper's displacement
        model); joints with no weighted sample get std 0.
        """
        if pred.shape != target.shape or pred.dim() != 3:
            raise ValueError(
                f"estimate_residual_std: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                "must be equal (B, K, 2)"
            )
        if weight is None:
            w = torch.ones(pred.shape[:2], dtype=pred.dtype, device=pred.device)
        else:
            w = (weight > 0).to(pred.dtype)
        sq = (pred - target).pow(2) * w[..., None]
        count = w.sum(dim=0).clamp_min(1.0)[:, None]
        return (sq.sum(dim=0) / count).sqrt()

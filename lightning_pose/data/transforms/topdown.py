"""Top-down augmentation: one person crop per sample, built by a single affine warp.

Pipeline per sample (HRNet order): half-body box (optional) -> random scale / rotation / shift of the
crop box -> horizontal flip -> ONE ``cv2.warpAffine`` with the composite matrix -> photometric and
occlusion augmentation of the crop (albumentations, pixel-level). Keypoints are moved by the same
matrix and their channels are swapped with ``flip_indices`` when flipped. Frames and the warp convention
are those of :mod:`lightning_pose.data.geometry`; settings handling, random state, the image warp and the keypoint
warp are shared with the bottom-up path (:mod:`.base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from lightning_pose.data import geometry
from lightning_pose.data.transforms.base import AugmentationConfig, PoseTransform
from lightning_pose.data.transforms.photometric import PhotometricAugmentation
from lightning_pose.skeletons import KeypointSet

__all__ = ["TopDownAugmentation", "CropParams", "TopDownResult", "TopDownTransform"]


def _clip(value: float, low: float, high: float) -> float:
    """``float(np.clip(value, low, high))`` for one finite number, without numpy's per-call overhead (same value)."""
    return float(min(max(value, low), high))


@dataclass
class TopDownAugmentation(AugmentationConfig, PhotometricAugmentation):
    """Top-down augmentation settings (defaults: HRNet-W32 COCO recipe plus mild photometric noise).

    Attributes:
        enabled: master switch; ``False`` gives the plain centred crop (val/test).
        padding: crop box enlargement around the person box (1.25 as HRNet); not random.
        flip_prob: probability of a horizontal flip (image, keypoints, flip-pair channel swap).
        scale_factor: ``sf``; the crop size is multiplied by ``clip(randn * sf + 1, 1 - sf, 1 + sf)``.
        rotation_factor: ``rf`` in degrees; ``r = clip(randn * rf, -2 rf, 2 rf)``.
        rotation_prob: probability of applying the rotation (0.6 in HRNet), else ``r = 0``.
        shift_factor: the crop centre moves by ``U(-f, f) * crop size`` per axis (mmpose uses 0.16).
        shift_prob: probability of the shift (0 = HRNet, which never shifts).
        half_body_prob: probability of the half-body crop when enough joints are labelled.
        half_body_min_joints: the half-body crop needs MORE than this many labelled joints (HRNet: 8).
        half_body_upper_prob: probability of choosing the upper body (HRNet's ``randn < 0.5`` ~ 0.69).
        half_body_padding: enlargement of the half-body box (1.5 in HRNet).
        (plus the photometric / occlusion fields of :class:`PhotometricAugmentation`)
    """

    enabled: bool = True
    padding: float = 1.25
    flip_prob: float = 0.5
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    shift_factor: float = 0.0
    shift_prob: float = 0.0
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_upper_prob: float = 0.69
    half_body_padding: float = 1.5

    kind = "top-down"  # (``from_config`` / ``disabled``: :class:`~.base.AugmentationConfig`)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field when a setting is out of range."""
        self.validate_photometric()
        for name in ("flip_prob", "rotation_prob", "shift_prob", "half_body_prob", "half_body_upper_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augmentation.{name} must be a probability in [0, 1], got {value}")
        if not 0.0 <= self.scale_factor < 1.0:
            raise ValueError(f"augmentation.scale_factor must be in [0, 1), got {self.scale_factor}")
        if self.rotation_factor < 0 or self.shift_factor < 0:
            raise ValueError("augmentation.rotation_factor and shift_factor must be >= 0")
        if self.padding <= 0 or self.half_body_padding <= 0:
            raise ValueError("augmentation.padding and half_body_padding must be > 0")


@dataclass
class CropParams:
    """The drawn parameters of one crop: centre / size in image pixels (before flip), degrees, flip flag."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float = 0.0
    flip: bool = False
    half_body: bool = False


@dataclass
class TopDownResult:
    """Output of :class:`TopDownTransform`.

    Attributes:
        image: ``(H_in, W_in, 3)`` uint8 RGB crop (after photometric augmentation).
        keypoints: ``(K, 3)`` float64 x, y in the input frame (channels already flip-swapped), v kept;
            x = y = 0 where v = 0.
        image_to_input: ``(2, 3)`` float64 image frame -> input frame (the warp matrix, flip included).
        input_to_image: ``(2, 3)`` float64 exact inverse of ``image_to_input`` (the sample's ``crop_to_image``).
        params: the drawn :class:`CropParams`.
    """

    image: np.ndarray
    keypoints: np.ndarray
    image_to_input: np.ndarray
    input_to_image: np.ndarray
    params: CropParams

    @property
    def crop_to_image(self) -> np.ndarray:
        """``input_to_image`` under the name of the top-down sample key (ARCHITECTURE.md)."""
        return self.input_to_image

    @property
    def image_to_crop(self) -> np.ndarray:
        """``image_to_input`` (the inverse of ``crop_to_image``)."""
        return self.image_to_input


class TopDownTransform(PoseTransform):
    """Crop + augment one person.

    Args:
        keypoint_set: gives ``flip_indices`` and the upper-body joints.
        input_size: ``(W_in, H_in)`` of the network input in pixels.
        augmentation: settings (a mapping is accepted); ``None`` means no augmentation (val/test).
        seed: seed of the transform's random generator (see :meth:`reseed`).
    """

    settings_class = TopDownAugmentation

    def __init__(
        self,
        keypoint_set: KeypointSet,
        input_size: Sequence[int] = (192, 256),
        augmentation: TopDownAugmentation | Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(keypoint_set, input_size, augmentation, seed)
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self._upper = np.zeros(keypoint_set.num_keypoints, dtype=bool)
        self._upper[list(keypoint_set.upper_body)] = True

    # ------------------------------------------------------------------ parameters
    def base_center_scale(self, bbox: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Un-augmented crop centre / size (image pixels) of a person box ``x, y, w, h``."""
        return geometry.box_to_center_scale(bbox, self.aspect_ratio, self.augmentation.padding)

    def half_body_center_scale(
        self, keypoints: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """HRNet half-body box from the labelled joints (v > 0) of ``(K, 3)`` image-frame keypoints.

        Upper body is chosen with probability ``half_body_upper_prob`` when it has more than 2 labelled
        joints, else the lower body; ``None`` when the chosen half has fewer than 2 joints.
        """
        aug = self.augmentation
        labelled = keypoints[:, 2] > 0
        upper = keypoints[labelled & self._upper, :2]
        lower = keypoints[labelled & ~self._upper, :2]
        if rng.random() < aug.half_body_upper_prob and len(upper) > 2:
            chosen = upper
        else:
            chosen = lower if len(lower) > 2 else upper
        return geometry.points_to_center_scale(chosen, self.aspect_ratio, aug.half_body_padding)

    def sample_params(
        self,
        center: np.ndarray,
        scale: np.ndarray,
        keypoints: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> CropParams:
        """Draw the crop parameters of one sample (identity parameters when augmentation is disabled).

        Args:
            center, scale: ``(2,)`` un-augmented crop centre / size in image pixels.
            keypoints: ``(K, 3)`` image-frame keypoints (needed for half-body), or ``None``.
            rng: generator to draw from (default: the transform's own).
        """
        center = np.asarray(center, dtype=np.float64).copy()
        scale = np.asarray(scale, dtype=np.float64).copy()
        aug = self.augmentation
        if not aug.enabled:
            return CropParams(center, scale)
        rng = self.rng if rng is None else rng
        half = False
        if (
            keypoints is not None
            and aug.half_body_prob > 0
            and int((keypoints[:, 2] > 0).sum()) > aug.half_body_min_joints
            and rng.random() < aug.half_body_prob
        ):
            hb = self.half_body_center_scale(keypoints, rng)
            if hb is not None:
                center, scale = hb
                half = True
        sf = aug.scale_factor
        if sf > 0:
            scale = scale * _clip(rng.standard_normal() * sf + 1.0, 1.0 - sf, 1.0 + sf)
        rotation = 0.0
        if aug.rotation_factor > 0 and rng.random() < aug.rotation_prob:
            rf = aug.rotation_factor
            rotation = _clip(rng.standard_normal() * rf, -2.0 * rf, 2.0 * rf)
        if aug.shift_factor > 0 and rng.random() < aug.shift_prob:
            center = center + rng.uniform(-aug.shift_factor, aug.shift_factor, size=2) * scale
        flip = bool(aug.flip_prob > 0 and rng.random() < aug.flip_prob)
        return CropParams(center, scale, rotation, flip, half)

    def matrix(self, params: CropParams, image_width: int) -> np.ndarray:
        """Composite image -> input matrix: ``crop(c', s, r) o flip`` when flipped, else ``crop(c, s, r)``.

        A flip mirrors the image (``x -> image_width - 1 - x``) and the crop centre, then crops with the
        same size and rotation (HRNet semantics).
        """
        if params.flip:
            c = np.array([image_width - 1.0 - params.center[0], params.center[1]])
            crop = geometry.crop_matrix(c, params.scale, params.rotation, self.input_size)
            return geometry.compose_affine(crop, geometry.flip_matrix(image_width))
        return geometry.crop_matrix(params.center, params.scale, params.rotation, self.input_size)

    def decode_downscale(self, params: CropParams) -> int:
        """Largest ``f`` in {1, 2, 4, 8} such that the crop still shrinks the 1/f-resolution image
        (``W_in / s_w <= 1 / f`` and ``H_in / s_h <= 1 / f``): decoding a JPEG at 1/f (DCT scaling) then
        loses nothing the warp would keep, and is ~2x (f = 2) to ~3x faster."""
        zoom = max(self.input_size[0] / params.scale[0], self.input_size[1] / params.scale[1])
        for f in (8, 4, 2):
            if zoom * f <= 1.0:
                return f
        return 1

    def transform_keypoints(self, keypoints: np.ndarray, matrix: np.ndarray, flipped: bool) -> np.ndarray:
        """Image-frame ``(K, 3)`` keypoints -> input frame with the warp ``matrix``; swap channels if flipped
        (:meth:`~.base.PoseTransform.warp_keypoints`)."""
        return self.warp_keypoints(keypoints, matrix, flipped)

    # ------------------------------------------------------------------ application
    def __call__(
        self,
        image: np.ndarray,
        center: np.ndarray,
        scale: np.ndarray,
        keypoints: np.ndarray | None = None,
        *,
        params: CropParams | None = None,
        bgr_input: bool = False,
        source_downscale: int = 1,
        image_width: int | None = None,
    ) -> TopDownResult:
        """Crop and augment one person.

        Args:
            image: ``(H, W, 3)`` uint8 image, RGB (or BGR with ``bgr_input=True``; the crop is then
                converted, which is cheaper than converting the full image).
            center, scale: ``(2,)`` un-augmented crop centre / size in image pixels.
            keypoints: ``(K, 3)`` image-frame keypoints (x, y, v) or ``None`` (detection boxes).
            params: use these crop parameters instead of drawing new ones.
            bgr_input: see ``image``.
            source_downscale: ``f`` when ``image`` is the original decoded at 1/f resolution (JPEG DCT
                scaling, ``cv2.IMREAD_REDUCED_*``): its pixel ``i`` covers original pixels ``f i .. f i + f - 1``,
                i.e. original ``x = f x_r + (f - 1) / 2``. Keypoints, centre, scale and the returned matrices
                stay in the original image frame.
            image_width: width of the original image in pixels (required with ``source_downscale > 1``;
                the flip is ``x -> image_width - 1 - x``).
        """
        self.check_image(image)
        k = self.keypoint_set.num_keypoints
        if keypoints is not None and np.shape(keypoints) != (k, 3):
            raise ValueError(f"keypoints must have shape ({k}, 3), got {np.shape(keypoints)}")
        if params is None:
            params = self.sample_params(center, scale, keypoints)
        f = int(source_downscale)
        if f < 1:
            raise ValueError(f"source_downscale must be >= 1, got {source_downscale}")
        if f > 1 and image_width is None:
            raise ValueError("image_width (of the original image) is required with source_downscale > 1")
        m = self.matrix(params, image.shape[1] if image_width is None else int(image_width))
        warp = m
        if f > 1:
            reduced_to_full = np.array([[f, 0.0, (f - 1) / 2.0], [0.0, f, (f - 1) / 2.0]])
            warp = geometry.compose_affine(m, reduced_to_full)
        crop = self.warp_image(image, warp, bgr_input)
        if keypoints is None:
            kp_out = np.zeros((k, 3), dtype=np.float64)
        else:
            kp_out = self.transform_keypoints(keypoints, m, params.flip)
        return TopDownResult(crop, kp_out, m, geometry.invert_affine(m), params)

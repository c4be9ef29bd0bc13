"""Bottom-up augmentation: the whole image, resized (aspect kept), padded, randomly warped and flipped.

The image -> input matrix is ``flip_in o crop(c + t, box * s, r)`` where ``crop`` is the
:func:`~lightning_pose.data.geometry.crop_matrix` of the box that holds the whole image at the input
aspect ratio (:func:`~lightning_pose.data.geometry.resize_pad_matrix` when un-augmented), ``s`` the
random box-size factor (HigherHRNet semantics: ``s > 1`` zooms out), ``r`` the rotation, ``t`` a
translation in image pixels, and ``flip_in`` the input-frame flip ``x -> W_in - 1 - x``. One
``cv2.warpAffine`` per image. Settings handling, random state, the image warp and the keypoint warp are shared
with the top-down path (:mod:`.base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from lightning_pose.data import geometry
from lightning_pose.data.transforms.base import AugmentationConfig, PoseTransform
from lightning_pose.data.transforms.photometric import PhotometricAugmentation
from lightning_pose.skeletons import KeypointSet

__all__ = ["BottomUpAugmentation", "BottomUpParams", "BottomUpResult", "BottomUpTransform", "box_polygon"]

_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision for ignore polygons


@dataclass
class BottomUpAugmentation(AugmentationConfig, PhotometricAugmentation):
    """Bottom-up augmentation settings (HigherHRNet-like defaults).

    Attributes:
        enabled: master switch; ``False`` = plain resize + pad (val/test).
        flip_prob: probability of the horizontal flip (channels swapped with ``flip_indices``).
        scale_range: the image box size is multiplied by ``U(lo, hi)`` (> 1 zooms out).
        max_rotation: rotation ``U(-max, max)`` degrees.
        max_translate: translation ``U(-f, f) * box size`` per axis, in image pixels.
        (plus the photometric / occlusion fields of :class:`PhotometricAugmentation`)
    """

    enabled: bool = True
    flip_prob: float = 0.5
    scale_range: tuple[float, float] = (0.75, 1.5)
    max_rotation: float = 30.0
    max_translate: float = 0.2

    kind = "bottom-up"  # (``from_config`` / ``disabled``: :class:`~.base.AugmentationConfig`)

    @classmethod
    def normalize_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``scale_range`` as a tuple of floats (YAML gives a list)."""
        if "scale_range" in data:
            data["scale_range"] = tuple(float(v) for v in data["scale_range"])
        return data

    def validate(self) -> None:
        self.validate_photometric()
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"augmentation.flip_prob must be in [0, 1], got {self.flip_prob}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"augmentation.scale_range must satisfy 0 < lo <= hi, got {self.scale_range}")
        if self.max_rotation < 0 or self.max_translate < 0:
            raise ValueError("augmentation.max_rotation and max_translate must be >= 0")


@dataclass
class BottomUpParams:
    """Drawn parameters: box-size factor, rotation (degrees), translation (image px), flip."""

    scale: float = 1.0
    rotation: float = 0.0
    translation: tuple[float, float] = (0.0, 0.0)
    flip: bool = False


@dataclass
class BottomUpResult:
    """Output of :class:`BottomUpTransform`.

    Attributes:
        image: ``(H_in, W_in, 3)`` uint8 RGB.
        keypoints: ``(N, K, 3)`` float64 x, y in the input frame, v kept (x = y = 0 where v = 0).
        mask: ``(H_in, W_in)`` uint8, 0 on ignored regions (crowds, persons without keypoints), else 1.
        image_to_input, input_to_image: ``(2, 3)`` float64 matrices (exact inverses).
        params: the drawn :class:`BottomUpParams`.
    """

    image: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    image_to_input: np.ndarray
    input_to_image: np.ndarray
    params: BottomUpParams


class BottomUpTransform(PoseTransform):
    """Whole-image augmentation for bottom-up methods.

    Args:
        keypoint_set: gives ``flip_indices``.
        input_size: ``(W_in, H_in)`` in pixels.
        augmentation: settings (a mapping is accepted); ``None`` = no augmentation.
        seed: seed of the random generator (see :meth:`reseed`).
    """

    settings_class = BottomUpAugmentation

    def __init__(
        self,
        keypoint_set: KeypointSet,
        input_size: Sequence[int] = (512, 512),
        augmentation: BottomUpAugmentation | Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(keypoint_set, input_size, augmentation, seed)

    def sample_params(self, rng: np.random.Generator | None = None) -> BottomUpParams:
        aug = self.augmentation
        if not aug.enabled:
            return BottomUpParams()
        rng = self.rng if rng is None else rng
        scale = float(rng.uniform(*aug.scale_range))
        rotation = float(rng.uniform(-aug.max_rotation, aug.max_rotation)) if aug.max_rotation > 0 else 0.0
        t = rng.uniform(-aug.max_translate, aug.max_translate, size=2) if aug.max_translate > 0 else np.zeros(2)
        flip = bool(aug.flip_prob > 0 and rng.random() < aug.flip_prob)
        return BottomUpParams(scale, rotation, (float(t[0]), float(t[1])), flip)

    def matrix(self, params: BottomUpParams, image_size: Sequence[int]) -> np.ndarray:
        """Image -> input matrix for an image of ``image_size = (W, H)`` pixels (see module docstring)."""
        w, h = (float(v) for v in image_size)
        out_w, out_h = self.input_size
        k = min(out_w / w, out_h / h)
        box = np.array([out_w / k, out_h / k]) * params.scale
        center = np.array([(w - 1) / 2.0, (h - 1) / 2.0]) + np.asarray(params.translation) * box
        m = geometry.crop_matrix(center, box, params.rotation, self.input_size)
        if params.flip:
            m = geometry.compose_affine(geometry.flip_matrix(out_w), m)
        return m

    def __call__(
        self,
        image: np.ndarray,
        keypoints: np.ndarray,
        ignore_polygons: Sequence[np.ndarray] = (),
        ignore_mask: np.ndarray | None = None,
        *,
        params: BottomUpParams | None = None,
        bgr_input: bool = False,
    ) -> BottomUpResult:
        """Warp one image with all its persons.

        Args:
            image: ``(H, W, 3)`` uint8 RGB (BGR with ``bgr_input=True``).
            keypoints: ``(N, K, 3)`` image-frame keypoints of the persons to learn (N may be 0).
            ignore_polygons: image-frame polygons ``(M, 2)`` (M >= 3) to zero in the mask (crowd boxes or
                segmentation polygons, boxes of persons without keypoints).
            ignore_mask: optional ``(H, W)`` image-frame array, non-zero = ignore (e.g. decoded crowd RLE).
            params: use these parameters instead of drawing new ones.
        """
        self.check_image(image)
        k = self.keypoint_set.num_keypoints
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, k, 3) if np.size(keypoints) else np.zeros((0, k, 3))
        if params is None:
            params = self.sample_params()
        h, w = image.shape[:2]
        m = self.matrix(params, (w, h))
        out = self.warp_image(image, m, bgr_input)
        kp_out = self.warp_keypoints(kp, m, params.flip) if len(kp) else np.zeros_like(kp)

        mask = np.ones((self.input_size[1], self.input_size[0]), dtype=np.uint8)
        polys = []
        for poly in ignore_polygons:
            p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
            if len(p) < 3:
                raise ValueError(f"ignore polygon needs >= 3 points, got {len(p)}")
            q = geometry.apply_affine(m, p) * (1 << _SUBPIXEL_BITS)
            polys.append(np.rint(q).astype(np.int32))
        if polys:
            cv2.fillPoly(mask, polys, 0, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
        if ignore_mask is not None:
            if ignore_mask.shape[:2] != (h, w):
                raise ValueError(f"ignore_mask shape {ignore_mask.shape} does not match the image {(h, w)}")
            warped = cv2.warpAffine((ignore_mask > 0).astype(np.uint8), m, self.input_size, flags=cv2.INTER_NEAREST)
            mask[warped > 0] = 0
        return BottomUpResult(out, kp_out, mask, m, geometry.invert_affine(m), params)


def box_polygon(bbox: Sequence[float] | np.ndarray) -> np.ndarray:
    """``x, y, w, h`` box -> ``(4, 2)`` polygon ``(x, y) .. (x + w, y + h)`` in the same (image) frame."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0, x1, y1 = x, y, x + w, y + h
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)

"""What top-down and bottom-up augmentation share (numpy + cv2; albumentations only through the photometric
pipeline).

* :class:`AugmentationConfig`: ``from_config`` (a mapping from a config, unknown keys refused) and ``disabled``
  (the val/test copy) for the settings dataclasses :class:`~.topdown.TopDownAugmentation` and
  :class:`~.bottomup.BottomUpAugmentation`.
* :class:`PoseTransform`: the transform skeleton, i.e. input size ``(W_in, H_in)``, settings, ``flip_indices``,
  the photometric pipeline and the random state (``reseed``), the warp of the image into the input frame and the
  keypoint warp. Both transforms build ONE affine matrix per sample, image frame -> input frame, named
  ``image_to_input`` (its exact inverse ``input_to_image``; top-down samples call the inverse ``crop_to_image``).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar, Sequence

import cv2
import numpy as np

from lightning_pose.data import geometry
from lightning_pose.data.transforms.photometric import apply_photometric, build_photometric
from lightning_pose.skeletons import KeypointSet

__all__ = ["AugmentationConfig", "PoseTransform"]


class AugmentationConfig:
    """Mixin of the augmentation settings dataclasses (each has an ``enabled`` field and a ``validate`` method).

    ``kind`` names the settings in error messages (``"top-down"``, ``"bottom-up"``).
    """

    kind: ClassVar[str] = ""

    @classmethod
    def from_config(cls, value: Any, *, enabled: bool = True) -> Any:
        """Build from a config mapping (an instance of the class is returned as is; ``None`` = the defaults).

        ``enabled`` is the default of the ``enabled`` field when the mapping does not set it.

        Raises:
            ValueError: unknown keys (the message lists the known ones) or a value out of range (``validate``).
        """
        if isinstance(value, cls):
            return value
        data = dict(value or {})
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.kind} augmentation option(s) {unknown}; known: {sorted(known)}")
        data.setdefault("enabled", enabled)
        out = cls(**cls.normalize_config(data))
        out.validate()  # type: ignore[attr-defined]
        return out

    @classmethod
    def normalize_config(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Hook: convert config values (YAML lists) to the field types before construction."""
        return data

    def disabled(self) -> Any:
        """A copy with ``enabled=False`` (the other settings kept, e.g. the top-down crop ``padding``), for val/test."""
        d = asdict(self)  # type: ignore[call-overload]
        d["enabled"] = False
        return type(self)(**d)


class PoseTransform:
    """Base of :class:`~.topdown.TopDownTransform` and :class:`~.bottomup.BottomUpTransform`.

    Args:
        keypoint_set: gives ``flip_indices`` (channel swap of a horizontal flip).
        input_size: ``(W_in, H_in)`` of the network input in pixels (width first).
        augmentation: settings of :attr:`settings_class` (a mapping is accepted); ``None`` = no augmentation.
        seed: seed of the transform's random generator (see :meth:`reseed`).
    """

    #: the augmentation settings dataclass of the transform
    settings_class: ClassVar[type] = AugmentationConfig

    def __init__(
        self,
        keypoint_set: KeypointSet,
        input_size: Sequence[int],
        augmentation: Any = None,
        seed: int = 0,
    ) -> None:
        self.keypoint_set = keypoint_set
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if min(self.input_size) <= 0:
            raise ValueError(f"input_size must be positive (W, H), got {tuple(input_size)}")
        self.augmentation = self.settings_class.from_config(augmentation, enabled=augmentation is not None)
        self.flip_indices = np.asarray(keypoint_set.flip_indices, dtype=np.int64)
        self._photometric = build_photometric(self.augmentation) if self.augmentation.enabled else None
        self.rng = np.random.default_rng(seed)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Reset the random state (numpy generator and the albumentations pipeline) from ``seed``."""
        self.rng = np.random.default_rng(seed)
        if self._photometric is not None:
            self._photometric.set_random_seed(int(seed) % (2**32))

    @staticmethod
    def check_image(image: np.ndarray) -> None:
        """Raise ``ValueError`` unless ``image`` is ``(H, W, 3)``."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")

    def warp_image(self, image: np.ndarray, warp: np.ndarray, bgr_input: bool = False) -> np.ndarray:
        """``(H, W, 3)`` uint8 image -> ``(H_in, W_in, 3)`` uint8 RGB input: one bilinear ``cv2.warpAffine`` with the
        ``(2, 3)`` matrix ``warp`` (source pixels -> input frame; outside the image: black), BGR -> RGB when
        ``bgr_input`` (on the small output, cheaper than on the image), then the photometric augmentation."""
        out = cv2.warpAffine(
            image, warp, self.input_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        if bgr_input:
            out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
        return apply_photometric(self._photometric, out)

    def warp_keypoints(self, keypoints: np.ndarray, matrix: np.ndarray, flipped: bool) -> np.ndarray:
        """Image-frame keypoints ``(..., K, 3)`` (x, y, v) -> input frame with the ``(2, 3)`` matrix ``matrix``
        (float64); channels swapped with ``flip_indices`` when the sample is ``flipped``; v kept, x = y = 0 where
        v <= 0."""
        kp = np.asarray(keypoints, dtype=np.float64)
        out = np.zeros_like(kp)
        out[..., :2] = geometry.apply_affine(matrix, kp[..., :2])
        out[..., 2] = kp[..., 2]
        if flipped:
            out = out[..., self.flip_indices, :]
        out[out[..., 2] <= 0, :2] = 0.0
        return out

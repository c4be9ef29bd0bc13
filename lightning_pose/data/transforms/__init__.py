"""Top-down and bottom-up augmentation (numpy + cv2 + albumentations); what both share is in :mod:`.base`.

Importing this package does not import torch; albumentations (which does) is loaded only when a
photometric pipeline is built (an augmented transform).
"""

from lightning_pose.data.transforms.base import AugmentationConfig, PoseTransform
from lightning_pose.data.transforms.bottomup import (
    BottomUpAugmentation,
    BottomUpParams,
    BottomUpResult,
    BottomUpTransform,
    box_polygon,
)
from lightning_pose.data.transforms.image_io import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    decode_flags,
    denormalize_image,
    normalize_image,
    read_image,
    read_image_bgr,
    read_image_rgb,
)
from lightning_pose.data.transforms.photometric import PhotometricAugmentation, build_photometric
from lightning_pose.data.transforms.topdown import CropParams, TopDownAugmentation, TopDownResult, TopDownTransform

__all__ = [
    "AugmentationConfig",
    "PoseTransform",
    "BottomUpAugmentation",
    "BottomUpParams",
    "BottomUpResult",
    "BottomUpTransform",
    "box_polygon",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "denormalize_image",
    "normalize_image",
    "decode_flags",
    "read_image",
    "read_image_bgr",
    "read_image_rgb",
    "PhotometricAugmentation",
    "build_photometric",
    "CropParams",
    "TopDownAugmentation",
    "TopDownResult",
    "TopDownTransform",
]

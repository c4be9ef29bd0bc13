"""Drawing keypoints and skeletons on images (used by ``lightning-pose data show`` and the W&B image callback).

Coordinates are pixels of the image being drawn on (0-based, pixel centres at integers).
Colours: left-side joints/limbs orange, right-side blue, centre joints green (so flips are visible at a glance).
``denormalize_image`` (the inverse of the datasets' ImageNet normalisation) is re-exported from the transforms.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lightning_pose.data.transforms.image_io import denormalize_image
from lightning_pose.skeletons import KeypointSet

__all__ = ["LEFT_COLOR", "RIGHT_COLOR", "CENTER_COLOR", "keypoint_side", "draw_pose", "denormalize_image"]

LEFT_COLOR = (255, 140, 0)
RIGHT_COLOR = (30, 144, 255)
CENTER_COLOR = (50, 205, 50)


def keypoint_side(keypoint_set: KeypointSet, index: int) -> str:
    """``"left"``, ``"right"`` or ``"center"`` from the keypoint name (or flip pairs for custom sets)."""
    name = keypoint_set.keypoints[index].lower()
    if name.startswith(("left", "l_")) or " left" in name or name.startswith("left "):
        return "left"
    if name.startswith(("right", "r_")) or name.startswith("right "):
        return "right"
    for a, b in keypoint_set.flip_pairs:  # custom sets: first of a pair = left
        if index == a:
            return "left"
        if index == b:
            return "right"
    return "center"


def _color(side: str) -> tuple[int, int, int]:
    return {"left": LEFT_COLOR, "right": RIGHT_COLOR}.get(side, CENTER_COLOR)


def draw_pose(
    image: np.ndarray | Image.Image,
    keypoints: np.ndarray,
    keypoint_set: KeypointSet,
    *,
    radius: int = 3,
    line_width: int = 2,
    visible_only: bool = True,
    outline: tuple[int, int, int] | None = None,
) -> Image.Image:
    """Draw one person's keypoints and skeleton.

    Args:
        image: ``(H, W, 3)`` uint8 RGB array or a PIL image (not modified).
        keypoints: ``(K, 2)`` or ``(K, 3)`` pixel coordinates; with a third column, joints with value <= 0 are
            skipped when ``visible_only``.
        keypoint_set: gives the skeleton edges and the left/right colouring.
        outline: optional ring colour around each joint (e.g. white for ground truth, red for predictions).

    Returns:
        A new RGB PIL image.
    """
    img = image.copy() if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
    img = img.convert("RGB")
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[0] != keypoint_set.num_keypoints or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must be (K, 2|3) with K={keypoint_set.num_keypoints}, got {kp.shape}")
    shown = np.isfinite(kp[:, :2]).all(axis=1)
    if kp.shape[1] == 3 and visible_only:
        shown &= kp[:, 2] > 0
    draw = ImageDraw.Draw(img)
    for a, b in keypoint_set.skeleton:
        if shown[a] and shown[b]:
            side = (
                keypoint_side(keypoint_set, a)
                if keypoint_side(keypoint_set, a) == keypoint_side(keypoint_set, b)
                else "center"
            )
            draw.line([(kp[a, 0], kp[a, 1]), (kp[b, 0], kp[b, 1])], fill=_color(side), width=line_width)
    for i in np.flatnonzero(shown):
        x, y = kp[i, 0], kp[i, 1]
        draw.ellipse(
            [x - radius, y - radius, x + radius, y + radius],
            fill=_color(keypoint_side(keypoint_set, i)),
            outline=outline,
        )
    return img

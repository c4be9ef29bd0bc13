"""Box and affine-warp maths for the data pipeline (numpy only; the one place for these formulas).

Frames (see ARCHITECTURE.md):

* **image frame** — 0-based pixels of the original image; the centre of the top-left pixel is (0, 0),
  so pixel ``i`` covers the continuous interval ``[i - 0.5, i + 0.5]`` and a horizontal flip is
  ``x -> W - 1 - x``.
* **input frame** — 0-based pixels of the network input (the crop) of size ``(W_in, H_in)``, same
  pixel-centre convention.

Warp convention (pixel centres, compatible with ``cv2.warpAffine`` which samples the source at
``M^-1 @ [x_out, y_out, 1]`` for integer output pixels): a crop box of centre ``c`` and size
``(s_w, s_h)`` pixels covers the continuous image interval ``[c - s/2, c + s/2]``; it is mapped onto the
continuous input interval ``[-0.5, W_in - 0.5]``. Hence the box centre lands on ``((W_in - 1) / 2,
(H_in - 1) / 2)`` and one image pixel becomes ``W_in / s_w`` input pixels. With this convention a
horizontal flip of the image (and of the box centre) is exactly the flip ``x -> W_in - 1 - x`` of the
crop, so flip tests need no extra shift in the input frame.

Rotation: a positive angle (degrees) rotates the image content counter-clockwise as seen on screen
(the ``cv2.getRotationMatrix2D`` convention), about the box centre.

Affine matrices are ``(2, 3)`` float64 arrays ``M`` acting on column vectors ``[x, y, 1]``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = [
    "PIXEL_STD",
    "fix_aspect_ratio",
    "box_to_center_scale",
    "mpii_center_scale",
    "points_to_center_scale",
    "crop_matrix",
    "flip_matrix",
    "resize_pad_matrix",
    "compose_affine",
    "invert_affine",
    "apply_affine",
    "to_homogeneous",
]

#: HRNet's unit of person scale: a scale of 1.0 means 200 pixels.
PIXEL_STD = 200.0


def _as_vec(value: Sequence[float] | np.ndarray, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (n,):
        raise ValueError(f"{what}: expected {n} numbers, got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: non-finite value in {arr.tolist()}")
    return arr


def _pair(value: Sequence[float] | np.ndarray, what: str) -> tuple[float, float]:
    """Two finite Python floats from a ``(2,)`` array or a pair (what :func:`_as_vec` checks, for ``n = 2``)."""
    if isinstance(value, np.ndarray) and value.shape == (2,):
        a, b = (float(v) for v in value.tolist())
    else:
        a, b = (float(v) for v in _as_vec(value, 2, what).tolist())
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"{what}: non-finite value in {[a, b]}")
    return a, b


def fix_aspect_ratio(size_wh: Sequence[float] | np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow the shorter side of a box so that ``width / height == aspect_ratio`` (never shrinks).

    Args:
        size_wh: ``(2,)`` box width and height in pixels.
        aspect_ratio: target ``W_in / H_in`` (0.75 for a 192x256 input).

    Returns:
        ``(2,)`` float64 ``(w, h)`` in pixels.
    """
    if not aspect_ratio > 0:
        raise ValueError(f"aspect_ratio must be > 0, got {aspect_ratio}")
    w, h = _as_vec(size_wh, 2, "size_wh")
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return np.array([w, h], dtype=np.float64)


def box_to_center_scale(
    bbox: Sequence[float] | np.ndarray, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """COCO box ``x, y, w, h`` -> crop centre and crop size (HRNet ``_xywh2cs``, scale kept in pixels).

    The centre is ``(x + w / 2, y + h / 2)`` (the box's continuous centre), the size is grown to the input
    aspect ratio and multiplied by ``padding``.

    Args:
        bbox: ``(4,)`` x, y, w, h in image pixels (0-based origin).
        aspect_ratio: ``W_in / H_in`` of the network input.
        padding: enlargement factor of the box (1.25 as HRNet/mmpose).

    Returns:
        ``center (2,)`` in image pixels and ``scale (2,)`` = crop width and height in image pixels.
    """
    x, y, w, h = _as_vec(bbox, 4, "bbox")
    if w <= 0 or h <= 0:
        raise ValueError(f"bbox {[x, y, w, h]} has a non-positive side")
    center = np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float64)
    return center, fix_aspect_ratio((w, h), aspect_ratio) * float(padding)


def mpii_center_scale(
    center: Sequence[float] | np.ndarray, scale: float, aspect_ratio: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """MPII annotation centre/scale -> crop centre and size, as HRNet and the Lua hourglass do.

    ``c_y += 15 * s``; ``s *= 1.25``; the crop height is ``s * 200`` pixels and the width is grown to the
    input aspect ratio (HRNet uses a square ``s * 200`` box for its square 256x256 input; for a square
    input both agree).

    Args:
        center: ``(2,)`` annotated person centre in **0-based** image pixels (the reader already shifted
            MPII's 1-based values by -1).
        scale: annotated person scale (person height / 200 px).
        aspect_ratio: ``W_in / H_in`` of the network input.

    Returns:
        ``center (2,)`` in image pixels and ``scale (2,)`` = crop width and height in image pixels.
    """
    c = _as_vec(center, 2, "center").copy()
    s = float(scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"MPII scale must be a positive number, got {scale}")
    c[1] += 15.0 * s
    s *= 1.25
    side = s * PIXEL_STD
    return c, fix_aspect_ratio((side, side), aspect_ratio)


def points_to_center_scale(
    points: np.ndarray, aspect_ratio: float, padding: float = 1.5
) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre and padded size of the box around some keypoints (the half-body box of HRNet).

    The centre is the **mean** of the points (as HRNet), the size the span ``max - min`` of the points,
    grown to the aspect ratio and multiplied by ``padding``.

    Args:
        points: ``(N, 2)`` image pixels, N >= 2.
        aspect_ratio: ``W_in / H_in``.
        padding: enlargement factor (1.5 in HRNet's half-body).

    Returns:
        ``(center (2,), scale (2,))`` in image pixels, or ``None`` when fewer than 2 points are given or
        the points span no area in either direction.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] < 2:
        return None
    center = pts.mean(axis=0)
    w, h = pts.max(axis=0) - pts.min(axis=0)
    if w <= 0 and h <= 0:
        return None
    w = max(w, 1e-6)
    h = max(h, 1e-6)
    return center, fix_aspect_ratio((w, h), aspect_ratio) * float(padding)


def crop_matrix(
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    rotation: float,
    output_size: Sequence[int],
) -> np.ndarray:
    """Affine matrix mapping the image frame to the input frame for a (rotated) crop box.

    ``x_in = R(rotation) @ ((x_img - center) * (W_in / s_w, H_in / s_h)) + ((W_in - 1) / 2, (H_in - 1) / 2)``
    with the pixel-centre convention of the module docstring (box edges map to input edges). Scaling is
    applied in the rotated frame, i.e. the box is rotated about its centre before being squeezed to the
    output size; with an aspect-fixed box both axes share one factor.

    Args:
        center: ``(2,)`` crop centre in image pixels.
        scale: ``(2,)`` crop width and height in image pixels (> 0).
        rotation: degrees, positive = content rotated counter-clockwise on screen.
        output_size: ``(W_in, H_in)`` in pixels.

    Returns:
        ``(2, 3)`` float64 matrix, usable directly as ``cv2.warpAffine(img, M, (W_in, H_in))``.
    """
    cx, cy = _pair(center, "center")
    sw, sh = _pair(scale, "scale")
    if sw <= 0 or sh <= 0:
        raise ValueError(f"crop scale must be positive, got {[sw, sh]}")
    out_w, out_h = (int(v) for v in output_size)
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"output_size must be positive, got {tuple(output_size)}")
    theta = math.radians(float(rotation))
    cos, sin = math.cos(theta), math.sin(theta)
    kx, ky = out_w / sw, out_h / sh
    # L = diag(kx, ky) @ [[cos, sin], [-sin, cos]], t = target - L @ c (plain floats: numpy's per-call overhead
    # on 2 x 2 arrays costs more than the maths, once per sample)
    a, b, c, d = kx * cos, kx * sin, -(ky * sin), ky * cos
    return np.array(
        [[a, b, (out_w - 1) / 2.0 - (a * cx + b * cy)], [c, d, (out_h - 1) / 2.0 - (c * cx + d * cy)]],
        dtype=np.float64,
    )


def flip_matrix(width: int | float) -> np.ndarray:
    """``(2, 3)`` matrix of the horizontal flip ``x -> width - 1 - x`` (0-based pixel centres)."""
    return np.array([[-1.0, 0.0, float(width) - 1.0], [0.0, 1.0, 0.0]], dtype=np.float64)


def resize_pad_matrix(image_size: Sequence[int], output_size: Sequence[int]) -> np.ndarray:
    """Image -> input matrix that resizes the whole image keeping its aspect ratio and centres it.

    The image (``W x H`` pixels, continuous extent ``[-0.5, W - 0.5]``) is scaled by
    ``k = min(W_in / W, H_in / H)`` and centred in the ``(W_in, H_in)`` input; the remaining border is
    padding.

    Args:
        image_size: ``(W, H)`` of the original image in pixels.
        output_size: ``(W_in, H_in)`` of the network input in pixels.

    Returns:
        ``(2, 3)`` float64 image -> input matrix.
    """
    w, h = (float(v) for v in image_size)
    out_w, out_h = (float(v) for v in output_size)
    if min(w, h, out_w, out_h) <= 0:
        raise ValueError(f"sizes must be positive: image {tuple(image_size)}, output {tuple(output_size)}")
    k = min(out_w / w, out_h / h)
    center = ((w - 1) / 2.0, (h - 1) / 2.0)
    return crop_matrix(center, (out_w / k, out_h / k), 0.0, (int(out_w), int(out_h)))


def to_homogeneous(m: np.ndarray) -> np.ndarray:
    """``(2, 3)`` affine -> ``(3, 3)`` homogeneous matrix."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"affine matrix must have shape (2, 3), got {m.shape}")
    out = np.eye(3, dtype=np.float64)
    out[:2] = m
    return out


def compose_affine(*matrices: np.ndarray) -> np.ndarray:
    """Compose affine maps written left to right as in maths: ``compose_affine(A, B)(p) = A(B(p))``."""
    if not matrices:
        raise ValueError("compose_affine needs at least one matrix")
    if len(matrices) == 2 and all(isinstance(m, np.ndarray) and m.shape == (2, 3) for m in matrices):
        # the per-sample case (crop o flip, crop o reduced-decode scaling), in plain floats
        (a00, a01, a02), (a10, a11, a12) = matrices[0].tolist()
        (b00, b01, b02), (b10, b11, b12) = matrices[1].tolist()
        return np.array(
            [
                [a00 * b00 + a01 * b10, a00 * b01 + a01 * b11, a00 * b02 + a01 * b12 + a02],
                [a10 * b00 + a11 * b10, a10 * b01 + a11 * b11, a10 * b02 + a11 * b12 + a12],
            ],
            dtype=np.float64,
        )
    out = np.eye(3, dtype=np.float64)
    for m in matrices:
        out = out @ to_homogeneous(m)
    return out[:2].copy()


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Exact inverse of a ``(2, 3)`` affine matrix (``inv(A) = [L^-1, -L^-1 t]``)."""
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"affine matrix must have shape (2, 3), got {m.shape}")
    (a, b, tx), (c, d, ty) = m.tolist()  # plain floats (see crop_matrix)
    det = a * d - b * c
    if not math.isfinite(det) or abs(det) < 1e-300:
        raise ValueError(f"affine matrix is singular: {m.tolist()}")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]], dtype=np.float64)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` matrix to points of shape ``(..., 2)``; returns float64 ``(..., 2)``."""
    m = np.asarray(m, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1] != 2:
        raise ValueError(f"points must have a last dimension of 2, got shape {pts.shape}")
    return pts @ m[:, :2].T + m[:, 2]

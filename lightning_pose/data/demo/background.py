"""Cluttered backgrounds and occluding blobs for the synthetic demo images (numpy + cv2).

Images are ``(H, W, 3)`` uint8 BGR; coordinates are 0-based image-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .appearance import random_colour

__all__ = ["make_background", "Occluder", "sample_occluder", "draw_occluder"]


def _col(c: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(c, 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cell: int, channels: int = 3) -> np.ndarray:
    """Low-frequency noise in about [-1, 1], ``(h, w, channels)`` float32, features ~``cell`` px wide."""
    small = rng.normal(0.0, 0.6, (h // cell + 2, w // cell + 2, channels)).astype(np.float32)
    out = cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_LINEAR)[
        cell : cell + h, cell : cell + w
    ]
    return out.reshape(h, w, channels)


def make_background(rng: np.random.Generator, image_size: tuple[int, int]) -> np.ndarray:
    """A cluttered ``(H, W, 3)`` uint8 BGR background for ``image_size = (W, H)``.

    Linear colour gradient + smooth colour noise + 8..24 random shapes (rectangles, discs, ellipses,
    polygons, straight and poly-lines, limb-like rounded bars) + a few high-frequency noise patches.
    """
    w, h = image_size
    c1, c2 = random_colour(rng), random_colour(rng)
    a = rng.uniform(0, 2 * np.pi)
    t = (
        np.float32(np.cos(a)) * np.arange(w, dtype=np.float32)[None, :]
        + np.float32(np.sin(a)) * np.arange(h, dtype=np.float32)[:, None]
    )
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c1.astype(np.float32) + t[..., None] * (c2 - c1).astype(np.float32)
    img += _smooth_noise(rng, w, h, int(rng.integers(12, 48))) * np.float32(rng.uniform(8, 35))
    img = np.clip(img, 0, 255).astype(np.uint8)
    s = min(w, h)
    for _ in range(int(rng.integers(8, 25))):
        col = _col(random_colour(rng))
        kind = int(rng.integers(0, 7))
        cx, cy = int(rng.integers(-s // 8, w + s // 8)), int(rng.integers(-s // 8, h + s // 8))
        size = int(rng.uniform(0.03, 0.35) * s) + 2
        thick = -1 if rng.random() < 0.7 else int(rng.integers(1, 5))
        if kind == 0:
            cv2.rectangle(img, (cx - size, cy - size // 2), (cx + size, cy + size // 2), col, thick)
        elif kind == 1:
            cv2.circle(img, (cx, cy), size // 2 + 1, col, thick, cv2.LINE_AA)
        elif kind == 2:
            cv2.ellipse(
                img, (cx, cy), (size, max(size // 3, 1)), float(rng.uniform(0, 180)), 0, 360, col, thick, cv2.LINE_AA
            )
        elif kind == 3:
            pts = (np.array([cx, cy]) + rng.normal(0, size / 2, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
        elif kind == 4:
            pts = np.array([cx, cy]) + np.cumsum(rng.normal(0, size / 2, (int(rng.integers(2, 6)), 2)), axis=0)
            cv2.polylines(img, [pts.astype(np.int32)], False, col, int(rng.integers(1, 4)), cv2.LINE_AA)
        elif kind == 5:  # limb-like bar with round ends: a distractor for the part detectors
            ang = rng.uniform(0, 2 * np.pi)
            d = np.array([np.cos(ang), np.sin(ang)]) * size / 2
            p0, p1 = np.array([cx, cy]) - d, np.array([cx, cy]) + d
            cv2.line(
                img,
                tuple(int(v) for v in p0),
                tuple(int(v) for v in p1),
                col,
                int(rng.integers(3, max(s // 20, 4))),
                cv2.LINE_AA,
            )
        else:  # textured patch
            x0, y0 = max(cx - size, 0), max(cy - size // 2, 0)
            x1, y1 = min(cx + size, w), min(cy + size // 2, h)
            if x1 > x0 and y1 > y0:
                amp = np.float32(rng.uniform(10, 35))
                patch = img[y0:y1, x0:x1] + amp * rng.standard_normal((y1 - y0, x1 - x0, 1), dtype=np.float32)
                img[y0:y1, x0:x1] = np.clip(patch, 0, 255).astype(np.uint8)
    return img


@dataclass(frozen=True)
class Occluder:
    """A blob drawn over the people: a filled polygon (0-based image px) in one colour with a noise texture."""

    polygon: np.ndarray  # (N, 2) float64
    colour: np.ndarray  # (3,) BGR
    noise: float


def sample_occluder(rng: np.random.Generator, centre: np.ndarray, radius: float) -> Occluder:
    """An ellipse-like or irregular convex blob of about ``radius`` px around ``centre`` (image px)."""
    if rng.random() < 0.5:
        a = rng.uniform(0, np.pi)
        rx, ry = radius * rng.uniform(0.6, 1.3), radius * rng.uniform(0.4, 1.0)
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        pts = pts @ rot.T
    else:
        ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(5, 9))))
        rad = radius * rng.uniform(0.5, 1.2, len(ang))
        pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
        pts = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    return Occluder(
        polygon=pts + np.asarray(centre, np.float64)[None, :],
        colour=random_colour(rng),
        noise=float(rng.uniform(0, 30)),
    )


def draw_occluder(
    img: np.ndarray, label: np.ndarray, occ: Occluder, label_value: int, rng: np.random.Generator
) -> None:
    """Paint ``occ`` into ``img`` (uint8 BGR, in place) and write ``label_value`` into ``label`` under it."""
    mask = np.zeros(label.shape, np.uint8)
    pts = np.round(occ.polygon * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [pts], 1, cv2.LINE_8, 4)
    on = mask > 0
    n = int(on.sum())
    if n == 0:
        return
    vals = occ.colour[None, :] + occ.noise * rng.standard_normal((n, 1))
    img[on] = np.clip(vals, 0, 255).astype(np.uint8)
    label[on] = label_value

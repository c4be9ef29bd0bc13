"""Per-person colours and clothing textures of the synthetic demo people (numpy only).

Colours are BGR triples in 0..255 (the order ``cv2.imwrite`` expects). The **left/right cue** is fixed and
the same for every person: limbs of the person's *left* side (arm, hand, leg, foot) are drawn in the base
colour mixed 40 % towards white, limbs of the *right* side in the base colour darkened to 55 %. Texture and
lighting change brightness by at most +-25 %, which keeps the left side brighter than the right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Appearance", "sample_appearance", "side_colour", "random_colour", "LEFT_LIGHTEN", "RIGHT_DARKEN",
           "MAX_MODULATION"]

LEFT_LIGHTEN = 0.40
RIGHT_DARKEN = 0.55
#: bound on the multiplicative brightness change of texture and lighting (|factor - 1| <= this)
MAX_MODULATION = 0.25

_SKIN_TONES = np.array(
    [[190, 215, 245], [150, 190, 230], [120, 160, 210], [90, 130, 180], [60, 95, 140], [45, 70, 105]],
    dtype=np.float64,
)  # BGR
_HAIR = np.array([[20, 20, 25], [30, 45, 70], [40, 80, 120], [90, 170, 210], [150, 150, 150], [25, 35, 110]],
                 dtype=np.float64)


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    """h in [0, 1), s and v in [0, 1] -> BGR in 0..255 (float64)."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array([b, g, r]) * 255.0


def random_colour(rng: np.random.Generator, s_range: tuple[float, float] = (0.0, 1.0),
                  v_range: tuple[float, float] = (0.1, 1.0)) -> np.ndarray:
    """A random BGR colour (float64, 0..255) with saturation / value drawn from the given ranges."""
    return _hsv_to_bgr(float(rng.random()), float(rng.uniform(*s_range)), float(rng.uniform(*v_range)))


def side_colour(colour: np.ndarray, side: str) -> np.ndarray:
    """The left/right variant of a base colour: ``left`` lightened, ``right`` darkened, ``centre`` unchanged."""
    c = np.asarray(colour, dtype=np.float64)
    if side == "left":
        return c + (255.0 - c) * LEFT_LIGHTEN
    if side == "right":
        return c * RIGHT_DARKEN
    if side == "centre":
        return c
    raise ValueError(f"side must be 'left', 'right' or 'centre', got {side!r}")


@dataclass(frozen=True)
class Appearance:
    """Colours (BGR, 0..255) and texture parameters of one person.

    Attributes:
        skin, shirt, pants, hair, shoes: base colours.
        long_sleeves: forearms are clothed (shirt colour) instead of skin.
        shorts: shins are skin instead of pants colour.
        stripes: amplitude of the stripe pattern on clothes (0 = none).
        stripe_period: stripe period in units of standing height.
        stripe_angle: stripe direction (rad) in the image frame.
        noise: amplitude of the smooth noise texture on clothes.
        light_angle, light_strength: direction (rad) and strength (per standing height) of a linear shading.
    """

    skin: np.ndarray
    shirt: np.ndarray
    pants: np.ndarray
    hair: np.ndarray
    shoes: np.ndarray
    long_sleeves: bool
    shorts: bool
    stripes: float
    stripe_period: float
    stripe_angle: float
    noise: float
    light_angle: float
    light_strength: float


def sample_appearance(rng: np.random.Generator) -> Appearance:
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.uniform(-12, 12, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] + rng.uniform(-10, 10, 3)
    return Appearance(
        skin=np.clip(skin, 0, 255),
        shirt=random_colour(rng, (0.15, 1.0), (0.25, 0.95)),
        pants=random_colour(rng, (0.1, 0.9), (0.15, 0.8)),
        hair=np.clip(hair, 0, 255),
        shoes=random_colour(rng, (0.0, 0.6), (0.1, 0.6)),
        long_sleeves=bool(rng.random() < 0.5),
        shorts=bool(rng.random() < 0.3),
        stripes=float(rng.uniform(0.06, 0.12)) if rng.random() < 0.35 else 0.0,
        stripe_period=float(rng.uniform(0.03, 0.08)),
        stripe_angle=float(rng.uniform(0, np.pi)),
        noise=float(rng.uniform(0.0, 0.07)),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.0, 0.12)),
    )

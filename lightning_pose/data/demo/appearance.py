"""Per-person colours and clothing textures of the synthetic demo people (numpy only).

Colours are BGR triples in 0..255 (the order ``cv2.imwrite`` expects). Left and right limbs share their base
colours, as on real people: there is no fixed left/right colour code (a horizontal flip of a real photograph is
another valid photograph, and the flip augmentation relies on that). What tells left from right is what tells
it on real people: which way the person faces (face, neckline and chest print on the front, hair on the back of
the head, feet pointing forward) and which limbs are nearer the camera (the far-side limbs are in the body's
shadow, :func:`depth_shade`). Texture and lighting change brightness by at most +-25 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Appearance", "sample_appearance", "depth_shade", "random_colour", "FAR_SIDE_DARKEN", "MAX_MODULATION"]

#: darkening of a limb lying fully behind the body (in the body's shadow), see :func:`depth_shade`
FAR_SIDE_DARKEN = 0.30
#: bound on the multiplicative brightness change of texture and lighting (|factor - 1| <= this)
MAX_MODULATION = 0.25

_SKIN_TONES = np.array(
    [[190, 215, 245], [150, 190, 230], [120, 160, 210], [90, 130, 180], [60, 95, 140], [45, 70, 105]],
    dtype=np.float64,
)  # BGR
_HAIR = np.array(
    [[20, 20, 25], [30, 45, 70], [40, 80, 120], [90, 170, 210], [150, 150, 150], [25, 35, 110]], dtype=np.float64
)


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    """h in [0, 1), s and v in [0, 1] -> BGR in 0..255 (float64)."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array([b, g, r]) * 255.0


def random_colour(
    rng: np.random.Generator, s_range: tuple[float, float] = (0.0, 1.0), v_range: tuple[float, float] = (0.1, 1.0)
) -> np.ndarray:
    """A random BGR colour (float64, 0..255) with saturation / value drawn from the given ranges."""
    return _hsv_to_bgr(float(rng.random()), float(rng.uniform(*s_range)), float(rng.uniform(*v_range)))


def depth_shade(colour: np.ndarray, behind: float) -> np.ndarray:
    """``colour`` darkened by the body's shadow: ``behind`` in [0, 1] is how far the limb lies behind its
    counterpart (0 = level with it or in front, 1 = fully behind, e.g. the far arm in profile); the colour is
    scaled by ``1 - FAR_SIDE_DARKEN * behind``. Mirror-symmetric: it depends on depth, not on the body side."""
    b = float(np.clip(behind, 0.0, 1.0))
    return np.asarray(colour, dtype=np.float64) * (1.0 - FAR_SIDE_DARKEN * b)


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
        neckline: ``"v"`` or ``"round"``, the skin-coloured opening at the front of the shirt (front only).
        chest_print: colour of a print on the front of the shirt, or ``None`` (plain front).
        print_shape: ``"disc"`` or ``"band"`` (a horizontal stripe across the chest) when there is a print.
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
    neckline: str = "round"
    chest_print: np.ndarray | None = None
    print_shape: str = "disc"


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
        neckline="v" if rng.random() < 0.5 else "round",
        chest_print=random_colour(rng, (0.0, 1.0), (0.1, 1.0)) if rng.random() < 0.5 else None,
        print_shape="disc" if rng.random() < 0.6 else "band",
    )

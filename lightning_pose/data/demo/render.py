"""Drawing one projected figure into its own layer (colour + part-id map), numpy + cv2 only.

All coordinates are 0-based image-frame pixels (pixel centres at integers). Shapes are drawn with cv2's
sub-pixel ``shift`` (1/16 px), into a region of interest (ROI) around the person; each shape is written to
both the colour layer and the part-id layer with identical geometry, so the part-id layer is exactly the
drawn silhouette. Parts are painted far-to-near (painter's algorithm on the camera-frame depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .appearance import MAX_MODULATION, Appearance, depth_shade
from .figures import Figure2D

__all__ = [
    "PART_IDS",
    "KEYPOINT_OWNER_PARTS",
    "FACE_LABEL_MIN_FACING",
    "PersonLayer",
    "draw_person",
    "face_facing",
    "face_labelled",
    "person_extent",
]

_SHIFT = 4
_ONE = 1 << _SHIFT

#: part ids written into the part layer (0 = not this person)
PART_IDS: dict[str, int] = {
    "torso": 1,
    "neck": 2,
    "head": 3,
    "face": 4,
    "ear": 5,
    "left_upper_arm": 6,
    "right_upper_arm": 7,
    "left_forearm": 8,
    "right_forearm": 9,
    "left_hand": 10,
    "right_hand": 11,
    "left_thigh": 12,
    "right_thigh": 13,
    "left_shin": 14,
    "right_shin": 15,
    "left_foot": 16,
    "right_foot": 17,
}

#: For each COCO keypoint (COCO order) the parts whose pixels count as "this joint is seen".
KEYPOINT_OWNER_PARTS: tuple[frozenset[int], ...] = tuple(
    frozenset(PART_IDS[p] for p in parts)
    for parts in (
        ("head", "face"),
        ("head", "face"),
        ("head", "face"),
        ("head", "ear"),
        ("head", "ear"),
        ("torso", "left_upper_arm"),
        ("torso", "right_upper_arm"),
        ("left_upper_arm", "left_forearm"),
        ("right_upper_arm", "right_forearm"),
        ("left_forearm", "left_hand"),
        ("right_forearm", "right_hand"),
        ("torso", "left_thigh"),
        ("torso", "right_thigh"),
        ("left_thigh", "left_shin"),
        ("right_thigh", "right_shin"),
        ("left_shin", "left_foot"),
        ("right_shin", "right_foot"),
    )
)

#: Face-point labelling rule (COCO-like): a face point is *labelled* (v > 0) only when its outward surface
#: normal faces the camera enough: ``-normal_z > threshold``. Nose and eyes need ``> 0.1`` (the face is turned
#: towards the camera; they are then drawn as marks), ears ``> -0.35`` (both ears are labelled in front and
#: back views, only the near one in profile). Unlabelled face points get v = 0 and (0, 0).
FACE_LABEL_MIN_FACING: tuple[float, ...] = (0.1, 0.1, 0.1, -0.35, -0.35)

_CLOTHES = ("torso", "left_upper_arm", "right_upper_arm", "left_thigh", "right_thigh")


def face_facing(fig: Figure2D) -> np.ndarray:
    """``(5,)`` how much nose, left/right eye, left/right ear face the camera (``-normal_z``, in [-1, 1])."""
    return -fig.figure.face_normals[:, 2]


def face_labelled(fig: Figure2D) -> np.ndarray:
    """``(5,)`` bool: which face points are labelled under :data:`FACE_LABEL_MIN_FACING`."""
    return face_facing(fig) > np.asarray(FACE_LABEL_MIN_FACING)


@dataclass
class PersonLayer:
    """One person drawn on its own.

    Attributes:
        x0, y0: image-frame pixel of the ROI's top-left corner.
        colour: ``(h, w, 3)`` uint8 BGR colours (valid where ``parts > 0``).
        parts: ``(h, w)`` uint8 part ids (:data:`PART_IDS`), 0 outside the silhouette.
    """

    x0: int
    y0: int
    colour: np.ndarray
    parts: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.parts > 0


def _fx(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * _ONE)), int(round(float(p[1]) * _ONE))


class _Canvas:
    """Colour + part layers of a ROI; every primitive is drawn identically into both."""

    def __init__(self, x0: int, y0: int, w: int, h: int):
        self.off = np.array([x0, y0], dtype=np.float64)
        self.colour = np.zeros((h, w, 3), np.uint8)
        self.parts = np.zeros((h, w), np.uint8)

    def _draw(self, fn: Callable[[np.ndarray, object], None], colour: np.ndarray, part: int) -> None:
        fn(self.colour, tuple(min(max(int(round(float(c))), 0), 255) for c in colour))
        fn(self.parts, int(part))

    def circle(self, c: np.ndarray, radius: float, colour: np.ndarray, part: int) -> None:
        cc = _fx(c - self.off)
        r = max(int(round(radius * _ONE)), _ONE // 2)
        self._draw(lambda img, col: cv2.circle(img, cc, r, col, -1, cv2.LINE_8, _SHIFT), colour, part)

    def polygon(self, pts: np.ndarray, colour: np.ndarray, part: int) -> None:
        p = np.round((np.asarray(pts) - self.off) * _ONE).astype(np.int32).reshape(-1, 1, 2)
        self._draw(lambda img, col: cv2.fillPoly(img, [p], col, cv2.LINE_8, _SHIFT), colour, part)

    def ellipse(
        self, c: np.ndarray, axes: tuple[float, float], angle_deg: float, colour: np.ndarray, part: int
    ) -> None:
        cc = _fx(c - self.off)
        ax = (max(int(round(axes[0] * _ONE)), _ONE // 2), max(int(round(axes[1] * _ONE)), _ONE // 2))
        self._draw(
            lambda img, col: cv2.ellipse(img, cc, ax, float(angle_deg), 0.0, 360.0, col, -1, cv2.LINE_8, _SHIFT),
            colour,
            part,
        )

    def capsule(self, p0: np.ndarray, p1: np.ndarray, w0: float, w1: float, colour: np.ndarray, part: int) -> None:
        """A tapered limb from ``p0`` (full width ``w0`` px) to ``p1`` (width ``w1``) with round ends."""
        d = p1 - p0
        n = float(np.hypot(*d))
        if n > 1e-6:
            nrm = np.array([-d[1], d[0]]) / n
            quad = np.stack([p0 + nrm * w0 / 2, p1 + nrm * w1 / 2, p1 - nrm * w1 / 2, p0 - nrm * w0 / 2])
            self.polygon(quad, colour, part)
        self.circle(p0, w0 / 2, colour, part)
        self.circle(p1, w1 / 2, colour, part)


def _head_ops(fig: Figure2D, app: Appearance, canvas: _Canvas) -> Callable[[], None]:
    """The head group: far ear, head ellipse, hair, face marks, near ear (all around the head centre)."""
    f3 = fig.figure
    hp = fig.height_px
    r = f3.shape.head_radius * hp
    centre = fig.point("head")
    up2 = fig.direction(f3.head_up)
    up_len = float(np.hypot(*up2))
    # ellipse orientation: the head's up axis projected (falls back to image up when it points at the camera)
    up_unit = up2 / up_len if up_len > 1e-3 * hp else np.array([0.0, -1.0])
    angle = float(np.degrees(np.arctan2(up_unit[1], up_unit[0]))) + 90.0
    back2 = -fig.direction(f3.head_forward) / hp  # projected backward axis, length <= 1
    away = float(np.clip(f3.head_forward[2], 0.0, 1.0))  # 1 when the face points away from the camera
    facing = face_facing(fig)
    labelled = face_labelled(fig)
    ear_col = app.skin * 0.8
    names = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")

    def draw() -> None:
        for j in (3, 4):
            if labelled[j] and facing[j] <= 0.0:
                canvas.ellipse(fig.point(names[j]), (0.2 * r, 0.3 * r), angle, ear_col, PART_IDS["ear"])
        canvas.ellipse(centre, (0.85 * r, r), angle, app.skin, PART_IDS["head"])
        # hair: a cap shifted to the back and top of the head, clipped to the head ellipse
        # facing the camera it covers the top of the head only, so the face shows (the strongest front cue)
        hair_c = centre + back2 * 0.4 * r - up_unit * 0.7 * r * (1.0 - away)
        hair_r = r * (0.95 + 0.5 * away)
        hmask = np.zeros(canvas.parts.shape, np.uint8)
        cc = _fx(hair_c - canvas.off)
        cv2.ellipse(
            hmask, cc, (int(hair_r * 0.95 * _ONE), int(hair_r * _ONE)), angle, 0, 360, 1, -1, cv2.LINE_8, _SHIFT
        )
        sel = (hmask > 0) & (canvas.parts == PART_IDS["head"])
        canvas.colour[sel] = np.clip(app.hair, 0, 255).astype(np.uint8)
        if labelled[0]:
            canvas.circle(
                fig.point("nose"), max(0.16 * r, 1.0), app.skin * 0.6 + np.array([0, 0, 60]), PART_IDS["face"]
            )
            # the mouth, below the nose along the head's up axis (drawn as part of the face)
            canvas.ellipse(
                fig.point("nose") - up_unit * 0.38 * r,
                (0.28 * r, 0.09 * r),
                angle - 90.0,
                np.array([60.0, 50.0, 150.0]),
                PART_IDS["face"],
            )
        for j in (1, 2):
            if labelled[j]:
                canvas.circle(fig.point(names[j]), max(0.14 * r, 0.9), np.array([35.0, 25.0, 20.0]), PART_IDS["face"])
        for j in (3, 4):
            if labelled[j] and facing[j] > 0.0:
                canvas.ellipse(fig.point(names[j]), (0.2 * r, 0.3 * r), angle, ear_col, PART_IDS["ear"])

    return draw


def person_extent(fig: Figure2D) -> tuple[float, float, float, float]:
    """Conservative image-frame box ``(x_min, y_min, x_max, y_max)`` in px covering everything drawn."""
    margin = fig.height_px * (fig.figure.shape.head_radius * 1.4 + 0.08)
    p = fig.points
    return (
        float(p[:, 0].min() - margin),
        float(p[:, 1].min() - margin),
        float(p[:, 0].max() + margin),
        float(p[:, 1].max() + margin),
    )


def draw_person(
    fig: Figure2D, app: Appearance, image_size: tuple[int, int], rng: np.random.Generator
) -> PersonLayer | None:
    """Draw ``fig`` with appearance ``app`` into a layer clipped to an image of ``image_size = (W, H)``.

    Returns ``None`` when the person lies entirely outside the image. ``rng`` drives the clothes noise only.
    """
    w_img, h_img = image_size
    ex0, ey0, ex1, ey1 = person_extent(fig)
    x0, y0 = max(int(np.floor(ex0)), 0), max(int(np.floor(ey0)), 0)
    x1, y1 = min(int(np.ceil(ex1)) + 1, w_img), min(int(np.ceil(ey1)) + 1, h_img)
    if x1 <= x0 or y1 <= y0:
        return None
    canvas = _Canvas(x0, y0, x1 - x0, y1 - y0)
    f3, b, hp = fig.figure, fig.figure.shape, fig.height_px
    P = fig.point
    ops: list[tuple[float, Callable[[], None]]] = []

    def limb(a: str, c: str, widths: tuple[float, float], colour: np.ndarray, part: str) -> None:
        pa, pc = P(a), P(c)
        ops.append(
            (
                0.5 * (fig.depth_of(a) + fig.depth_of(c)),
                lambda: canvas.capsule(pa, pc, widths[0] * hp, widths[1] * hp, colour, PART_IDS[part]),
            )
        )

    # torso: convex hull of shoulders / hips thickened by the chest depth along the chest's forward axis
    t_fwd = fig.direction(f3.torso_forward) * (b.chest_depth / 2)
    p_fwd = fig.direction(f3.pelvis_forward) * (b.chest_depth / 2)
    up = fig.direction(np.array([0.0, -1.0, 0.0]))
    upper = [
        P("left_shoulder"),
        P("right_shoulder"),
        0.6 * P("neck") + 0.2 * (P("left_shoulder") + P("right_shoulder")),
    ]
    lower = [P("left_hip"), P("right_hip")]
    sho_dir = P("left_shoulder") - P("right_shoulder")
    hip_dir = P("left_hip") - P("right_hip")
    hull_pts = []
    for q in upper:
        hull_pts += [q + t_fwd, q - t_fwd]
    for q, d in ((P("left_shoulder"), sho_dir), (P("right_shoulder"), -sho_dir)):
        hull_pts.append(q + d * 0.12 - up * 0.015)
    for q, d in ((P("left_hip"), hip_dir), (P("right_hip"), -hip_dir)):
        hull_pts += [q + d * 0.2 + p_fwd, q + d * 0.2 - p_fwd]
    torso_hull = cv2.convexHull(np.array(hull_pts, dtype=np.float32)).reshape(-1, 2).astype(np.float64)
    # the pants part of the torso: hips up to ~1/4 of the torso
    waist = [q + 0.25 * (P("neck") - P("pelvis")) for q in lower]
    pants_pts = []
    for q, d in zip(lower + waist, [hip_dir, -hip_dir, hip_dir, -hip_dir]):
        e = q + d * 0.22
        pants_pts += [e + p_fwd, e - p_fwd]
    pants_hull = cv2.convexHull(np.array(pants_pts, dtype=np.float32)).reshape(-1, 2).astype(np.float64)
    torso_depth = (
        float(np.mean([fig.depth_of(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]))
        + 0.05 * hp
    )

    front_details = _shirt_front(fig, app, t_fwd)

    def draw_torso() -> None:
        canvas.polygon(torso_hull, app.shirt, PART_IDS["torso"])
        canvas.polygon(pants_hull, app.pants, PART_IDS["torso"])
        for shape, colour in front_details:
            _paint_clipped(canvas, shape, colour, PART_IDS["torso"])

    ops.append((torso_depth, draw_torso))
    ops.append(
        (
            fig.depth_of("neck") + 0.02 * hp,
            lambda: canvas.capsule(
                P("neck"), P("head"), b.width_neck * hp, b.width_neck * hp, app.skin, PART_IDS["neck"]
            ),
        )
    )
    ops.append((fig.depth_of("head"), _head_ops(fig, app, canvas)))
    for side, other in (("left", "right"), ("right", "left")):
        # limbs behind the body are in its shadow (mirror-symmetric: depends on depth, not on the side)
        arm_behind = (fig.depth_of(f"{side}_shoulder") - fig.depth_of(f"{other}_shoulder")) / (
            0.5 * b.shoulder_width * hp
        )
        leg_behind = (fig.depth_of(f"{side}_hip") - fig.depth_of(f"{other}_hip")) / (0.5 * b.hip_width * hp)
        sleeve, arm_skin = depth_shade(app.shirt, arm_behind), depth_shade(app.skin, arm_behind)
        pants, leg_skin = depth_shade(app.pants, leg_behind), depth_shade(app.skin, leg_behind)
        limb(f"{side}_shoulder", f"{side}_elbow", b.width_upper_arm, sleeve, f"{side}_upper_arm")
        limb(
            f"{side}_elbow",
            f"{side}_wrist",
            b.width_forearm,
            sleeve if app.long_sleeves else arm_skin,
            f"{side}_forearm",
        )
        limb(f"{side}_wrist", f"{side}_hand", (b.width_hand, b.width_hand * 0.8), arm_skin, f"{side}_hand")
        limb(f"{side}_hip", f"{side}_knee", b.width_thigh, pants, f"{side}_thigh")
        limb(f"{side}_knee", f"{side}_ankle", b.width_shin, leg_skin if app.shorts else pants, f"{side}_shin")
        limb(
            f"{side}_ankle",
            f"{side}_toe",
            (b.width_foot, b.width_foot),
            depth_shade(app.shoes, leg_behind),
            f"{side}_foot",
        )

    order = sorted(range(len(ops)), key=lambda i: -ops[i][0])  # far first (stable for ties)
    for i in order:
        ops[i][1]()
    _texture(canvas, fig, app, rng)
    return PersonLayer(x0=x0, y0=y0, colour=canvas.colour, parts=canvas.parts)


#: the torso must face the camera at least this much (``-torso_forward_z``) for its front to be drawn
FRONT_MIN_FACING = 0.2


def _shirt_front(fig: Figure2D, app: Appearance, t_fwd: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Polygons (image px) and colours of what only the front of a shirt shows: the neckline opening (skin) and
    the chest print. Empty when the chest does not face the camera (back views, most of a profile)."""
    if -float(fig.figure.torso_forward[2]) < FRONT_MIN_FACING:
        return []
    P = fig.point
    across = P("left_shoulder") - P("right_shoulder")  # shrinks in profile, as a real chest does
    down = P("pelvis") - P("neck")
    top = 0.6 * P("neck") + 0.2 * (P("left_shoulder") + P("right_shoulder")) + t_fwd
    out: list[tuple[np.ndarray, np.ndarray]] = []
    if app.neckline == "v":
        neck = np.stack([top - 0.2 * across - 0.03 * down, top + 0.2 * across - 0.03 * down, top + 0.24 * down])
    else:
        t = np.linspace(0.0, np.pi, 11)
        neck = top[None] - 0.03 * down + np.cos(t)[:, None] * 0.2 * across + np.sin(t)[:, None] * 0.13 * down
    out.append((neck, app.skin))
    if app.chest_print is not None:
        chest = top + 0.38 * down
        if app.print_shape == "disc":
            t = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
            shape = chest[None] + np.cos(t)[:, None] * 0.16 * across + np.sin(t)[:, None] * 0.1 * down
        else:
            shape = np.stack(
                [
                    chest - 0.7 * across - 0.06 * down,
                    chest + 0.7 * across - 0.06 * down,
                    chest + 0.7 * across + 0.06 * down,
                    chest - 0.7 * across + 0.06 * down,
                ]
            )
        out.append((shape, app.chest_print))
    return out


def _paint_clipped(canvas: _Canvas, polygon: np.ndarray, colour: np.ndarray, part: int) -> None:
    """Recolour the pixels of ``polygon`` (image px) that already show ``part`` (the part map is unchanged)."""
    mask = np.zeros(canvas.parts.shape, np.uint8)
    p = np.round((np.asarray(polygon) - canvas.off) * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [p], 1, cv2.LINE_8, _SHIFT)
    sel = (mask > 0) & (canvas.parts == part)
    canvas.colour[sel] = np.clip(colour, 0, 255).astype(np.uint8)


def _texture(canvas: _Canvas, fig: Figure2D, app: Appearance, rng: np.random.Generator) -> None:
    """Shade the person (linear light) and texture the clothes (stripes + smooth noise), in place.

    The multiplicative factor stays within ``1 +- MAX_MODULATION``.
    """
    h, w = canvas.parts.shape
    hp = fig.height_px
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs += canvas.off[0] - fig.point("pelvis")[0]
    ys += canvas.off[1] - fig.point("pelvis")[1]
    factor = 1.0 + app.light_strength * (np.cos(app.light_angle) * xs + np.sin(app.light_angle) * ys) / hp
    clothes = np.isin(canvas.parts, [PART_IDS[p] for p in _CLOTHES])
    if app.long_sleeves:
        clothes |= np.isin(canvas.parts, [PART_IDS["left_forearm"], PART_IDS["right_forearm"]])
    if not app.shorts:
        clothes |= np.isin(canvas.parts, [PART_IDS["left_shin"], PART_IDS["right_shin"]])
    tex = np.zeros((h, w), np.float32)
    if app.stripes > 0:
        u = (np.cos(app.stripe_angle) * xs + np.sin(app.stripe_angle) * ys) / (app.stripe_period * hp)
        tex += app.stripes * np.sign(np.sin(2 * np.pi * u))
    if app.noise > 0:
        small = rng.normal(0.0, 1.0, (max(h // 6, 2), max(w // 6, 2))).astype(np.float32)
        tex += app.noise * np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), -1.5, 1.5) / 1.5
    factor = factor + np.where(clothes, tex, 0.0)
    factor = np.clip(factor, 1.0 - MAX_MODULATION, 1.0 + MAX_MODULATION)
    on = canvas.parts > 0
    canvas.colour[on] = np.clip(canvas.colour[on].astype(np.float32) * factor[on][:, None], 0, 255).astype(np.uint8)

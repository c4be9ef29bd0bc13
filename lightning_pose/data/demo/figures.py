"""Body model and pose sampling for the synthetic demo people.

A figure is a small 3-D kinematic tree (pelvis -> torso -> neck -> head, shoulders -> elbows -> wrists,
hips -> knees -> ankles) built from body proportions and sampled joint angles, then turned about the
vertical axis (front / side / back views), projected orthographically, rolled in the image plane,
scaled and placed.

Frames:

* **Body frame** (3-D, unit = standing height): ``x`` towards the person's *left*, ``y`` down, ``z`` away
  from the camera when the person faces it (so the person's forward direction is ``-z``).
* **Camera frame** (3-D): the body frame after the global yaw; the camera looks along ``+z``, so a point's
  depth is its ``z`` (larger = farther) and the direction towards the camera is ``(0, 0, -1)``.
* **Image frame** (2-D): 0-based pixels of the rendered image, pixel centres at integers, ``x`` right,
  ``y`` down. ``image = centre + height_px * R(roll) @ camera[:2]``.

Only numpy is used here; drawing lives in :mod:`lightning_pose.data.demo.render`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_pose.skeletons import COCO

__all__ = [
    "POINT_NAMES",
    "POSE_KINDS",
    "BodyShape",
    "Figure3D",
    "Figure2D",
    "sample_body_shape",
    "sample_figure",
    "project_figure",
    "rotation_x",
    "rotation_y",
    "rotation_z",
    "VIEWS",
    "view_of",
]

#: Named 3-D points of the body model (row order of :attr:`Figure3D.points`); the first 17 are the COCO
#: keypoints in COCO order, the rest are helper points for drawing.
POINT_NAMES: tuple[str, ...] = (
    *COCO.keypoints,
    # helper points (not COCO keypoints)
    "pelvis",
    "neck",
    "head",
    "left_hand",
    "right_hand",
    "left_toe",
    "right_toe",
)
_P = {name: i for i, name in enumerate(POINT_NAMES)}

#: Pose families and their sampling probabilities.
POSE_KINDS: dict[str, float] = {
    "standing": 0.22,
    "walking": 0.24,
    "arms_raised": 0.16,
    "sitting": 0.14,
    "bending": 0.10,
    "free": 0.14,
}


def rotation_x(a: float) -> np.ndarray:
    """Rotation about the x axis by ``a`` radians; positive ``a`` tilts ``-y`` (up) towards ``-z`` (forward)."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rotation_y(a: float) -> np.ndarray:
    """Rotation about the vertical (y) axis by ``a`` radians (the person's yaw)."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_z(a: float) -> np.ndarray:
    """Rotation about the z (viewing) axis by ``a`` radians (sideways tilt)."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class BodyShape:
    """Segment lengths and widths of one person, in units of its standing height (1.0).

    Widths are full widths of the drawn limb at its proximal / distal end.
    """

    head_radius: float
    neck_length: float
    torso_length: float
    shoulder_width: float
    hip_width: float
    chest_depth: float
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    foot: float
    width_upper_arm: tuple[float, float]
    width_forearm: tuple[float, float]
    width_thigh: tuple[float, float]
    width_shin: tuple[float, float]
    width_neck: float
    width_hand: float
    width_foot: float


def sample_body_shape(rng: np.random.Generator) -> BodyShape:
    """Human-like proportions (fractions of standing height) with per-person variation of about +-8 %."""

    def jitter(v: float, rel: float = 0.08) -> float:
        return float(v * (1.0 + rng.uniform(-rel, rel)))

    bulk = float(rng.uniform(0.85, 1.3))  # slim .. broad, scales all widths

    def w(v: float) -> float:
        return jitter(v * bulk, 0.06)

    return BodyShape(
        head_radius=jitter(0.068, 0.07),
        neck_length=jitter(0.035),
        torso_length=jitter(0.30, 0.06),
        shoulder_width=jitter(0.22) * (0.9 + 0.1 * bulk),
        hip_width=jitter(0.15) * (0.9 + 0.1 * bulk),
        chest_depth=w(0.12),
        upper_arm=jitter(0.17),
        forearm=jitter(0.15),
        hand=jitter(0.055),
        thigh=jitter(0.245),
        shin=jitter(0.235),
        foot=jitter(0.08),
        width_upper_arm=(w(0.055), w(0.045)),
        width_forearm=(w(0.044), w(0.034)),
        width_thigh=(w(0.085), w(0.062)),
        width_shin=(w(0.058), w(0.042)),
        width_neck=w(0.05),
        width_hand=w(0.04),
        width_foot=w(0.038),
    )


@dataclass
class Figure3D:
    """A posed person in the camera frame (after global yaw), unit = standing height.

    Attributes:
        points: ``(len(POINT_NAMES), 3)`` float64 positions, camera frame.
        face_normals: ``(5, 3)`` unit outward surface normals of nose, left/right eye, left/right ear
            (camera frame); ``-normal_z`` is how much the point faces the camera.
        torso_forward: ``(3,)`` unit forward direction of the chest (camera frame).
        pelvis_forward: ``(3,)`` unit forward direction of the hips (camera frame).
        head_up: ``(3,)`` unit "up" axis of the head (camera frame).
        head_forward: ``(3,)`` unit forward axis of the head (camera frame).
        shape: the body proportions used.
        kind: the pose family (one of :data:`POSE_KINDS`).
    """

    points: np.ndarray
    face_normals: np.ndarray
    torso_forward: np.ndarray
    pelvis_forward: np.ndarray
    head_up: np.ndarray
    head_forward: np.ndarray
    shape: BodyShape
    kind: str

    def point(self, name: str) -> np.ndarray:
        return self.points[_P[name]]


@dataclass
class Figure2D:
    """A figure projected into the image frame.

    Attributes:
        points: ``(len(POINT_NAMES), 2)`` float64 0-based image-frame pixel coordinates.
        depth: ``(len(POINT_NAMES),)`` camera-frame depth in pixels (larger = farther from the camera).
        height_px: the standing height in pixels (scale of every length below).
        roll: in-plane rotation in radians.
        figure: the 3-D figure it was projected from.
    """

    points: np.ndarray
    depth: np.ndarray
    height_px: float
    roll: float
    figure: Figure3D

    def point(self, name: str) -> np.ndarray:
        return self.points[_P[name]]

    def depth_of(self, name: str) -> float:
        return float(self.depth[_P[name]])

    def direction(self, v3: np.ndarray) -> np.ndarray:
        """Image-frame 2-D image of a camera-frame direction ``v3`` (length in height units * height_px)."""
        c, s = np.cos(self.roll), np.sin(self.roll)
        x, y = float(v3[0]), float(v3[1])
        return self.height_px * np.array([c * x - s * y, s * x + c * y])


def _limb_direction(abduction: float, flexion: float, side: float) -> np.ndarray:
    """Unit direction of a limb hanging from its root joint (body or torso frame).

    ``abduction`` (rad) swings the limb sideways away from the body midline (``side`` = +1 left, -1 right),
    ``flexion`` (rad) then swings it forward (towards ``-z``); (0, 0) points straight down.
    """
    ca = np.cos(abduction)
    return np.array([side * np.sin(abduction), ca * np.cos(flexion), -ca * np.sin(flexion)])


def _bend(direction: np.ndarray, angle: float, preferred: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rotate unit ``direction`` by ``angle`` (rad) towards the part of ``preferred`` orthogonal to it."""
    p = preferred - direction * float(preferred @ direction)
    if np.linalg.norm(p) < 0.3:
        p = fallback - direction * float(fallback @ direction)
    p = p / max(np.linalg.norm(p), 1e-9)
    out = np.cos(angle) * direction + np.sin(angle) * p
    return out / np.linalg.norm(out)


@dataclass
class _Angles:
    """Joint angles in radians (left, right) for one pose sample."""

    arm_abd: tuple[float, float]
    arm_flex: tuple[float, float]
    elbow: tuple[float, float]
    elbow_twist: tuple[float, float]
    leg_abd: tuple[float, float]
    leg_flex: tuple[float, float]
    knee: tuple[float, float]
    lean: float
    tilt: float
    twist: float
    head_yaw: float
    head_pitch: float


def _sample_angles(rng: np.random.Generator, kind: str) -> _Angles:
    d = np.deg2rad
    u = rng.uniform

    def pair(lo: float, hi: float) -> tuple[float, float]:
        return float(d(u(lo, hi))), float(d(u(lo, hi)))

    lean, tilt, twist = d(u(-5, 10)), d(u(-6, 6)), d(u(-12, 12))
    head_yaw, head_pitch = d(u(-35, 35)), d(u(-15, 20))
    if kind == "standing":
        arm_abd, arm_flex, elbow = pair(4, 30), pair(-15, 25), pair(0, 35)
        leg_abd, leg_flex, knee = pair(0, 12), pair(-5, 12), pair(0, 12)
    elif kind == "walking":
        phi = u(15, 38)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        leg_flex = (float(d(sign * phi + u(-5, 5))), float(d(-sign * phi + u(-5, 5))))
        # the trailing leg bends its knee more
        knee = (float(d(u(5, 20) if sign > 0 else u(20, 55))), float(d(u(20, 55) if sign > 0 else u(5, 20))))
        leg_abd = pair(0, 8)
        arm_flex = (float(d(-sign * phi * 0.8 + u(-8, 8))), float(d(sign * phi * 0.8 + u(-8, 8))))
        arm_abd, elbow = pair(4, 18), pair(10, 50)
        lean = d(u(0, 12))
    elif kind == "arms_raised":
        which = rng.integers(0, 3)  # 0 both, 1 left only, 2 right only
        raised = (which in (0, 1), which in (0, 2))
        abd, flex, elb = [], [], []
        for r in raised:
            if r:
                abd.append(float(d(u(70, 170))))
                flex.append(float(d(u(-15, 45))))
                elb.append(float(d(u(0, 70))))
            else:
                abd.append(float(d(u(5, 35))))
                flex.append(float(d(u(-10, 40))))
                elb.append(float(d(u(0, 60))))
        arm_abd, arm_flex, elbow = tuple(abd), tuple(flex), tuple(elb)  # type: ignore[assignment]
        leg_abd, leg_flex, knee = pair(3, 22), pair(-5, 12), pair(0, 15)
    elif kind == "sitting":
        arm_abd, arm_flex, elbow = pair(5, 25), pair(5, 55), pair(20, 95)
        leg_abd, leg_flex, knee = pair(3, 20), pair(60, 100), pair(55, 110)
        lean = d(u(-8, 20))
    elif kind == "bending":
        lean = d(u(30, 80))
        arm_abd = pair(3, 25)
        arm_flex = (float(lean + d(u(-25, 25))), float(lean + d(u(-25, 25))))
        elbow = pair(0, 50)
        leg_abd, leg_flex, knee = pair(2, 15), pair(-5, 25), pair(0, 35)
        head_pitch = d(u(-35, 5))  # looks up a little to compensate the bend
    elif kind == "free":
        arm_abd, arm_flex, elbow = pair(0, 165), pair(-40, 140), pair(0, 140)
        leg_abd, leg_flex, knee = pair(0, 45), pair(-30, 100), pair(0, 120)
        lean, tilt = d(u(-15, 45)), d(u(-20, 20))
    else:
        raise ValueError(f"unknown pose kind {kind!r}; known: {sorted(POSE_KINDS)}")
    return _Angles(
        arm_abd=arm_abd,
        arm_flex=arm_flex,
        elbow=elbow,
        elbow_twist=pair(-20, 70),
        leg_abd=leg_abd,
        leg_flex=leg_flex,
        knee=knee,
        lean=float(lean),
        tilt=float(tilt),
        twist=float(twist),
        head_yaw=float(head_yaw),
        head_pitch=float(head_pitch),
    )


def _sample_yaw(rng: np.random.Generator) -> float:
    """Global yaw (rad): 0 faces the camera, pi shows the back. Front views are the most common."""
    r = rng.random()
    if r < 0.45:
        deg = rng.uniform(-45, 45)  # front-ish
    elif r < 0.70:
        deg = 180 + rng.uniform(-45, 45)  # back-ish
    else:
        deg = (1 if rng.random() < 0.5 else -1) * rng.uniform(45, 135)  # side-ish
    return float(np.deg2rad(deg))


def sample_figure(
    rng: np.random.Generator, kind: str | None = None, yaw: float | None = None, shape: BodyShape | None = None
) -> Figure3D:
    """Sample a body shape (unless given), a pose of family ``kind`` (random by :data:`POSE_KINDS` when
    ``None``) and a global yaw in radians (random when ``None``); return the posed figure in the camera frame
    with the pelvis at the origin (unit = standing height)."""
    if kind is None:
        names = list(POSE_KINDS)
        probs = np.array([POSE_KINDS[n] for n in names])
        kind = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    shape = shape if shape is not None else sample_body_shape(rng)
    ang = _sample_angles(rng, kind)
    b = shape
    fwd = np.array([0.0, 0.0, -1.0])
    up = np.array([0.0, -1.0, 0.0])
    pts = np.zeros((len(POINT_NAMES), 3))

    # upper body: built in the torso frame, then leaned / tilted / twisted about the pelvis
    r_torso = rotation_y(ang.twist) @ rotation_z(ang.tilt) @ rotation_x(ang.lean)
    neck = np.array([0.0, -b.torso_length, 0.0])
    pts[_P["neck"]] = r_torso @ neck
    for side, name in ((1.0, "left"), (-1.0, "right")):
        i = 0 if side > 0 else 1
        sho = np.array([side * b.shoulder_width / 2, -b.torso_length * 0.93, 0.0])
        d_upper = _limb_direction(ang.arm_abd[i], ang.arm_flex[i], side)
        elbow = sho + b.upper_arm * d_upper
        inward = np.array([-side, 0.0, 0.0])
        tw = ang.elbow_twist[i]
        preferred = np.cos(tw) * fwd + np.sin(tw) * inward
        d_fore = _bend(d_upper, ang.elbow[i], preferred, up)
        wrist = elbow + b.forearm * d_fore
        hand = wrist + b.hand * _bend(d_fore, 0.15, preferred, up)
        pts[_P[f"{name}_shoulder"]] = r_torso @ sho
        pts[_P[f"{name}_elbow"]] = r_torso @ elbow
        pts[_P[f"{name}_wrist"]] = r_torso @ wrist
        pts[_P[f"{name}_hand"]] = r_torso @ hand

    # head: its own yaw / pitch on top of the torso's
    r_head = r_torso @ rotation_y(ang.head_yaw) @ rotation_x(ang.head_pitch)
    head_c = neck + rotation_x(ang.head_pitch * 0.5) @ np.array([0.0, -(b.neck_length + b.head_radius), 0.0])
    pts[_P["head"]] = r_torso @ head_c
    r = b.head_radius
    # points on an ellipsoid head with semi-axes (0.85 r, r, 0.95 r), head frame, plus outward normals
    face_local = {
        "nose": (np.array([0.0, 0.22 * r, -1.02 * r]), np.array([0.0, 0.1, -1.0])),
        "left_eye": (np.array([0.36 * r, -0.08 * r, -0.86 * r]), np.array([0.45, -0.05, -0.9])),
        "right_eye": (np.array([-0.36 * r, -0.08 * r, -0.86 * r]), np.array([-0.45, -0.05, -0.9])),
        "left_ear": (np.array([0.85 * r, 0.05 * r, 0.0]), np.array([1.0, 0.0, 0.05])),
        "right_ear": (np.array([-0.85 * r, 0.05 * r, 0.0]), np.array([-1.0, 0.0, 0.05])),
    }
    normals = np.zeros((5, 3))
    for j, (name, (p, n)) in enumerate(face_local.items()):
        pts[_P[name]] = pts[_P["head"]] + r_head @ p
        n_cam = r_head @ n
        normals[j] = n_cam / np.linalg.norm(n_cam)

    # legs: in the body frame (not leaned), bending in the sagittal plane
    for side, name in ((1.0, "left"), (-1.0, "right")):
        i = 0 if side > 0 else 1
        hip = np.array([side * b.hip_width / 2, 0.0, 0.0])
        d_thigh = _limb_direction(ang.leg_abd[i], ang.leg_flex[i], side)
        knee = hip + b.thigh * d_thigh
        d_shin = _limb_direction(ang.leg_abd[i], ang.leg_flex[i] - ang.knee[i], side)
        ankle = knee + b.shin * d_shin
        toe_dir = np.array([side * 0.25, 0.35, -1.0])
        toe = ankle + b.foot * toe_dir / np.linalg.norm(toe_dir)
        pts[_P[f"{name}_hip"]] = hip
        pts[_P[f"{name}_knee"]] = knee
        pts[_P[f"{name}_ankle"]] = ankle
        pts[_P[f"{name}_toe"]] = toe
    pts[_P["pelvis"]] = 0.0

    yaw = _sample_yaw(rng) if yaw is None else float(yaw)
    r_yaw = rotation_y(yaw)
    return Figure3D(
        points=pts @ r_yaw.T,
        face_normals=normals @ r_yaw.T,
        torso_forward=r_yaw @ r_torso @ fwd,
        pelvis_forward=r_yaw @ fwd,
        head_up=r_yaw @ r_head @ up,
        head_forward=r_yaw @ r_head @ fwd,
        shape=shape,
        kind=kind,
    )


#: view names by the global yaw of the hips: "front" within 45 degrees of facing the camera, "back" within 45
#: degrees of facing away, "side" otherwise
VIEWS: tuple[str, ...] = ("front", "side", "back")


def view_of(figure: Figure3D) -> str:
    """``"front"``, ``"side"`` or ``"back"`` (see :data:`VIEWS`) from the hips' forward direction."""
    facing = -float(figure.pelvis_forward[2])  # cos of the angle between the hips' forward and the camera
    if facing > np.cos(np.pi / 4):
        return "front"
    if facing < -np.cos(np.pi / 4):
        return "back"
    return "side"


def project_figure(figure: Figure3D, height_px: float, centre: np.ndarray, roll: float) -> Figure2D:
    """Orthographic projection: ``image_xy = centre + height_px * R(roll) @ camera_xy`` (0-based pixels).

    Args:
        figure: posed figure (camera frame, unit = standing height).
        height_px: standing height in pixels.
        centre: ``(2,)`` image-frame position (px) of the pelvis.
        roll: in-plane rotation (rad, positive turns clockwise on screen since y points down).
    """
    c, s = np.cos(roll), np.sin(roll)
    rot = np.array([[c, -s], [s, c]])
    xy = figure.points[:, :2] @ rot.T * height_px + np.asarray(centre, dtype=np.float64)[None, :]
    return Figure2D(
        points=xy, depth=figure.points[:, 2] * height_px, height_px=float(height_px), roll=float(roll), figure=figure
    )

"""One synthetic image: place people, compose them with background and occluders, label their keypoints.

Coordinates are 0-based image-frame pixels (pixel centres at integers); ``image_size = (W, H)``.

Labelling rules (COCO codes):

* A keypoint outside ``[0, W-1] x [0, H-1]`` gets v = 0 and (0, 0).
* Face points follow :data:`~lightning_pose.data.demo.render.FACE_LABEL_MIN_FACING` (nose/eyes unlabelled,
  v = 0, when the face is turned away; ears unlabelled when on the far side of the head in profile).
* Otherwise v = 2 if the final image's pixel at ``round(x), round(y)`` shows one of the joint's own parts
  (:data:`~lightning_pose.data.demo.render.KEYPOINT_OWNER_PARTS`) of that person, else v = 1 (hidden by
  another part of the same person, a nearer person, or an occluder).
* A person with fewer than ``min_visible`` keypoints at v = 2 is removed *from the image* (the scene is
  re-composed without it), so every person drawn is annotated.
* ``bbox`` is the tight box ``[x, y, w, h]`` of the person's own silhouette (every pixel of its layer, i.e.
  including parts hidden by nearer people/occluders) inside the image, grown if needed to contain every
  labelled keypoint; ``area`` is the silhouette's pixel count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .appearance import Appearance, sample_appearance
from .background import Occluder, draw_occluder, make_background, sample_occluder
from .figures import Figure2D, project_figure, sample_figure
from .render import KEYPOINT_OWNER_PARTS, PersonLayer, draw_person, face_labelled, person_extent

__all__ = ["RenderedPerson", "Scene", "render_scene", "label_keypoints", "LABEL_STRIDE", "OCCLUDER_LABEL"]

#: label map value of part ``k`` of person ``i`` (0-based, in ``Scene.persons`` order) is ``LABEL_STRIDE*(i+1)+k``
LABEL_STRIDE = 32
OCCLUDER_LABEL = -1


@dataclass
class RenderedPerson:
    """One drawn and annotated person.

    Attributes:
        keypoints: ``(17, 3)`` float64 COCO keypoints ``x, y, v`` (0-based image px; v in {0, 1, 2}).
        bbox: ``(4,)`` float64 ``x, y, w, h`` (px) of the silhouette (see module doc).
        area: silhouette area in px^2.
        silhouette: ``(H, W)`` bool, the person's own drawn pixels before occlusion and background.
        figure: the projected figure.
        appearance: its colours.
    """

    keypoints: np.ndarray
    bbox: np.ndarray
    area: float
    silhouette: np.ndarray
    figure: Figure2D
    appearance: Appearance


@dataclass
class Scene:
    """A rendered image and its people (farthest first).

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR, final (blurred + noise) image.
        persons: annotated people, in drawing order (farthest first).
        label_map: ``(H, W)`` int32: 0 background, :data:`OCCLUDER_LABEL` occluders,
            ``LABEL_STRIDE * (i + 1) + part_id`` for part ``part_id`` of ``persons[i]``.
        clean_image: ``(H, W, 3)`` uint8 BGR before blur and noise.
    """

    image: np.ndarray
    persons: list[RenderedPerson]
    label_map: np.ndarray
    clean_image: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]


@dataclass
class _Placed:
    figure: Figure2D
    appearance: Appearance
    box: tuple[float, float, float, float]
    texture_seed: int


def _overlap_ok(box: tuple[float, float, float, float], others: list[_Placed], max_overlap: float) -> bool:
    x0, y0, x1, y1 = box
    a = (x1 - x0) * (y1 - y0)
    for o in others:
        u0, v0, u1, v1 = o.box
        iw, ih = min(x1, u1) - max(x0, u0), min(y1, v1) - max(y0, v0)
        if iw > 0 and ih > 0 and iw * ih > max_overlap * min(a, (u1 - u0) * (v1 - v0)):
            return False
    return True


def _place_people(
    rng: np.random.Generator, image_size: tuple[int, int], n: int, min_height: float = 60.0
) -> list[_Placed]:
    """Sample ``n`` people with sizes (max box side ~``min_height`` px .. most of the image) and positions
    keeping >= ~80 % of each box inside the image and limited overlap between boxes."""
    w, h = image_size
    s = float(min(w, h))
    placed: list[_Placed] = []
    for i in range(n):
        for _ in range(30):
            fig3 = sample_figure(rng)
            roll = float(np.deg2rad(rng.normal(0, 10) if rng.random() < 0.9 else rng.uniform(-60, 60)))
            roll = float(np.clip(roll, -np.pi / 3, np.pi / 3))
            unit = project_figure(fig3, 1.0, np.zeros(2), roll)
            ux0, uy0, ux1, uy1 = person_extent(unit)
            # the drawn size: joints plus roughly a limb half-width and the top of the head
            pts = unit.points
            size_unit = max(float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1]))) + 0.1
            smax = 0.95 * s if n == 1 else (0.8 if i == 0 else 0.65) * s
            lo = min(min_height, smax)
            if i == 0:  # the first person: uniform sizes; the others: log-uniform (more small people)
                target = float(rng.uniform(lo, smax))
            else:
                target = float(np.exp(rng.uniform(np.log(lo), np.log(smax))))
            hp = target / size_unit
            bw, bh = (ux1 - ux0) * hp, (uy1 - uy0) * hp
            bx0 = rng.uniform(-0.15 * bw, max(w - 0.85 * bw, -0.15 * bw + 1e-3))
            by0 = rng.uniform(-0.15 * bh, max(h - 0.85 * bh, -0.15 * bh + 1e-3))
            centre = np.array([bx0 - ux0 * hp, by0 - uy0 * hp])
            fig = project_figure(fig3, hp, centre, roll)
            box = (bx0, by0, bx0 + bw, by0 + bh)
            if _overlap_ok(box, placed, 0.35):
                placed.append(_Placed(fig, sample_appearance(rng), box, int(rng.integers(2**31))))
                break
    return placed


def label_keypoints(fig: Figure2D, person_index: int, label_map: np.ndarray) -> np.ndarray:
    """``(17, 3)`` COCO keypoints of ``fig`` under the rules of the module doc, read from ``label_map``."""
    h, w = label_map.shape
    kp = np.zeros((17, 3), np.float64)
    face_ok = face_labelled(fig)
    base = LABEL_STRIDE * (person_index + 1)
    for j in range(17):
        x, y = float(fig.points[j, 0]), float(fig.points[j, 1])
        if not (0.0 <= x <= w - 1 and 0.0 <= y <= h - 1):
            continue
        if j < 5 and not face_ok[j]:
            continue
        seen = int(label_map[int(round(y)), int(round(x))]) - base in KEYPOINT_OWNER_PARTS[j]
        kp[j] = (x, y, 2.0 if seen else 1.0)
    return kp


def _compose(
    bg: np.ndarray, people: list[_Placed], layers: list[PersonLayer | None], occluders: list[Occluder], occ_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    img = bg.copy()
    label = np.zeros(bg.shape[:2], np.int32)
    for i, layer in enumerate(layers):
        if layer is None:
            continue
        hh, ww = layer.parts.shape
        m = layer.parts > 0
        img[layer.y0 : layer.y0 + hh, layer.x0 : layer.x0 + ww][m] = layer.colour[m]
        label[layer.y0 : layer.y0 + hh, layer.x0 : layer.x0 + ww][m] = LABEL_STRIDE * (i + 1) + layer.parts[m]
    orng = np.random.default_rng(occ_seed)
    for occ in occluders:
        draw_occluder(img, label, occ, OCCLUDER_LABEL, orng)
    return img, label


def _camera_effects(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slight defocus blur (sigma 0..0.9 px) and per-pixel grey sensor noise (sigma 0..5 levels) on uint8 BGR."""
    sigma = float(rng.uniform(0.0, 0.9))
    out = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.3 else img
    noise = np.float32(rng.uniform(0.0, 5.0)) * rng.standard_normal(img.shape[:2] + (1,), dtype=np.float32)
    return np.clip(out + noise, 0, 255).astype(np.uint8)


def render_scene(
    rng: np.random.Generator, image_size: tuple[int, int] = (256, 256), max_people: int = 3, min_visible: int = 4
) -> Scene:
    """Render one image with 1..``max_people`` annotated people (see the module doc for the rules).

    Args:
        rng: the only source of randomness (same generator state -> identical scene).
        image_size: ``(W, H)`` in pixels.
        max_people: upper bound on the number of people.
        min_visible: people with fewer keypoints at v = 2 are removed from the image.
    """
    w, h = int(image_size[0]), int(image_size[1])
    if w < 32 or h < 32:
        raise ValueError(f"image_size must be at least 32x32 px, got {image_size!r}")
    if max_people < 1:
        raise ValueError(f"max_people must be >= 1, got {max_people}")
    for _attempt in range(20):
        bg = make_background(rng, (w, h))
        people = _place_people(rng, (w, h), int(rng.integers(1, max_people + 1)))
        occluders: list[Occluder] = []
        for p in people:
            if rng.random() < 0.3:
                j = int(rng.integers(0, 17))
                occluders.append(
                    sample_occluder(
                        rng,
                        p.figure.points[j] + rng.normal(0, 0.05 * p.figure.height_px, 2),
                        p.figure.height_px * rng.uniform(0.06, 0.14),
                    )
                )
        if rng.random() < 0.25:
            occluders.append(sample_occluder(rng, rng.uniform(0, 1, 2) * (w, h), min(w, h) * rng.uniform(0.04, 0.12)))
        occ_seed = int(rng.integers(2**31))
        layers = [draw_person(p.figure, p.appearance, (w, h), np.random.default_rng(p.texture_seed)) for p in people]
        keep = [i for i, layer in enumerate(layers) if layer is not None]
        while keep:
            kept_people = [people[i] for i in keep]
            img, label = _compose(bg, kept_people, [layers[i] for i in keep], occluders, occ_seed)
            kps = [label_keypoints(p.figure, i, label) for i, p in enumerate(kept_people)]
            bad = [k for k, kp in zip(keep, kps) if int((kp[:, 2] == 2).sum()) < min_visible]
            if not bad:
                break
            keep = [k for k in keep if k not in bad]
        if not keep:
            continue
        persons = []
        for i, k in enumerate(keep):
            layer = layers[k]
            assert layer is not None
            sil = np.zeros((h, w), bool)
            hh, ww = layer.parts.shape
            sil[layer.y0 : layer.y0 + hh, layer.x0 : layer.x0 + ww] = layer.parts > 0
            kp = kps[i]
            ys, xs = np.nonzero(sil)
            lab = kp[:, 2] > 0
            x0 = min(float(xs.min()), float(kp[lab, 0].min()))
            y0 = min(float(ys.min()), float(kp[lab, 1].min()))
            x1 = min(max(float(xs.max()) + 1.0, float(kp[lab, 0].max())), float(w))
            y1 = min(max(float(ys.max()) + 1.0, float(kp[lab, 1].max())), float(h))
            persons.append(
                RenderedPerson(
                    keypoints=kp,
                    bbox=np.array([x0, y0, x1 - x0, y1 - y0]),
                    area=float(len(xs)),
                    silhouette=sil,
                    figure=people[k].figure,
                    appearance=people[k].appearance,
                )
            )
        return Scene(image=_camera_effects(img, rng), persons=persons, label_map=label, clean_image=img)
    raise RuntimeError(f"could not place a visible person in a {w}x{h} image after 20 attempts")

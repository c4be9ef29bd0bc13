"""Keypoint sets: names, flip pairs, OKS sigmas, drawing edges and body halves per dataset.

This module is the bottom layer of the package: it imports nothing but numpy and the standard
library, so every other layer (data, codecs, metrics, the torch-free evaluator) can use it.

Indices are 0-based everywhere. ``flip_indices[i]`` is the index of the keypoint that keypoint ``i``
becomes under a horizontal flip (``flip_indices[flip_indices[i]] == i``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = [
    "KeypointSet",
    "MPII",
    "COCO",
    "AIC",
    "get_keypoint_set",
    "KEYPOINT_SETS",
]


@dataclass(frozen=True)
class KeypointSet:
    """A named list of keypoints with everything that depends on their order.

    Args:
        name: short identifier, e.g. ``"coco"``.
        keypoints: keypoint names in channel order.
        flip_pairs: ``(left, right)`` index pairs swapped by a horizontal flip.
        skeleton: ``(a, b)`` index pairs drawn as limbs (0-based).
        upper_body: indices of the upper-body keypoints (half-body augmentation); the rest are lower body.
        sigmas: per-keypoint OKS sigmas (COCO definition, ``kappa = 2 * sigma``), or ``None`` when the
            dataset defines none (OKS-based metrics then refuse it).
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    upper_body: tuple[int, ...] = ()
    sigmas: tuple[float, ...] | None = None
    _flip_indices: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if k == 0:
            raise ValueError(f"keypoint set {self.name!r}: no keypoints")
        if len(set(self.keypoints)) != k:
            raise ValueError(f"keypoint set {self.name!r}: duplicate keypoint names")
        flip = list(range(k))
        seen: set[int] = set()
        for a, b in self.flip_pairs:
            for i in (a, b):
                if not 0 <= i < k:
                    raise ValueError(f"keypoint set {self.name!r}: flip pair index {i} outside 0..{k - 1}")
                if i in seen:
                    raise ValueError(f"keypoint set {self.name!r}: keypoint {i} appears in two flip pairs")
                seen.add(i)
            flip[a], flip[b] = b, a
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"keypoint set {self.name!r}: skeleton edge ({a}, {b}) outside 0..{k - 1}")
        for i in self.upper_body:
            if not 0 <= i < k:
                raise ValueError(f"keypoint set {self.name!r}: upper-body index {i} outside 0..{k - 1}")
        if self.sigmas is not None and len(self.sigmas) != k:
            raise ValueError(f"keypoint set {self.name!r}: {len(self.sigmas)} sigmas for {k} keypoints")
        object.__setattr__(self, "_flip_indices", tuple(flip))

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_indices(self) -> list[int]:
        """``flip_indices[i]``: the channel that channel ``i`` takes after a horizontal flip."""
        return list(self._flip_indices)

    @property
    def lower_body(self) -> list[int]:
        upper = set(self.upper_body)
        return [i for i in range(self.num_keypoints) if i not in upper]

    def sigmas_array(self) -> np.ndarray:
        if self.sigmas is None:
            raise ValueError(f"keypoint set {self.name!r} has no OKS sigmas")
        return np.asarray(self.sigmas, dtype=np.float64)

    def index(self, name: str) -> int:
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise KeyError(f"keypoint set {self.name!r} has no keypoint {name!r}") from None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "keypoints": list(self.keypoints),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "skeleton": [list(e) for e in self.skeleton],
            "upper_body": list(self.upper_body),
            "sigmas": None if self.sigmas is None else list(self.sigmas),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "KeypointSet":
        """Build a custom keypoint set, e.g. from a config's ``keypoint_set:`` mapping."""
        return cls(
            name=str(d.get("name", "custom")),
            keypoints=tuple(d["keypoints"]),
            flip_pairs=tuple(tuple(int(i) for i in p) for p in d.get("flip_pairs", ())),
            skeleton=tuple(tuple(int(i) for i in e) for e in d.get("skeleton", ())),
            upper_body=tuple(int(i) for i in d.get("upper_body", ())),
            sigmas=None if d.get("sigmas") is None else tuple(float(s) for s in d["sigmas"]),
        )


def _pairs_from_flip(flip: Sequence[int]) -> tuple[tuple[int, int], ...]:
    return tuple((i, j) for i, j in enumerate(flip) if i < j)


MPII = KeypointSet(
    name="mpii",
    keypoints=(
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ),
    flip_pairs=_pairs_from_flip([5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]),
    skeleton=(
        (0, 1),
        (1, 2),
        (2, 6),
        (6, 3),
        (3, 4),
        (4, 5),
        (6, 7),
        (7, 8),
        (8, 9),
        (10, 11),
        (11, 12),
        (12, 7),
        (7, 13),
        (13, 14),
        (14, 15),
    ),
    upper_body=tuple(range(7, 16)),
    sigmas=None,
)

COCO = KeypointSet(
    name="coco",
    keypoints=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    flip_pairs=_pairs_from_flip([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]),
    # the 1-based COCO ``skeleton`` of person_keypoints_*.json, made 0-based
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    upper_body=tuple(range(0, 11)),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
)

AIC = KeypointSet(
    name="aic",
    keypoints=(
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "head_top",
        "neck",
    ),
    flip_pairs=_pairs_from_flip([3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8, 12, 13]),
    skeleton=(
        (2, 1),
        (1, 0),
        (0, 13),
        (13, 3),
        (3, 4),
        (4, 5),
        (8, 7),
        (7, 6),
        (6, 9),
        (9, 10),
        (10, 11),
        (12, 13),
        (0, 6),
        (3, 9),
    ),
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
    sigmas=(
        0.01388152,
        0.01515228,
        0.01057665,
        0.01417709,
        0.01497891,
        0.01402144,
        0.03909642,
        0.03686941,
        0.01981803,
        0.03843971,
        0.03412318,
        0.02415081,
        0.01291456,
        0.01236173,
    ),
)

KEYPOINT_SETS: dict[str, KeypointSet] = {"mpii": MPII, "coco": COCO, "aic": AIC}


def get_keypoint_set(spec: str | dict | KeypointSet) -> KeypointSet:
    """Resolve ``"coco"``/``"mpii"``/``"aic"``, a mapping (custom set) or a :class:`KeypointSet`."""
    if isinstance(spec, KeypointSet):
        return spec
    if isinstance(spec, dict):
        return KeypointSet.from_dict(spec)
    key = str(spec).lower()
    if key not in KEYPOINT_SETS:
        raise ValueError(f"unknown keypoint set {spec!r}; known: {sorted(KEYPOINT_SETS)} (or give a mapping)")
    return KEYPOINT_SETS[key]

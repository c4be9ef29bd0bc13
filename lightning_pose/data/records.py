"""The one record type every dataset reader produces.

Coordinate frame (the package-wide convention): **0-based pixel coordinates of the original image**,
where the centre of the top-left pixel is (0, 0) and a horizontal flip maps ``x -> width - 1 - x``.
COCO and AI Challenger annotations are used as they are; MPII's MATLAB 1-based values are shifted by
-1 once, in the MPII reader.

Visibility uses the COCO codes: 0 unlabelled, 1 labelled but occluded, 2 labelled and visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lightning_pose.errors import PoseUserError

__all__ = ["PersonRecord", "ImageRecord", "DataProblem", "DatasetError"]


@dataclass
class PersonRecord:
    """One annotated person.

    Attributes:
        keypoints: ``(K, 3)`` float64 ``x, y, v``: 0-based pixels, v in {0, 1, 2}. Unlabelled joints have
            v = 0 (their x, y are meaningless and set to 0).
        bbox: ``(4,)`` float64 ``x, y, w, h`` in pixels (COCO xywh), 0-based origin.
        area: segment area in px^2 (COCO ``area``); when the dataset has none, ``w * h``.
        iscrowd: COCO crowd flag (crowd regions are ignored by training and metrics).
        id: annotation id, unique within the dataset (int; readers assign one when the format has none).
        head_box: ``(2, 2)`` ``[[x1, y1], [x2, y2]]`` 0-based head rectangle (MPII), else ``None``.
        center: ``(2,)`` person centre in 0-based pixels given by the annotation (MPII), else ``None``.
        scale: person height / 200 px given by the annotation (MPII), else ``None``.
        source_index: position of this person in the annotation file's person list (e.g. the row of
            MPII ``gt_valid.mat``), used when exporting predictions in the native order.
        name: name of the person in the source format (AI Challenger ``human3``), else ``None``.
    """

    keypoints: np.ndarray
    bbox: np.ndarray
    area: float
    iscrowd: bool = False
    id: int = 0
    head_box: np.ndarray | None = None
    center: np.ndarray | None = None
    scale: float | None = None
    source_index: int = -1
    name: str | None = None

    @property
    def num_keypoints(self) -> int:
        """Number of labelled keypoints (v > 0)."""
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass
class ImageRecord:
    """One image and its persons.

    Attributes:
        image_id: integer id (COCO ``id``; MPII and AIC readers number images from 1 in file order).
        file: absolute path of the image file (guaranteed by readers to lie inside the image folder).
        width, height: image size in pixels (from the annotation file; 0 if the format does not say).
        persons: annotated persons (crowd regions included, flagged).
        source_id: the image id in the source format when it is not an int (AIC sha1 name), else ``None``.
    """

    image_id: int
    file: Path
    width: int
    height: int
    persons: list[PersonRecord] = field(default_factory=list)
    source_id: str | None = None


@dataclass
class DataProblem:
    """One problem found in an annotation file (used by ``lightning-pose data check`` and skip-with-report).

    Attributes:
        file: the annotation (or image) file the problem is in.
        record: which record: e.g. ``"image 785"``, ``"annotation 442619"``, ``"person 3 (image 005808361.jpg)"``.
        problem: what is wrong, in words a user can act on.
        kind: a short machine-readable category (``missing_image``, ``unreadable_image``, ``size_mismatch``,
            ``keypoint_count``, ``non_finite``, ``empty_box``, ``path_escape``, ``unknown_image``, ``bad_value``,
            ``duplicate_id``).
    """

    file: str
    record: str
    problem: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}: {self.record}: {self.problem}"

    def to_dict(self) -> dict:
        return {"file": self.file, "record": self.record, "problem": self.problem, "kind": self.kind}


class DatasetError(PoseUserError, ValueError):
    """Raised for bad annotation input; the message names the file, the record and the problem."""

    def __init__(self, problems: list[DataProblem] | DataProblem | str, *, hint: bool = True):
        if isinstance(problems, str):
            self.problems: list[DataProblem] = []
            super().__init__(problems)
            return
        if isinstance(problems, DataProblem):
            problems = [problems]
        self.problems = list(problems)
        # the first line alone names the file, the record and the problem; further problems follow, one per line
        tail = ("run `lightning-pose data check` for the full report, or set skip_invalid: true to drop such records"
                if hint else "")
        if len(self.problems) == 1:
            super().__init__(f"{self.problems[0]}" + (f" ({tail})" if tail else ""))
            return
        what = "the dataset" if hint else "the input"
        rest = "".join(f"\n{p}" for p in self.problems[1:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problems in {what}, the first: {self.problems[0]}{rest}{more}"
                         + (f"\n({tail})" if tail else ""))

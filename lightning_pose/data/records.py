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

# the error types live in the lowest layer (errors.py) so that evaluation/ need not import data/; re-exported here
from lightning_pose.errors import DataProblem, DatasetError

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

"""Person boxes for ``predict --boxes FILE``: COCO detection results matched to the source's images.

The file is a JSON list of ``{"image_id": int and/or "file_name": str, "bbox": [x, y, w, h], "score": float,
"category_id": 1}`` (0-based image pixels, the COCO results format; ``category_id`` other than 1 is skipped).
An entry is matched to an image by ``file_name`` (the path relative to the source folder, or the bare file name)
when it has one, else by ``image_id``: the image ids are those of :func:`assign_image_ids` (the number in COCO-style
file names such as ``000000000785.jpg`` -> 785, otherwise the image's 0-based position; a video's frame number).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lightning_pose.errors import PoseUserError

__all__ = ["BoxFileError", "BoxTable", "read_box_file", "assign_image_ids"]


class BoxFileError(PoseUserError, ValueError):
    """A ``--boxes`` file that cannot be used (names the file and the entry)."""


def assign_image_ids(names: Sequence[str]) -> list[int]:
    """Image ids of the source's images: the numbers of COCO-style names when every stem is a distinct number,
    else the 0-based positions."""
    stems = [Path(n).stem for n in names]
    if stems and all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(len(names)))


@dataclass
class BoxTable:
    """Boxes of a detection file, by file name and by image id. Arrays are ``(N, 5)``: x, y, w, h, score."""

    path: Path
    by_name: dict[str, list[list[float]]] = field(default_factory=dict)
    by_id: dict[int, list[list[float]]] = field(default_factory=dict)
    used: set = field(default_factory=set)

    def lookup(self, name: str, image_id: int) -> np.ndarray:
        """The boxes of one image (``(N, 5)``, possibly empty): by file name first, then by image id."""
        rows: list[list[float]] = []
        for key in (name, Path(name).name):
            if key in self.by_name:
                rows = self.by_name[key]
                self.used.add(("name", key))
                break
        else:
            if image_id in self.by_id:
                rows = self.by_id[image_id]
                self.used.add(("id", image_id))
        return np.asarray(rows, dtype=np.float64).reshape(-1, 5)

    def unmatched(self) -> int:
        """Number of file names / image ids in the file that matched no image of the source."""
        keys = {("name", k) for k in self.by_name} | {("id", k) for k in self.by_id}
        return len(keys - self.used)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def read_box_file(path: str | Path) -> BoxTable:
    """Read and validate a detection file; raises :class:`BoxFileError` naming the file and entry."""
    p = Path(path)
    if not p.is_file():
        raise BoxFileError(f"--boxes {p}: no such file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoxFileError(f"--boxes {p}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = data["annotations"]  # a predictions.json or a COCO-style file: use its boxes
    if not isinstance(data, list):
        raise BoxFileError(f"--boxes {p}: expected a JSON list of detections (COCO results format)")
    table = BoxTable(p)
    for i, d in enumerate(data):
        where = f"--boxes {p}: detection {i}"
        if not isinstance(d, dict):
            raise BoxFileError(f"{where}: entry is not an object")
        if d.get("category_id", 1) != 1:
            continue
        name, iid = d.get("file_name"), d.get("image_id")
        if name is None and (isinstance(iid, bool) or not isinstance(iid, int)):
            raise BoxFileError(f"{where}: needs an integer 'image_id' or a 'file_name', found {iid!r:.40}")
        box = d.get("bbox")
        vals = [_number(v) for v in box] if isinstance(box, list) and len(box) == 4 else None
        if vals is None or any(v is None for v in vals):
            raise BoxFileError(f"{where}: 'bbox' must be 4 finite numbers x, y, w, h, found {box!r:.60}")
        if vals[2] <= 0 or vals[3] <= 0:
            raise BoxFileError(f"{where}: empty bbox (w={vals[2]:g}, h={vals[3]:g})")
        score = _number(d.get("score", 1.0))
        if score is None:
            raise BoxFileError(f"{where}: 'score' must be a finite number, found {d.get('score')!r:.40}")
        row = [*vals, score]
        if name is not None:
            table.by_name.setdefault(str(name), []).append(row)
        else:
            table.by_id.setdefault(int(iid), []).append(row)
    return table

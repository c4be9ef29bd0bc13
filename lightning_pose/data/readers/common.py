"""Validation helpers shared by the dataset readers (torch-free: numpy, json, PIL headers only).

Every reader follows the same pattern:

1. :func:`load_json` the annotation file (malformed JSON or a wrong top-level type is a
   :class:`~lightning_pose.data.records.DatasetError` naming the file);
2. walk the records, recording every problem in a :class:`ProblemLog` and leaving the bad
   image/person records out;
3. :func:`finish_read`, which raises ``DatasetError(problems)`` when problems were found and
   ``skip_invalid`` is false, or else emits one summary warning and returns a :class:`ReadResult`.

Coordinates handled here are 0-based pixels of the original image (see ``records.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lightning_pose.data.readers.image_files import check_image_file
from lightning_pose.data.records import DataProblem, DatasetError, ImageRecord
from lightning_pose.skeletons import KeypointSet

__all__ = [
    "ReadResult",
    "ProblemLog",
    "load_json",
    "file_error",
    "parse_keypoints",
    "parse_number",
    "parse_box",
    "check_box",
    "image_root_for",
    "resolve_image_path",
    "inspect_image",
    "finish_read",
    "normalise_name",
]

logger = logging.getLogger(__name__)

#: the Python types json.load produces for numbers
_NUMBER_TYPES = {int, float}
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass
class ReadResult:
    """What a reader returns.

    Attributes:
        records: the valid images (with their valid persons); 0-based pixel coordinates, COCO visibility codes.
        problems: every problem found (empty when clean). With ``skip_invalid=True`` the records they concern
            were left out of ``records``.
        keypoint_set: the keypoint set the keypoints are ordered by.
        source: the annotation file that was read.
        notes: facts about how the file was interpreted that are not problems (e.g. "area missing in 9
            annotations: used w*h").
        advisories: findings that do not stop reading but that ``lightning-pose data check`` reports (e.g. a
            COCO ``num_keypoints`` field that disagrees with the keypoints). Never raised by the readers.
    """

    records: list[ImageRecord]
    problems: list[DataProblem]
    keypoint_set: KeypointSet
    source: Path
    notes: list[str] = field(default_factory=list)
    advisories: list[DataProblem] = field(default_factory=list)

    @property
    def num_persons(self) -> int:
        """Number of person records (crowd regions included)."""
        return sum(len(r.persons) for r in self.records)


class ProblemLog:
    """Collects :class:`DataProblem` s for one annotation file and counts the records left out."""

    def __init__(self, source: Path):
        self.source = Path(source)
        self.file = str(source)
        self.problems: list[DataProblem] = []
        self.skipped_images = 0
        self.skipped_persons = 0

    def add(self, record: str, problem: str, kind: str, file: str | Path | None = None) -> None:
        """Record one problem. ``file`` defaults to the annotation file (give the image path for image files)."""
        self.problems.append(DataProblem(self.file if file is None else str(file), record, problem, kind))

    def __len__(self) -> int:
        return len(self.problems)


def file_error(path: Path | str, problem: str, kind: str = "malformed_file", record: str = "file") -> DatasetError:
    """A :class:`DatasetError` for a problem with the whole file (it cannot be skipped record by record)."""
    return DatasetError(DataProblem(str(path), record, problem, kind))


def load_json(path: str | Path, expected: type | tuple[type, ...], what: str) -> Any:
    """Read a JSON file and check its top-level type.

    Args:
        path: the file.
        expected: ``dict`` or ``list`` (or a tuple of them).
        what: a description of the expected content for messages, e.g. ``"a COCO keypoint annotation object"``.

    Raises:
        DatasetError: the file is missing, unreadable, not valid JSON, or of the wrong top-level type.
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(
            path, "annotation file not found" if not path.exists() else "not a regular file", "missing_file"
        )
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise file_error(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise file_error(path, f"not UTF-8 text ({e.reason})") from e
    except OSError as e:
        raise file_error(path, f"cannot read the file ({e})", "unreadable_file") from e
    if not isinstance(data, expected):
        raise file_error(path, f"expected {what} at the top level, found a JSON {type(data).__name__}")
    return data


def normalise_name(name: str) -> str:
    """``"Right Shoulder"`` -> ``"right_shoulder"`` (to compare keypoint names across conventions)."""
    return "_".join(str(name).strip().lower().replace("-", " ").split())


def parse_number(value: Any) -> float | None:
    """A JSON number as float, or ``None`` when it is not a number (bools, strings, null are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _as_float_array(values: Any) -> np.ndarray | None:
    """A flat list of JSON numbers as float64, or ``None`` when any entry is not a number."""
    if not isinstance(values, (list, tuple)):
        return None
    if not set(map(type, values)) <= _NUMBER_TYPES:  # bool, str, None, lists... (np.array would coerce some)
        return None
    return np.array(values, dtype=np.float64)


def parse_keypoints(
    values: Any,
    num_keypoints: int,
    log: ProblemLog,
    record: str,
    vis_map: dict[int, int] | None = None,
    vis_desc: str = "0, 1 or 2",
) -> np.ndarray | None:
    """Validate flat ``[x, y, v] * K`` keypoints and return them as a ``(K, 3)`` float64 array.

    Coordinates are returned unchanged (the caller knows the frame); unlabelled joints (v = 0 after
    mapping) get x = y = 0.

    Args:
        values: the flat list from the annotation.
        num_keypoints: K expected by the keypoint set.
        log: where problems go (kinds ``keypoint_count``, ``bad_value``, ``non_finite``).
        record: the record name for messages, e.g. ``"annotation 442619 (image 785)"``.
        vis_map: maps the file's visibility codes to COCO codes (default: identity on {0, 1, 2}).
        vis_desc: the allowed codes, for the message.

    Returns:
        ``(K, 3)`` array ``x, y, v`` with COCO visibility codes, or ``None`` when a problem was logged.
    """
    if not isinstance(values, (list, tuple)):
        log.add(
            record,
            f"'keypoints' must be a list of {3 * num_keypoints} numbers "
            f"([x, y, v] x {num_keypoints}), found {type(values).__name__}",
            "keypoint_count",
        )
        return None
    if len(values) != 3 * num_keypoints:
        log.add(
            record,
            f"{len(values)} keypoint values, expected {3 * num_keypoints} ([x, y, v] x {num_keypoints} keypoints)",
            "keypoint_count",
        )
        return None
    arr = _as_float_array(values)
    if arr is None:
        log.add(record, "'keypoints' contains a value that is not a number", "bad_value")
        return None
    kps = arr.reshape(num_keypoints, 3)  # a fresh array: safe to modify
    if not np.isfinite(arr).all():
        bad = ~np.isfinite(kps).all(axis=1)
        log.add(record, f"non-finite keypoint values at keypoint(s) {np.flatnonzero(bad).tolist()}", "non_finite")
        return None
    vis = kps[:, 2]
    if vis_map is None:  # COCO codes: validate only
        mapped = np.where((vis == 0) | (vis == 1) | (vis == 2), vis, -1.0)
    else:
        mapped = np.full(num_keypoints, -1.0)
        for code, coco_code in vis_map.items():
            mapped[vis == code] = coco_code
    allowed = mapped >= 0
    if not allowed.all():
        j = int(np.flatnonzero(~allowed)[0])
        log.add(
            record,
            f"visibility {vis[j]:g} at keypoint {j} (and {int((~allowed).sum()) - 1} more); allowed: {vis_desc}",
            "bad_value",
        )
        return None
    kps[:, 2] = mapped
    kps[mapped == 0, :2] = 0.0
    return kps


def check_box(box: np.ndarray, log: ProblemLog, record: str, *, must_have_area: bool) -> bool:
    """Check an ``x, y, w, h`` box: finite, no negative side; zero sides are refused when ``must_have_area``.

    Returns True when the box is acceptable (problems are logged otherwise; kinds ``non_finite``, ``empty_box``).
    """
    if not np.isfinite(box).all():
        log.add(record, f"non-finite bbox {box.tolist()}", "non_finite")
        return False
    w, h = float(box[2]), float(box[3])
    if w < 0 or h < 0 or (must_have_area and (w <= 0 or h <= 0)):
        log.add(
            record,
            f"empty or negative bbox (w={w:g}, h={h:g}) for a person with labelled keypoints"
            if must_have_area
            else f"negative bbox size (w={w:g}, h={h:g})",
            "empty_box",
        )
        return False
    return True


def parse_box(values: Any, log: ProblemLog, record: str, key: str = "bbox") -> np.ndarray | None:
    """A list of 4 JSON numbers as float64 ``(4,)`` (no geometric check), or ``None`` with a logged problem."""
    arr = _as_float_array(values)
    if arr is None or arr.shape != (4,):
        log.add(record, f"'{key}' must be a list of 4 numbers, found {values!r:.80}", "bad_value")
        return None
    return arr


def resolve_image_path(image_root: Path, rel: Any, log: ProblemLog, record: str) -> Path | None:
    """Join an image name from the annotation to the (resolved) image folder, refusing names that escape it.

    The check is on the *name*: refused (kind ``path_escape``) are absolute paths, drive-qualified paths and
    any ``..`` component. Symlinks inside the folder are followed wherever they point (datasets stored as
    per-file links, e.g. DVC or git-annex): what matters is that the target is a regular file, which
    :func:`inspect_image` checks. Non-string names are ``bad_value``.

    Args:
        image_root: the image folder, already ``resolve()`` d.
        rel: the name as given in the annotation (``file_name``, MPII ``image``, AIC ``<sha1>.jpg``).

    Returns:
        ``image_root / rel`` (absolute, symlinks not resolved) or ``None`` when refused.
    """
    if not isinstance(rel, str) or not rel.strip():
        log.add(record, f"image file name must be a non-empty string, found {rel!r:.80}", "bad_value")
        return None
    if "\x00" in rel:
        log.add(record, f"image file name {rel!r:.80} contains a NUL byte", "bad_value")
        return None
    parts = rel.replace("\\", "/").split("/")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(rel):
        log.add(
            record,
            f"image path {rel!r} is absolute; image names must be relative to the image folder {image_root}",
            "path_escape",
        )
        return None
    if ".." in parts:
        log.add(record, f"image path {rel!r} contains '..'; image names must stay inside {image_root}", "path_escape")
        return None
    return Path(os.path.join(str(image_root), *[p for p in parts if p not in ("", ".")]))


def inspect_image(path: Path, width: int, height: int, log: ProblemLog, record: str) -> tuple[int, int] | None:
    """Check an image file the way training will use it (see
    :func:`~lightning_pose.data.readers.image_files.check_image_file`: exists / regular file or symlink to one,
    header, truncation, zeroed data, size vs the annotation).

    Args:
        path: the image file.
        width, height: the size the annotation states in pixels; 0 means "not given" (not compared).

    Returns:
        ``(width, height)`` from the header, or ``None`` when a problem was logged (kinds ``missing_image``,
        ``unreadable_image``, ``size_mismatch``; the problem's file is the image path).
    """
    result = check_image_file(path, width, height)
    if not result.ok:
        log.add(record, str(result.problem), str(result.kind), file=path)
        return None
    return result.size


def finish_read(
    records: Sequence[ImageRecord],
    log: ProblemLog,
    keypoint_set: KeypointSet,
    *,
    skip_invalid: bool,
    notes: list[str] | None = None,
    advisories: list[DataProblem] | None = None,
) -> ReadResult:
    """Raise or warn about the collected problems and build the :class:`ReadResult`.

    Raises:
        DatasetError: problems were found and ``skip_invalid`` is false (the error lists them all).
    """
    notes = list(notes or [])
    for n in notes:
        logger.info("%s: %s", log.file, n)
    if log.problems and not skip_invalid:
        raise DatasetError(log.problems)
    if log.problems:
        kinds: dict[str, int] = {}
        for p in log.problems:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        kind_txt = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
        warnings.warn(
            f"{log.file}: skipped {log.skipped_images + log.skipped_persons} records "
            f"({log.skipped_images} images, {log.skipped_persons} persons) because of "
            f"{len(log.problems)} problem(s) ({kind_txt}); see `lightning-pose data check`",
            UserWarning,
            stacklevel=3,
        )
    return ReadResult(
        records=list(records),
        problems=list(log.problems),
        keypoint_set=keypoint_set,
        source=log.source,
        notes=notes,
        advisories=list(advisories or []),
    )


def image_root_for(image_dir: str | Path, check_images: bool, ann_file: Path) -> Path:
    """Resolve the image folder; with ``check_images`` it must exist (else a file-level DatasetError)."""
    root = Path(image_dir).expanduser().resolve()
    if check_images and not root.is_dir():
        raise file_error(ann_file, f"image folder {root} does not exist", "missing_image", record="image folder")
    return root

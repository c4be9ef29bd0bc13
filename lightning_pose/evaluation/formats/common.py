"""What every evaluation file loader shares: json reading, value checks, one-line errors. Torch-free.

Every loader raises :class:`~lightning_pose.errors.DatasetError` naming the file, the record and the problem,
without the training-data hints (these are evaluation inputs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lightning_pose.errors import DataProblem, DatasetError

__all__ = ["load_json", "number_problem", "id_problem", "category_num_keypoints"]


def _err(path: Path | str, record: str, problem: str, kind: str = "bad_value") -> DatasetError:
    # evaluation inputs are not training data: no `data check` / skip_invalid hint
    return DatasetError(DataProblem(str(path), record, problem, kind), hint=False)


def load_json(path: str | Path) -> Any:
    """Read a json file; a missing file or invalid json raises :class:`DatasetError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise _err(path, "file", "file not found", "missing_file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _err(path, "file", f"invalid json ({e})", "unreadable") from e
    except RecursionError:
        raise _err(
            path, "file", "json nested too deeply to be an annotation or prediction file", "unreadable"
        ) from None


def _problems(problems: list[DataProblem]) -> DatasetError:
    return DatasetError(problems, hint=False)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    """JSON numbers only: ``int``/``float`` (and numpy scalars), never ``bool`` or numeric strings."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def number_problem(value: Any, field: str, *, finite: bool = True) -> str | None:
    """Why ``value`` (a number or a nested list of numbers) is not acceptable as ``field``, or ``None`` if it is.

    Strings (``"1.0"``) and booleans are refused even though numpy would convert them: a file holding them was
    not written by a pose tool and its numbers cannot be trusted. ``finite`` also refuses NaN/inf.
    """
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(
                (f"{field}[{i}]" if where == field else f"{where}[{i}]", x) for i, x in reversed(list(enumerate(v)))
            )
            continue
        if not _is_number(v):
            return f"{where} is {_kind_of(v)}, expected a number"
        if finite and not np.isfinite(float(v)):
            return f"{field} contain NaN/inf ({where} = {v!r})" if where != field else f"{field} is {v!r} (NaN/inf)"
    return None


def id_problem(value: Any, field: str = "image_id") -> str | None:
    """Why ``value`` cannot be an image/category id (ids are integers or strings), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, str, np.integer)):
        return f"{field} is {_kind_of(value)}, expected an integer or a string"
    return None


def _finite_numbers(values: Any) -> bool:
    return number_problem(values, "value") is None


def category_num_keypoints(gt: Mapping) -> int | None:
    """K of a COCO-layout GT dict: the length of the first category's non-empty ``keypoints`` name list
    (``None`` when no category lists keypoint names; non-dict categories are skipped)."""
    for cat in gt.get("categories") or []:
        if isinstance(cat, Mapping) and isinstance(cat.get("keypoints"), (list, tuple)) and cat["keypoints"]:
            return len(cat["keypoints"])
    return None

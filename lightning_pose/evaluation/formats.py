"""Evaluation file formats: validated loaders and writers. numpy / scipy / h5py / json only (no torch).

Frames:

* COCO and AI Challenger files hold 0-based image pixels (used as they are).
* MPII GT (``.mat`` and the widely used json) is MATLAB **1-based**; loaders here keep it 1-based so that it can
  be compared with 1-based prediction files (the native MPII convention, e.g. HRNet's ``pred.mat``).
  :func:`write_mpii_preds` therefore expects 1-based predictions (add 1 to the package's 0-based coordinates;
  ``one_based=False`` writes values unchanged).

Every loader raises :class:`~lightning_pose.errors.DatasetError` naming the file, the record and the problem
(shape mismatch, wrong keypoint count, unknown image id, NaN in GT, strings or booleans where numbers belong, ...),
without the training-data hints (these are evaluation inputs). Writers are atomic (temporary file + rename,
:mod:`lightning_pose.outputs`): an interrupted write leaves the previous file intact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lightning_pose.data.readers.mpii_mat import load_mpii_gt_mat
from lightning_pose.errors import DataProblem, DatasetError
from lightning_pose.outputs import atomic_path, atomic_write_text

__all__ = [
    "MPIIEvalGT",
    "load_json",
    "load_coco_gt",
    "load_coco_results",
    "load_mpii_gt",
    "load_mpii_preds",
    "load_aic_release",
    "write_coco_results",
    "write_mpii_preds",
    "write_aic_preds",
    "aic_release_preds",
]

AIC_NUM_KEYPOINTS = 14
MPII_NUM_JOINTS = 16


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
        raise _err(path, "file", "json nested too deeply to be an annotation or prediction file",
                   "unreadable") from None


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
            stack.extend((f"{field}[{i}]" if where == field else f"{where}[{i}]", x)
                         for i, x in reversed(list(enumerate(v))))
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


# ----------------------------------------------------------------------------------------------- COCO


def load_coco_gt(path: str | Path, num_keypoints: int | None = None) -> dict:
    """Load and validate a COCO keypoint GT json (``person_keypoints_*.json`` layout; also COCO-style AIC).

    Checks: ``images``/``annotations``/``categories`` lists; unique image ids; every annotation's
    ``image_id`` is a known image; ``keypoints`` has ``3 * K`` finite numbers with K from the category's
    ``keypoints`` names (or ``num_keypoints``); ``bbox`` is 4 finite numbers; ``area`` (when present) finite.
    Annotations without ``num_keypoints`` get it computed as ``#(v > 0)`` (pycocotools needs the field);
    annotations without ``iscrowd`` get 0.

    Returns:
        the (lightly completed) dict, ready for the COCO evaluator.
    """
    path = Path(path)
    gt = load_json(path)
    if not isinstance(gt, dict):
        raise _err(path, "file", "a COCO GT file must be a json object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise _err(path, key, f"missing or not a list: {key!r}", "missing_field")
    k = num_keypoints
    if k is None:
        for cat in gt["categories"]:
            if isinstance(cat, dict) and isinstance(cat.get("keypoints"), list) and cat["keypoints"]:
                k = len(cat["keypoints"])
                break
    if k is None:
        raise _err(path, "categories", "no category lists keypoint names, so the keypoint count is unknown",
                   "missing_field")
    image_ids: set = set()
    for i, img in enumerate(gt["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise _err(path, f"images[{i}]", "image entry without 'id'", "missing_field")
        bad = id_problem(img["id"], "id")
        if bad:
            raise _err(path, f"images[{i}]", bad)
        if img["id"] in image_ids:
            raise _err(path, f"image {img['id']}", "duplicate image id", "duplicate_id")
        image_ids.add(img["id"])
    problems: list[DataProblem] = []
    for i, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, dict):
            problems.append(DataProblem(str(path), f"annotations[{i}]", "annotation is not an object", "bad_value"))
            continue
        ann_id = ann.get("id", f"#{i}")
        rec = f"annotation {ann_id}" if id_problem(ann_id) is None else f"annotations[{i}]"
        bad = id_problem(ann.get("image_id"))
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "bad_value"))
            continue
        if ann.get("image_id") not in image_ids:
            problems.append(DataProblem(str(path), rec, f"unknown image id {ann.get('image_id')!r}", "unknown_image"))
        kp = ann.get("keypoints")
        if not isinstance(kp, list) or len(kp) != 3 * k:
            n = len(kp) if isinstance(kp, list) else "no"
            problems.append(DataProblem(str(path), rec, f"{n} keypoint values, expected {3 * k} ({k} keypoints x 3)",
                                        "keypoint_count"))
            continue
        bad = number_problem(kp, "keypoints")
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "non_finite" if "NaN" in bad else "bad_value"))
            continue
        bbox = ann.get("bbox")
        if bbox is not None and (not isinstance(bbox, list) or len(bbox) != 4 or number_problem(bbox, "bbox")):
            problems.append(DataProblem(str(path), rec, f"bbox must be 4 finite numbers, got {bbox!r}", "bad_value"))
            continue
        for key in ("area", "iscrowd", "num_keypoints", "category_id"):
            if key in ann and number_problem(ann[key], key):
                problems.append(DataProblem(str(path), rec, number_problem(ann[key], key),
                                            "non_finite" if key == "area" else "bad_value"))
                break
        else:
            if "num_keypoints" not in ann:
                ann["num_keypoints"] = int((np.asarray(kp, dtype=np.float64)[2::3] > 0).sum())
            ann.setdefault("iscrowd", 0)
    if problems:
        raise _problems(problems)
    return gt


def load_coco_results(path: str | Path, gt: dict | None = None, num_keypoints: int | None = None) -> list[dict]:
    """Load and validate a COCO keypoint results json: a list of
    ``{image_id, category_id, keypoints: [x, y, s] * K, score}`` (0-based image pixels).

    Args:
        path: the results file.
        gt: the GT dict; when given, every ``image_id`` must be one of its images and K defaults to its K.
        num_keypoints: expected K (overrides the one from ``gt``).
    """
    path = Path(path)
    res = load_json(path)
    if not isinstance(res, list):
        raise _err(path, "file", "a COCO results file must be a json list of detections")
    known = None if gt is None else {img["id"] for img in gt.get("images", [])}
    k = num_keypoints
    if k is None and gt is not None:
        for cat in gt.get("categories", []):
            if cat.get("keypoints"):
                k = len(cat["keypoints"])
                break
    problems: list[DataProblem] = []
    for i, r in enumerate(res):
        rec = f"result {i}"
        if not isinstance(r, dict):
            problems.append(DataProblem(str(path), rec, "entry is not an object", "bad_value"))
            continue
        missing = [f for f in ("image_id", "keypoints", "score") if f not in r]
        if missing:
            problems.append(DataProblem(str(path), rec, f"missing field(s) {missing}", "missing_field"))
            continue
        bad = id_problem(r["image_id"])
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "bad_value"))
            continue
        rec = f"result {i} (image {r['image_id']})"
        if known is not None and r["image_id"] not in known:
            problems.append(DataProblem(str(path), rec, f"unknown image id {r['image_id']!r} (not in the GT)",
                                        "unknown_image"))
        kp = r["keypoints"]
        if not isinstance(kp, list) or len(kp) % 3 != 0 or (k is not None and len(kp) != 3 * k):
            n = len(kp) if isinstance(kp, list) else "no"
            exp = f"{3 * k}" if k is not None else "a multiple of 3"
            problems.append(DataProblem(str(path), rec, f"{n} keypoint values, expected {exp}", "keypoint_count"))
            continue
        bad = number_problem(kp, "keypoints") or number_problem(r["score"], "score")
        if bad is None and "category_id" in r and (isinstance(r["category_id"], bool)
                                                   or not isinstance(r["category_id"], (int, np.integer))):
            bad = f"category_id is {_kind_of(r['category_id'])}, expected an integer"
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "non_finite" if "NaN" in bad else "bad_value"))
            continue
        r.setdefault("category_id", 1)
    if problems:
        raise _problems(problems)
    return res


def write_coco_results(path: str | Path, results: Sequence[dict]) -> None:
    """Write COCO keypoint results (list of ``{image_id, category_id, keypoints, score}``) as json.

    Floats are written with ``repr`` precision (json default), so a round trip is exact.
    """
    out = []
    for r in results:
        d = dict(r)
        d["keypoints"] = [float(v) for v in np.asarray(d["keypoints"], dtype=np.float64).reshape(-1)]
        d["score"] = float(d["score"])
        d["image_id"] = int(d["image_id"]) if isinstance(d["image_id"], (int, np.integer)) else d["image_id"]
        d["category_id"] = int(d.get("category_id", 1))
        if "bbox" in d:
            d["bbox"] = [float(v) for v in d["bbox"]]
        out.append(d)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out))


# ----------------------------------------------------------------------------------------------- MPII


@dataclass
class MPIIEvalGT:
    """MPII ground truth for PCKh, 1-based pixels.

    Attributes:
        joints: ``(N, 16, 2)`` float64 GT joints, MATLAB 1-based pixels.
        visible: ``(N, 16)`` bool, annotated joints.
        head_sizes: ``(N,)`` float64 ``0.6 * head-box diagonal`` in pixels; NaN where unknown.
        path: the GT file.
    """

    joints: np.ndarray
    visible: np.ndarray
    head_sizes: np.ndarray
    path: str

    @property
    def num_persons(self) -> int:
        return int(self.joints.shape[0])


def _load_gt_mat(path: str | Path, role: str):
    """:func:`load_mpii_gt_mat` with every failure as one :class:`DatasetError` naming the file (no traceback,
    no training-data hints: this is an evaluation input)."""
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise _err(path, "file", f"empty file (0 bytes), expected a MATLAB .mat {role} file", "unreadable")
    try:
        return load_mpii_gt_mat(path)
    except DatasetError as e:
        raise _problems(e.problems) if e.problems else _err(path, "file", str(e), "unreadable") from None
    except (MatReadError, ValueError, TypeError, KeyError, OSError, IndexError) as e:
        raise _err(path, "file", f"not a readable MATLAB .mat {role} file ({type(e).__name__}: {e})",
                   "unreadable") from None


def load_mpii_gt(path: str | Path, headboxes: str | Path | None = None) -> MPIIEvalGT:
    """Load MPII GT from a ``gt_valid.mat``-style file or from the json conversion.

    Args:
        path: ``.mat`` (``jnt_missing``/``pos_gt_src``/``headboxes_src``) or ``.json`` (list of
            ``{image, center, scale, joints (16x2, 1-based), joints_vis (16)}``).
        headboxes: for json GT, a ``.mat`` with ``headboxes_src`` (2x2xN, same person order, e.g.
            ``mpii_gt_val.mat``). Without it the head sizes are NaN (no PCKh possible).

    Raises:
        DatasetError: unreadable, empty or garbage file, wrong joint count, joints that are not numbers (strings and
            booleans are refused), NaN in annotated joints, or a head-box file whose person count differs.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        g = _load_gt_mat(path, "ground-truth")
        joints = np.transpose(g.pos_gt_src, (2, 0, 1)).copy()
        return MPIIEvalGT(joints, ~g.jnt_missing.T, g.head_sizes, str(path))
    data = load_json(path)
    if isinstance(data, dict) and "annotations" in data:
        data = data["annotations"]
    if not isinstance(data, list):
        raise _err(path, "file", "an MPII json must be a list of person entries")
    n = len(data)
    joints = np.zeros((n, MPII_NUM_JOINTS, 2))
    visible = np.zeros((n, MPII_NUM_JOINTS), dtype=bool)
    problems: list[DataProblem] = []
    for i, p in enumerate(data):
        rec = f"person {i} (image {p.get('image', '?')})" if isinstance(p, dict) else f"person {i}"
        if not isinstance(p, dict) or "joints" not in p:
            problems.append(DataProblem(str(path), rec, "entry without 'joints'", "missing_field"))
            continue
        bad = number_problem(p["joints"], "joints", finite=False) or \
            number_problem(p.get("joints_vis", []), "joints_vis")
        if bad:
            problems.append(DataProblem(str(path), rec, bad, "bad_value"))
            continue
        try:
            j = np.asarray(p["joints"], dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(DataProblem(str(path), rec, "joints are not a 16 x 2 list of numbers", "bad_value"))
            continue
        if j.shape != (MPII_NUM_JOINTS, 2):
            problems.append(DataProblem(str(path), rec, f"joints shape {j.shape}, expected (16, 2)", "keypoint_count"))
            continue
        vis = np.asarray(p.get("joints_vis", [1] * MPII_NUM_JOINTS), dtype=np.float64).reshape(-1)
        if vis.shape != (MPII_NUM_JOINTS,):
            problems.append(DataProblem(str(path), rec, f"joints_vis has {vis.size} entries, expected 16",
                                        "keypoint_count"))
            continue
        v = vis > 0
        if not np.isfinite(j[v]).all():
            problems.append(DataProblem(str(path), rec, "an annotated joint has a NaN/inf position", "non_finite"))
            continue
        joints[i], visible[i] = j, v
    if problems:
        raise _problems(problems)
    head_sizes = np.full(n, np.nan)
    if headboxes is not None:
        hb = _load_gt_mat(headboxes, "head-box")
        if hb.num_persons != n:
            raise _err(headboxes, "headboxes_src",
                       f"{hb.num_persons} head boxes but {n} persons in {path}; the files must list the same persons",
                       "shape")
        head_sizes = hb.head_sizes
    return MPIIEvalGT(joints, visible, head_sizes, str(path))


#: ``layout`` values of :func:`load_mpii_preds`: how a 3-d ``preds`` array is ordered
MPII_PRED_LAYOUTS = ("auto", "Nx16x2", "2x16xN")


def _mpii_preds_array(arr: np.ndarray, path: Path, num_persons: int | None, layout: str = "auto") -> np.ndarray:
    """``preds`` as stored -> ``(N, 16, 2)``. ``(N, 16, 2|3)`` (person first, optional score column) or
    ``(2, 16, N)`` (MATLAB order); with ``layout="auto"`` the GT's person count decides, and a shape that fits both
    with that count (``(2, 16, 2)`` against a 2-person GT, or any fit without a count) is refused as ambiguous."""
    if layout not in MPII_PRED_LAYOUTS:
        raise ValueError(f"layout must be one of {MPII_PRED_LAYOUTS}, got {layout!r}")
    a = np.asarray(arr)
    if a.dtype.kind not in "iuf":
        what = {"b": "booleans", "U": "strings", "S": "strings", "O": "objects"}.get(a.dtype.kind, str(a.dtype))
        raise _err(path, "preds", f"holds {what}, expected numbers", "bad_value")
    a = a.astype(np.float64)
    person_first = a.ndim == 3 and a.shape[1] == MPII_NUM_JOINTS and a.shape[2] in (2, 3)
    matlab_order = a.ndim == 3 and a.shape[0] == 2 and a.shape[1] == MPII_NUM_JOINTS
    if not (person_first or matlab_order):
        raise _err(path, "preds", f"shape {a.shape}, expected (N, 16, 2) or (2, 16, N)", "shape")
    if layout == "auto":
        fits = {"Nx16x2": person_first, "2x16xN": matlab_order}
        if num_persons is not None:
            fits["Nx16x2"] = person_first and a.shape[0] == num_persons
            fits["2x16xN"] = matlab_order and a.shape[2] == num_persons
        chosen = [k for k, ok in fits.items() if ok]
        if len(chosen) == 2 and num_persons is None:
            # no count to decide with (library use): (2, 16, 2) -> N = 2 persons, (2, 16, 3) -> (2, 16, N = 3)
            chosen = ["Nx16x2" if a.shape[2] == 2 else "2x16xN"]
        if len(chosen) == 2:
            raise _err(path, "preds", f"shape {a.shape} is ambiguous ((N, 16, 2) and (2, 16, N) both fit the GT's "
                       f"N = {num_persons}): pass --preds-layout Nx16x2 or 2x16xN", "shape")
        if not chosen:
            n = a.shape[0] if person_first else a.shape[2]
            raise _err(path, "preds", f"{n} persons predicted but the GT has {num_persons}", "shape")
        layout = chosen[0]
    elif (layout == "Nx16x2" and not person_first) or (layout == "2x16xN" and not matlab_order):
        raise _err(path, "preds", f"shape {a.shape} does not fit the layout {layout}", "shape")
    out = a[..., :2] if layout == "Nx16x2" else np.transpose(a, (2, 1, 0))
    if num_persons is not None and out.shape[0] != num_persons:
        raise _err(path, "preds", f"{out.shape[0]} persons predicted but the GT has {num_persons}", "shape")
    return np.ascontiguousarray(out)


def load_mpii_preds(path: str | Path, num_persons: int | None = None, zero_based: bool = False,
                    layout: str = "auto") -> np.ndarray:
    """Load MPII predictions ordered like the GT persons.

    Formats: ``.mat`` or ``.h5``/``.hdf5`` with a ``preds`` variable of shape (N, 16, 2|3) or (2, 16, N);
    ``.json``: a list of 16 x 2 (or 16 x 3) lists of numbers, or ``{"preds": ...}``.

    Args:
        num_persons: expected N (the GT count): decides between (N, 16, 2|3) and (2, 16, N); a mismatch raises.
        zero_based: the file holds 0-based pixels; 1 is added so the result is 1-based like the MPII GT.
        layout: ``"auto"`` (decide by ``num_persons``; refuse what stays ambiguous, e.g. (2, 16, 2) against a
            2-person GT), ``"Nx16x2"`` or ``"2x16xN"``.

    Returns:
        ``(N, 16, 2)`` float64 predictions in 1-based pixels. NaN entries are kept (they count as wrong).

    Raises:
        DatasetError: missing, empty, garbage or unreadable file; no ``preds``; ``preds`` not a numeric array
            (strings, booleans, an HDF5 group); wrong or ambiguous shape; person count mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise _err(path, "file", "file not found", "missing_file")
    if path.stat().st_size == 0:
        raise _err(path, "file", "empty file (0 bytes), expected MPII predictions", "unreadable")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        import scipy.io
        from scipy.io.matlab import MatReadError

        try:
            m = scipy.io.loadmat(str(path))
            arr = m.get("preds")
        except NotImplementedError:
            arr = _h5_preds(path)
        except (MatReadError, ValueError, OSError, TypeError, KeyError, IndexError) as e:
            raise _err(path, "file", f"not a readable MATLAB .mat file ({type(e).__name__}: {e})",
                       "unreadable") from None
        if arr is None:
            raise _err(path, "preds", "no variable 'preds' in the file", "missing_field")
    elif suffix in (".h5", ".hdf5"):
        arr = _h5_preds(path)
    elif suffix == ".json":
        data = load_json(path)
        if isinstance(data, dict):
            if "preds" not in data:
                raise _err(path, "preds", "json object without 'preds'", "missing_field")
            data = data["preds"]
        bad = number_problem(data, "preds", finite=False)
        if bad:
            raise _err(path, "preds", bad, "bad_value")
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise _err(path, "preds", f"not a rectangular list of numbers ({e})", "shape") from None
        if layout == "auto" and arr.ndim == 3 and arr.shape[1:] in ((16, 2), (16, 3)):
            layout = "Nx16x2"  # a json list of 16 x 2 lists is a list of persons: no ambiguity
    else:
        raise _err(path, "file", f"unknown prediction file type {suffix!r} (use .mat, .h5 or .json)", "bad_value")
    out = _mpii_preds_array(arr, path, num_persons, layout)
    return out + 1.0 if zero_based else out


def _is_v73(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"MATLAB 7.3" in f.read(128)


def _h5_preds(path: Path) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "preds" not in f:
                raise _err(path, "preds", f"no dataset 'preds' (found: {sorted(f.keys())})", "missing_field")
            node = f["preds"]
            if not isinstance(node, h5py.Dataset):
                raise _err(path, "preds", f"'preds' is an HDF5 {type(node).__name__.lower()}, expected a dataset "
                           "(array)", "bad_value")
            arr = np.asarray(node[()])
    except OSError as e:
        raise _err(path, "file", f"not a readable HDF5 file ({e})", "unreadable") from None
    if _is_v73(path):  # MATLAB v7.3 stores arrays transposed
        arr = np.transpose(arr)
    return arr


def write_mpii_preds(path: str | Path, preds: np.ndarray, one_based: bool = True) -> None:
    """Write MPII predictions ``(N, 16, 2)`` (rows in GT/``source_index`` order) as ``.mat``, ``.h5`` or ``.json``.

    Args:
        preds: ``(N, 16, 2)`` pixels. With ``one_based=True`` (default) they must already be 1-based (the native
            MPII convention, e.g. package 0-based coordinates + 1); they are written unchanged either way and
            ``one_based`` is recorded in ``.h5``/``.json`` as an attribute for the reader's information.
    """
    path = Path(path)
    arr = np.asarray(preds, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (MPII_NUM_JOINTS, 2):
        raise ValueError(f"write_mpii_preds: preds must be (N, 16, 2), got {arr.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix not in (".mat", ".h5", ".hdf5", ".json"):
        raise ValueError(f"write_mpii_preds: unknown file type {suffix!r} (use .mat, .h5 or .json)")
    with atomic_path(path) as tmp:
        if suffix == ".mat":
            import scipy.io

            scipy.io.savemat(str(tmp), {"preds": arr})
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(tmp, "w") as f:
                f.create_dataset("preds", data=arr)
                f.attrs["one_based"] = bool(one_based)
        else:
            tmp.write_text(json.dumps([[[float(x), float(y)] for x, y in p] for p in arr]), encoding="utf-8")


# ----------------------------------------------------------------------------------------------- AIC


def load_aic_release(path: str | Path, kind: str = "gt", known_image_ids: set | None = None) -> list[dict]:
    """Load and validate an AI Challenger release-format file.

    GT (``kind="gt"``): list of ``{image_id, human_annotations: {humanN: [x1, y1, x2, y2]},
    keypoint_annotations: {humanN: [x, y, v] * 14}}`` with v in {1 visible, 2 occluded, 3 unlabelled}; every
    human needs both a box and 42 finite keypoint values.
    Predictions (``kind="pred"``): list of ``{image_id, keypoint_annotations: {humanK: [x, y, s] * 14}}``;
    ``known_image_ids`` (the GT ids) rejects unknown images. Image ids must not carry a file extension.
    """
    if kind not in ("gt", "pred"):
        raise ValueError(f"load_aic_release: kind must be 'gt' or 'pred', got {kind!r}")
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list):
        raise _err(path, "file", "an AI Challenger file must be a json list of image entries")
    problems: list[DataProblem] = []
    for i, e in enumerate(data):
        if not isinstance(e, dict) or "image_id" not in e or "keypoint_annotations" not in e:
            problems.append(DataProblem(str(path), f"entry {i}", "needs image_id and keypoint_annotations",
                                        "missing_field"))
            continue
        img = e["image_id"]
        if not isinstance(img, str):
            problems.append(DataProblem(str(path), f"entry {i}", f"image_id is {_kind_of(img)}, expected a string "
                                        "(the image name without extension)", "bad_value"))
            continue
        if "." in img:
            problems.append(DataProblem(str(path), f"entry {i}", f"image_id {img!r} must be a name without extension",
                                        "bad_value"))
            continue
        if known_image_ids is not None and img not in known_image_ids:
            problems.append(DataProblem(str(path), f"image {img}", "unknown image id (not in the GT)", "unknown_image"))
        kps = e["keypoint_annotations"]
        if not isinstance(kps, dict):
            problems.append(DataProblem(str(path), f"image {img}", "keypoint_annotations is not an object",
                                        "bad_value"))
            continue
        boxes = e.get("human_annotations", {}) if kind == "gt" else {}
        for name, kp in kps.items():
            rec = f"{name} (image {img})"
            if not isinstance(kp, list) or len(kp) != 3 * AIC_NUM_KEYPOINTS:
                n = len(kp) if isinstance(kp, list) else "no"
                problems.append(DataProblem(str(path), rec, f"{n} keypoint values, expected 42 (14 x 3)",
                                            "keypoint_count"))
                continue
            bad = number_problem(kp, "keypoints")
            if bad:
                problems.append(DataProblem(str(path), rec, bad, "non_finite" if "NaN" in bad else "bad_value"))
                continue
            if kind == "gt":
                v = np.asarray(kp[2::3], dtype=np.float64)
                if not np.isin(v, (1, 2, 3)).all():
                    problems.append(DataProblem(str(path), rec, f"visibility codes {sorted(set(v.tolist()))}, "
                                                "expected 1/2/3", "bad_value"))
                box = boxes.get(name) if isinstance(boxes, dict) else None
                if not isinstance(box, list) or len(box) != 4 or not _finite_numbers(box):
                    problems.append(DataProblem(str(path), rec, f"human_annotations box must be 4 finite numbers, "
                                                f"got {box!r}", "bad_value"))
    if problems:
        raise _problems(problems)
    return data


def split_known_images(entries: Sequence[dict], known: set, key: str = "image_id") -> tuple[list[dict], list]:
    """``(kept, ignored_ids)``: the entries whose ``key`` is in ``known``, and the distinct ids that are not
    (first-seen order). The official AI Challenger evaluator ignores predictions for images outside the GT."""
    kept, ignored, seen = [], [], set()
    for e in entries:
        if e[key] in known:
            kept.append(e)
        elif e[key] not in seen:
            seen.add(e[key])
            ignored.append(e[key])
    return kept, ignored


def aic_release_preds(per_image: dict[str, np.ndarray], scores: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Build AI Challenger release predictions.

    Args:
        per_image: image id (no extension) -> ``(P, 14, 2)`` predicted keypoints, 0-based image pixels.
        scores: optional image id -> ``(P, 14)`` keypoint scores (written as the third value; 1 otherwise).

    Returns:
        ``[{image_id, keypoint_annotations: {"human1": [x, y, s] * 14, ...}}]`` in sorted image-id order.
    """
    out = []
    for img in sorted(per_image):
        kp = np.asarray(per_image[img], dtype=np.float64).reshape(-1, AIC_NUM_KEYPOINTS, 2)
        sc = np.ones(kp.shape[:2]) if scores is None or img not in scores else \
            np.asarray(scores[img], dtype=np.float64).reshape(kp.shape[:2])
        anns = {}
        for j in range(kp.shape[0]):
            trip = np.concatenate([kp[j], sc[j][:, None]], axis=1).reshape(-1)
            anns[f"human{j + 1}"] = [float(v) for v in trip]
        out.append({"image_id": str(img), "keypoint_annotations": anns})
    return out


def write_aic_preds(path: str | Path, preds: Sequence[dict]) -> None:
    """Write AI Challenger release predictions (see :func:`aic_release_preds`) as json."""
    for i, e in enumerate(preds):
        if "image_id" not in e or "keypoint_annotations" not in e:
            raise ValueError(f"write_aic_preds: entry {i} needs image_id and keypoint_annotations")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(list(preds)))



def aic_release_to_coco(gt_release: Sequence[dict]) -> dict:
    """Convert AI Challenger release GT to the COCO-style layout most toolboxes use (mmpose's conversion).

    Images are numbered 1.. in file order with ``file_name = image_id + ".jpg"``; annotations 1.. in order.
    bbox ``[x1, y1, x2 - x1, y2 - y1]``; visibility remapped 1 -> 2 (visible), 2 -> 1 (occluded),
    3 -> 0 (unlabelled, coordinates set to 0); ``num_keypoints = #(v > 0)``; ``area = w * h`` (only used when
    ``use_area=True``; the AIC COCO-style protocol uses ``0.53 * w * h`` instead); ``iscrowd = 0``.
    """
    from lightning_pose.skeletons import AIC

    images, anns = [], []
    remap = {1: 2, 2: 1, 3: 0}
    for i, e in enumerate(gt_release):
        img_id = i + 1
        images.append({"id": img_id, "file_name": f"{e['image_id']}.jpg", "width": 0, "height": 0})
        boxes = e.get("human_annotations", {})
        for name in sorted(e["keypoint_annotations"], key=_human_order):
            kp = np.asarray(e["keypoint_annotations"][name], dtype=np.float64).reshape(AIC_NUM_KEYPOINTS, 3)
            v = np.array([remap.get(int(c), 0) for c in kp[:, 2]], dtype=np.float64)
            xy = np.where(v[:, None] > 0, kp[:, :2], 0.0)
            x1, y1, x2, y2 = (float(c) for c in boxes[name])
            anns.append({
                "id": len(anns) + 1, "image_id": img_id, "category_id": 1,
                "keypoints": [float(c) for c in np.concatenate([xy, v[:, None]], axis=1).reshape(-1)],
                "num_keypoints": int((v > 0).sum()), "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
            })
    cat = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(AIC.keypoints),
           "skeleton": [[a + 1, b + 1] for a, b in AIC.skeleton]}
    return {"images": images, "annotations": anns, "categories": [cat]}


def _human_order(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def coco_image_names(gt: dict) -> dict[int, str]:
    """COCO image id -> file name stem (the AI Challenger ``image_id``) from a COCO-style GT dict."""
    return {img["id"]: Path(str(img.get("file_name", img["id"]))).stem for img in gt["images"]}


def coco_results_to_aic_release(results: Sequence[dict], gt: dict) -> list[dict]:
    """COCO keypoint results (0-based pixels, AIC order) -> AI Challenger release predictions.

    Image ids are mapped to names through the GT's ``file_name`` stems; within an image the detections are
    numbered ``human1..`` by decreasing score. The keypoint score triples are kept as the third values.
    """
    names = coco_image_names(gt)
    per_image: dict[str, list[dict]] = {}
    for r in results:
        if r["image_id"] not in names:
            raise ValueError(f"coco_results_to_aic_release: image id {r['image_id']!r} not in the GT")
        per_image.setdefault(names[r["image_id"]], []).append(r)
    kp, sc = {}, {}
    for name, rs in per_image.items():
        rs = sorted(rs, key=lambda r: -float(r["score"]))
        arr = np.asarray([r["keypoints"] for r in rs], dtype=np.float64).reshape(len(rs), AIC_NUM_KEYPOINTS, 3)
        kp[name], sc[name] = arr[..., :2], arr[..., 2]
    return aic_release_preds(kp, sc)


def aic_release_preds_to_coco(preds: Sequence[dict], gt: dict) -> list[dict]:
    """AI Challenger release predictions -> COCO results for a COCO-style AIC GT.

    The release format has no instance score: each detection gets ``score`` = mean of its 14 third values
    (1.0 when those are all 1). Unknown image names raise ``ValueError``.
    """
    ids = {name: i for i, name in coco_image_names(gt).items()}
    out = []
    for e in preds:
        if e["image_id"] not in ids:
            raise ValueError(f"aic_release_preds_to_coco: image {e['image_id']!r} not in the GT")
        for name in sorted(e["keypoint_annotations"], key=_human_order):
            kp = np.asarray(e["keypoint_annotations"][name], dtype=np.float64).reshape(AIC_NUM_KEYPOINTS, 3)
            out.append({"image_id": ids[e["image_id"]], "category_id": 1,
                        "keypoints": [float(c) for c in kp.reshape(-1)], "score": float(kp[:, 2].mean())})
    return out


__all__ += ["aic_release_to_coco", "coco_image_names", "coco_results_to_aic_release", "aic_release_preds_to_coco",
            "split_known_images", "number_problem", "id_problem", "MPII_PRED_LAYOUTS"]

"""MPII files: GT (``gt_valid.mat`` layout or the json conversion) and prediction loaders, the prediction writer.
Torch-free (numpy / scipy / h5py).

MPII GT (``.mat`` and the widely used json) is MATLAB **1-based**; loaders here keep it 1-based so that it can be
compared with 1-based prediction files (the native MPII convention, e.g. HRNet's ``pred.mat``).
:func:`write_mpii_preds` therefore expects 1-based predictions (add 1 to the package's 0-based coordinates;
``one_based=False`` writes values unchanged). Writers are atomic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_pose.data.readers.mpii_mat import load_mpii_gt_mat
from lightning_pose.errors import DataProblem, DatasetError
from lightning_pose.evaluation.formats.common import _err, _problems, load_json, number_problem
from lightning_pose.outputs import atomic_path

__all__ = ["MPII_NUM_JOINTS", "MPII_PRED_LAYOUTS", "MPIIEvalGT", "load_mpii_gt", "load_mpii_preds", "write_mpii_preds"]

MPII_NUM_JOINTS = 16


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
        raise _err(
            path, "file", f"not a readable MATLAB .mat {role} file ({type(e).__name__}: {e})", "unreadable"
        ) from None


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
        bad = number_problem(p["joints"], "joints", finite=False) or number_problem(
            p.get("joints_vis", []), "joints_vis"
        )
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
            problems.append(
                DataProblem(str(path), rec, f"joints_vis has {vis.size} entries, expected 16", "keypoint_count")
            )
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
            raise _err(
                headboxes,
                "headboxes_src",
                f"{hb.num_persons} head boxes but {n} persons in {path}; the files must list the same persons",
                "shape",
            )
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
            raise _err(
                path,
                "preds",
                f"shape {a.shape} is ambiguous ((N, 16, 2) and (2, 16, N) both fit the GT's "
                f"N = {num_persons}): pass --preds-layout Nx16x2 or 2x16xN",
                "shape",
            )
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


def load_mpii_preds(
    path: str | Path, num_persons: int | None = None, zero_based: bool = False, layout: str = "auto"
) -> np.ndarray:
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
            raise _err(
                path, "file", f"not a readable MATLAB .mat file ({type(e).__name__}: {e})", "unreadable"
            ) from None
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
                raise _err(
                    path,
                    "preds",
                    f"'preds' is an HDF5 {type(node).__name__.lower()}, expected a dataset (array)",
                    "bad_value",
                )
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

"""Reader for the MPII ground-truth ``.mat`` used by the standard PCKh evaluation (``gt_valid.mat`` /
``mpii_gt_val.mat``).

The file holds, for N persons in the order of the validation list:

* ``dataset_joints``: 1 x 16 cell of joint short names (``rank``, ``rkne``, ..., ``lwri``),
* ``jnt_missing``: 16 x N, 1 where the joint is not annotated,
* ``pos_gt_src``: 16 x 2 x N joint positions ``(x, y)`` in **MATLAB 1-based pixels** of the original image,
* ``headboxes_src``: 2 x 2 x N head rectangles ``[corner (top-left, bottom-right), (x, y), person]``,
  also 1-based pixels.

Values are returned unchanged (1-based); the package's MPII reader shifts them by -1 into the 0-based image
frame. Only numpy, scipy and h5py are imported (no torch). MATLAB v7.3 (HDF5) files are read with h5py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightning_pose.data.records import DataProblem, DatasetError

__all__ = ["MPIIGroundTruth", "load_mpii_gt_mat", "MPII_MAT_JOINTS", "HEAD_SIZE_FACTOR"]

#: the joint short names of ``dataset_joints`` in the standard files (MPII joint ids 0..15)
MPII_MAT_JOINTS: tuple[str, ...] = (
    "rank",
    "rkne",
    "rhip",
    "lhip",
    "lkne",
    "lank",
    "pelv",
    "thor",
    "neck",
    "head",
    "rwri",
    "relb",
    "rsho",
    "lsho",
    "lelb",
    "lwri",
)

#: official MPII head-size factor (``SC_BIAS = 0.6`` in the MATLAB toolkit)
HEAD_SIZE_FACTOR = 0.6


@dataclass
class MPIIGroundTruth:
    """Contents of an MPII ground-truth ``.mat``.

    Attributes:
        dataset_joints: the 16 joint short names in channel order.
        jnt_missing: ``(16, N)`` bool, True where the joint is not annotated.
        pos_gt_src: ``(16, 2, N)`` float64 joint ``(x, y)`` in 1-based image pixels (meaningless where missing).
        headboxes_src: ``(2, 2, N)`` float64 ``[corner, xy, person]`` head rectangles, 1-based pixels. A head box
            that is entirely zero (or NaN) means "no head box" for that person.
        path: the file this was read from (for error messages).
    """

    dataset_joints: list[str]
    jnt_missing: np.ndarray
    pos_gt_src: np.ndarray
    headboxes_src: np.ndarray
    path: str = ""

    @property
    def num_persons(self) -> int:
        return int(self.jnt_missing.shape[1])

    @property
    def head_sizes(self) -> np.ndarray:
        """``(N,)`` float64 head sizes in pixels: ``0.6 * ||(x2, y2) - (x1, y1)||`` of the head box.

        NaN where the person has no head box (all-zero or non-finite box, or zero diagonal).
        """
        diag = np.linalg.norm(self.headboxes_src[1] - self.headboxes_src[0], axis=0)
        sizes = HEAD_SIZE_FACTOR * diag
        return np.where(self.has_head_box, sizes, np.nan)

    @property
    def has_head_box(self) -> np.ndarray:
        """``(N,)`` bool: the person has a usable head box (finite, not all zero, non-zero diagonal)."""
        hb = self.headboxes_src
        finite = np.isfinite(hb).all(axis=(0, 1))
        with np.errstate(invalid="ignore"):
            diag = np.linalg.norm(hb[1] - hb[0], axis=0)
            return finite & (diag > 0)

    def joints_zero_based(self) -> np.ndarray:
        """``(N, 16, 2)`` float64 joints in the package's 0-based image frame (NaN where missing)."""
        pos = np.transpose(self.pos_gt_src, (2, 0, 1)) - 1.0
        pos = pos.copy()
        pos[self.jnt_missing.T] = np.nan
        return pos

    def head_boxes_zero_based(self) -> np.ndarray:
        """``(N, 2, 2)`` float64 ``[[x1, y1], [x2, y2]]`` head boxes in the 0-based image frame."""
        return np.transpose(self.headboxes_src, (2, 0, 1)) - 1.0


def _fail(path: Path | str, record: str, problem: str, kind: str = "bad_value") -> DatasetError:
    return DatasetError(DataProblem(str(path), record, problem, kind))


def _read_raw(path: Path) -> dict:
    """Read the four arrays as numpy; v7.3 files (HDF5) are transposed back to MATLAB order."""
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path))
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        return _read_raw_hdf5(path)
    except (ValueError, OSError, TypeError) as e:
        raise _fail(path, "file", f"not a readable MATLAB .mat file ({e})", "unreadable") from e
    return {k: v for k, v in m.items() if not k.startswith("__")}


def _read_raw_hdf5(path: Path) -> dict:
    import h5py

    out: dict = {}
    with h5py.File(path, "r") as f:
        for key in ("jnt_missing", "pos_gt_src", "headboxes_src"):
            if key in f:
                out[key] = np.asarray(f[key][()]).T  # h5py gives the reversed (C) order of MATLAB dims
        if "dataset_joints" in f:
            names = []
            refs = np.asarray(f["dataset_joints"][()]).ravel()
            for ref in refs:
                chars = np.asarray(f[ref][()]).ravel()
                names.append("".join(chr(int(c)) for c in chars))
            out["dataset_joints"] = np.array(names, dtype=object)
    return out


def _joint_names(raw: object, path: Path) -> list[str]:
    arr = np.asarray(raw, dtype=object).ravel()
    names: list[str] = []
    for item in arr:
        while isinstance(item, np.ndarray):
            if item.size != 1:
                break
            item = item.ravel()[0]
        if isinstance(item, np.ndarray):  # char array of several characters
            item = "".join(str(c) for c in item.ravel())
        names.append(str(item).strip())
    if len(names) != 16:
        raise _fail(path, "dataset_joints", f"expected 16 joint names, found {len(names)}", "keypoint_count")
    return names


def load_mpii_gt_mat(path: str | Path) -> MPIIGroundTruth:
    """Load and validate an MPII ground-truth ``.mat`` (``gt_valid.mat`` / ``mpii_gt_val.mat`` layout).

    Args:
        path: the ``.mat`` file (MATLAB v5 or v7.3).

    Returns:
        :class:`MPIIGroundTruth` with 1-based pixel coordinates, exactly as stored.

    Raises:
        DatasetError: the file is missing/unreadable, a variable is absent, shapes disagree
            (``jnt_missing`` 16xN, ``pos_gt_src`` 16x2xN, ``headboxes_src`` 2x2xN), ``jnt_missing`` holds values
            other than 0/1, or an annotated joint has a non-finite position. The message names the file,
            the variable or person (1-based column) and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file", "file not found", "missing_file")
    raw = _read_raw(path)
    for key in ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src"):
        if key not in raw:
            raise _fail(path, key, f"variable {key!r} missing (found: {sorted(raw)})", "missing_field")

    names = _joint_names(raw["dataset_joints"], path)
    try:
        missing_raw = np.asarray(raw["jnt_missing"], dtype=np.float64)
        pos = np.asarray(raw["pos_gt_src"], dtype=np.float64)
        hb = np.asarray(raw["headboxes_src"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise _fail(path, "arrays", f"non-numeric ground-truth arrays ({e})") from e

    if missing_raw.ndim == 1 and missing_raw.shape[0] == 16:  # a single person saved as a 16-vector
        missing_raw = missing_raw[:, None]
    if missing_raw.ndim != 2 or missing_raw.shape[0] != 16:
        raise _fail(path, "jnt_missing", f"shape {missing_raw.shape}, expected (16, N)", "shape")
    n = missing_raw.shape[1]
    if pos.ndim == 2 and n == 1:
        pos = pos[:, :, None]
    if hb.ndim == 2 and n == 1:
        hb = hb[:, :, None]
    if pos.shape != (16, 2, n):
        raise _fail(path, "pos_gt_src", f"shape {pos.shape}, expected (16, 2, {n}) to match jnt_missing", "shape")
    if hb.shape != (2, 2, n):
        raise _fail(path, "headboxes_src", f"shape {hb.shape}, expected (2, 2, {n}) to match jnt_missing", "shape")
    if not np.isin(missing_raw, (0.0, 1.0)).all():
        bad = np.argwhere(~np.isin(missing_raw, (0.0, 1.0)))[0]
        raise _fail(path, f"person {bad[1] + 1}", f"jnt_missing[{bad[0]}] = {missing_raw[tuple(bad)]!r}, expected 0/1")
    missing = missing_raw.astype(bool)

    bad_pos = ~np.isfinite(pos).all(axis=1) & ~missing  # (16, N)
    if bad_pos.any():
        problems = [
            DataProblem(
                str(path),
                f"person {p + 1}",
                f"joint {j} ({names[j]}) is annotated but has a non-finite position",
                "non_finite",
            )
            for j, p in np.argwhere(bad_pos)
        ]
        raise DatasetError(problems)
    return MPIIGroundTruth(dataset_joints=names, jnt_missing=missing, pos_gt_src=pos, headboxes_src=hb, path=str(path))

"""Readers: annotation files in the formats users download -> ImageRecord lists (torch-free).

All readers return a :class:`ReadResult` whose records use 0-based image pixels and COCO visibility codes
(see ``lightning_pose/data/records.py``). With ``skip_invalid=False`` any problem raises
:class:`~lightning_pose.data.records.DatasetError`; with ``skip_invalid=True`` bad records are dropped, the
problems are kept in ``ReadResult.problems`` and one warning is emitted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from lightning_pose.data.readers.aic import read_aic, read_aic_raw
from lightning_pose.data.readers.coco import read_coco, records_to_coco
from lightning_pose.data.readers.common import ReadResult
from lightning_pose.data.readers.detections import Detection, read_detections
from lightning_pose.data.readers.mpii import read_mpii
from lightning_pose.data.readers.mpii_mat import MPIIGroundTruth, load_mpii_gt_mat

__all__ = [
    "ReadResult",
    "Detection",
    "read_coco",
    "read_mpii",
    "load_mpii_gt_mat",
    "MPIIGroundTruth",
    "read_aic",
    "read_aic_raw",
    "read_detections",
    "records_to_coco",
    "read_dataset",
    "DATASET_FORMATS",
]

#: format name -> reader (``read_dataset`` and ``lightning-pose data check`` accept these names)
DATASET_FORMATS: dict[str, Callable[..., ReadResult]] = {
    "coco": read_coco,
    "mpii": read_mpii,
    "aic": read_aic,
    "aic-raw": read_aic_raw,
}


def read_dataset(fmt: str, ann_file: str | Path, image_dir: str | Path, **kw: Any) -> ReadResult:
    """Read an annotation file with the reader for ``fmt`` (``coco``, ``mpii``, ``aic``, ``aic-raw``).

    Keyword arguments go to the reader (``skip_invalid``, ``check_images``; ``keypoint_set`` for coco;
    ``headbox_file`` for mpii).

    Raises:
        ValueError: unknown format, or a keyword the reader does not take.
        DatasetError: see the readers.
    """
    key = str(fmt).strip().lower().replace("_", "-")
    if key not in DATASET_FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {sorted(DATASET_FORMATS)}")
    reader = DATASET_FORMATS[key]
    try:
        import inspect

        inspect.signature(reader).bind(ann_file, image_dir, **kw)
    except TypeError as e:
        raise ValueError(f"read_dataset({key!r}): {e}") from None
    return reader(ann_file, image_dir, **kw)

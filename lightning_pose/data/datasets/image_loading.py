"""Checks on a decoded image against its record, at load time (the last line of defence: the files were checked
before training by the readers when ``check_images`` is on, but a file may change afterwards, or the check may be
off). Never silent: a mismatch raises a DatasetError naming the file."""

from __future__ import annotations

import numpy as np

from lightning_pose.data.records import DataProblem, DatasetError, ImageRecord

__all__ = ["check_decoded_size"]


def check_decoded_size(image: np.ndarray, record: ImageRecord) -> None:
    """Refuse a decoded image whose size differs from the size the annotation gives (crops would be misplaced).

    Args:
        image: the full-resolution decoded image, ``(H, W, C)``.
        record: its record; ``width``/``height`` in pixels, 0 = unknown (then nothing is compared).

    Raises:
        DatasetError: naming the image file and record; says when the decoder rotated the image (EXIF orientation).
    """
    if not (record.width > 0 and record.height > 0):
        return
    h, w = int(image.shape[0]), int(image.shape[1])
    if (w, h) == (record.width, record.height):
        return
    rotated = (h, w) == (record.width, record.height)
    why = (" (the decoder applied the file's EXIF orientation; re-save the image without it)" if rotated else
           " (the file changed after the check before training, or check_images is off: run "
           "`lightning-pose data check`)")
    raise DatasetError(DataProblem(
        file=str(record.file), record=f"image {record.image_id}",
        problem=f"decoded image is {w}x{h} px but the annotation says {record.width}x{record.height} px{why}",
        kind="size_mismatch"), hint=False)

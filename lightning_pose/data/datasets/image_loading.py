"""Loading the image of a record for the top-down and bottom-up datasets, and the checks on a decoded image against
its record at load time (the last line of defence: the files were checked before training by the readers when
``check_images`` is on, but a file may change afterwards, or the check may be off). Never silent: a mismatch raises a
DatasetError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from lightning_pose.data.records import DataProblem, DatasetError, ImageRecord
from lightning_pose.data.transforms.image_io import DecodeBuffer, read_image

__all__ = ["check_decoded_size", "load_record_image"]


def load_record_image(
    record: ImageRecord,
    image_reader: Callable[[Path], np.ndarray] | None = None,
    buffer: DecodeBuffer | None = None,
) -> tuple[np.ndarray, bool]:
    """Decode the full-resolution image of ``record``: ``(image, is_bgr)``.

    With ``image_reader=None`` the file is decoded by ``cv2.imread`` (``(H, W, 3)`` uint8, RGB when this OpenCV
    decodes to RGB itself, else **BGR** with ``is_bgr`` True: the transforms then convert the small warped output to
    RGB; :func:`~lightning_pose.data.transforms.image_io.read_image`); otherwise ``image_reader(path)`` must return an
    ``(H, W, 3)`` uint8 **RGB** array. Either way the size is checked against the record (:func:`check_decoded_size`).
    A ``buffer`` (default reader, record size known) receives the decode: the image is then overwritten by the next
    decode into that buffer (:class:`~lightning_pose.data.transforms.image_io.DecodeBuffer`).

    Raises:
        DatasetError: naming the file and record (missing / undecodable file, a reader returning something else,
            a size different from the annotation).
    """
    if image_reader is None:
        img, is_bgr = read_image(
            record.file, record=f"image {record.image_id}", buffer=buffer, shape=(record.height, record.width)
        )
        check_decoded_size(img, record)
        return img, is_bgr
    img = image_reader(Path(record.file))
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise DatasetError(
            DataProblem(
                file=str(record.file),
                record=f"image {record.image_id}",
                problem="image_reader must return an (H, W, 3) uint8 RGB array",
                kind="unreadable_image",
            )
        )
    check_decoded_size(img, record)
    return img, False


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
    why = (
        " (the decoder applied the file's EXIF orientation; re-save the image without it)"
        if rotated
        else " (the file changed after the check before training, or check_images is off: run "
        "`lightning-pose data check`)"
    )
    raise DatasetError(
        DataProblem(
            file=str(record.file),
            record=f"image {record.image_id}",
            problem=f"decoded image is {w}x{h} px but the annotation says {record.width}x{record.height} px{why}",
            kind="size_mismatch",
        ),
        hint=False,
    )

"""Checks of image *files* before training (torch-free: PIL headers, raw bytes; cv2 only to confirm a suspicion).

One call, :func:`check_image_file`, answers "can training use this file as the annotation describes it?" without
decoding the pixels of a healthy file:

1. the path exists and is (or is a symlink to) a regular file; a dangling symlink is reported as such (DVC /
   git-annex content not fetched);
2. the header opens with PIL and gives the size (``Image.open(...).size`` reads the header only);
3. the whole file is read once (a few hundred KB, no decode) and its structure checked:

   * JPEG: the end-of-image marker ``FFD9`` is in the last bytes (else the file was cut short: libjpeg would
     print "Premature end of JPEG file" and fill the rest with grey); the compressed data after the first
     start-of-scan marker contains no run of :data:`ZERO_RUN_BYTES` or more zero bytes, unless a full decode
     of the file raises no libjpeg "Corrupt JPEG data" warning (genuinely flat black regions compress to zero
     runs with optimised or progressive Huffman tables; a zeroed block of a file makes the decoder lose sync);
   * PNG: every chunk's CRC matches and the file ends with ``IEND``;

4. the header size equals the annotation's ``width`` x ``height`` (when the annotation gives one), else crops
   would be cut at the wrong place.

Sizes are ``(width, height)`` in pixels of the stored image (EXIF orientation is not applied).
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageCheck", "check_image_file", "truncation_problem", "ZERO_RUN_BYTES", "END_MARKER_WINDOW"]

#: how many bytes at the end of a JPEG/PNG are searched for its end marker (tolerates trailing padding)
END_MARKER_WINDOW = 4096
#: a run of at least this many zero bytes inside JPEG compressed data makes the file suspect (real entropy-coded
#: data of textured images has runs of a few bytes; see the module docstring for how a suspicion is confirmed)
ZERO_RUN_BYTES = 64

_JPEG_FORMATS = ("JPEG", "MPO")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageCheck:
    """Result of :func:`check_image_file`.

    Attributes:
        size: ``(width, height)`` in pixels from the header, or ``None`` when the header could not be read.
        problem: what is wrong, in words a user can act on (``None`` when the file is fine).
        kind: ``missing_image``, ``unreadable_image`` or ``size_mismatch`` (``None`` when fine).
    """

    size: tuple[int, int] | None
    problem: str | None = None
    kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _missing(path: Path) -> ImageCheck:
    if path.is_symlink():
        target = os.readlink(path)
        if not path.exists():
            return ImageCheck(
                None,
                f"image is a symlink to {target}, which does not exist (DVC / git-annex content "
                "not fetched? run `dvc pull` or `git annex get`)",
                "missing_image",
            )
        return ImageCheck(None, f"image is a symlink to {target}, which is not a regular file", "missing_image")
    if path.exists():
        return ImageCheck(None, "image path is not a regular file", "missing_image")
    return ImageCheck(None, "image file not found", "missing_image")


def truncation_problem(data: bytes, fmt: str | None) -> str | None:
    """The end-marker check on a file's bytes (or only its last :data:`END_MARKER_WINDOW` bytes).

    Args:
        data: the file content, or its tail.
        fmt: PIL format name (``JPEG``, ``MPO``, ``PNG``); other formats are not checked.

    Returns:
        a message when a JPEG/PNG lacks its end marker (``FFD9`` / ``IEND``), else ``None``.
    """
    marker = b"\xff\xd9" if fmt in _JPEG_FORMATS else b"IEND" if fmt == "PNG" else None
    if marker is None or marker in data[-END_MARKER_WINDOW:]:
        return None
    return f"{fmt} file ends without its end marker {marker!r} (truncated download or copy?); re-download or remove it"


def _jpeg_scan_start(data: bytes) -> int | None:
    """Offset just after the first start-of-scan (SOS, ``FFDA``) segment header, or ``None`` if not found."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # SOI, TEM, RSTn: no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker == 0xDA:
            return i + 2 + length
        i += 2 + length
    return None


def _libjpeg_warnings(data: bytes) -> str:
    """Decode ``data`` with OpenCV's libjpeg and return what libjpeg printed on stderr (its warnings).

    libjpeg reports recoverable corruption ("Corrupt JPEG data: ...") only as text on file descriptor 2, so the
    descriptor is redirected to a temporary file for the duration of the decode (main-process use only).
    """
    import cv2
    import numpy as np

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            finally:
                os.dup2(saved, 2)
            tmp.seek(0)
            lines = tmp.read().decode("utf-8", "replace").splitlines()
    finally:
        os.close(saved)
    # keep libjpeg's own messages; anything another thread printed meanwhile goes back to stderr
    ours = [ln for ln in lines if "JPEG" in ln or "jpeg" in ln]
    others = [ln for ln in lines if ln not in ours]
    if others:
        print("\n".join(others), file=sys.stderr)
    if img is None and not ours:
        ours = ["OpenCV could not decode the image"]
    return "\n".join(ours)


def _jpeg_problem(data: bytes) -> str | None:
    start = _jpeg_scan_start(data)
    if start is None:
        return "JPEG file has no start-of-scan marker (no image data)"
    run = data.find(b"\x00" * ZERO_RUN_BYTES, start)
    if run < 0:
        return None
    warning = _libjpeg_warnings(data)
    if not warning:
        return None  # a flat region, decoded cleanly
    end = run
    while end < len(data) and data[end] == 0:
        end += 1
    first = warning.splitlines()[0]
    return (
        f"JPEG data contains runs of zero bytes (the first: {end - run} bytes at offset {run}) and libjpeg "
        f"reports {first!r} (corrupted or partly written file); re-download or remove it"
    )


def _png_problem(data: bytes) -> str | None:
    if not data.startswith(_PNG_SIGNATURE):
        return "PNG signature missing"
    i, n = len(_PNG_SIGNATURE), len(data)
    while i + 12 <= n:
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        end = i + 8 + length
        if end + 4 > n:
            break
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[i + 4 : end]) != crc:
            return (
                f"PNG chunk {kind.decode('latin-1')!r} at offset {i} fails its CRC check (corrupted file); "
                "re-download or remove it"
            )
        if kind == b"IEND":
            return None
        i = end + 4
    return "PNG file ends before its IEND chunk (truncated download or copy?); re-download or remove it"


def check_image_file(path: str | Path, width: int = 0, height: int = 0) -> ImageCheck:
    """Check one image file as training will use it (see the module docstring; pixels of a healthy file are not
    decoded).

    Args:
        path: the image file (symlinks are followed: a symlink to a regular file is fine wherever it points).
        width, height: the size in pixels the annotation states; 0 = not given (not compared).

    Returns:
        :class:`ImageCheck` with the header size and, when something is wrong, the problem and its kind.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        return _missing(path)
    try:
        with Image.open(path) as im:
            size = (int(im.size[0]), int(im.size[1]))
            fmt = im.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return ImageCheck(None, f"image header unreadable ({type(e).__name__}: {e})", "unreadable_image")
    try:
        data = path.read_bytes()
    except OSError as e:
        return ImageCheck(size, f"cannot read the image file ({e})", "unreadable_image")
    problem = truncation_problem(data, fmt)
    if problem is None and fmt in _JPEG_FORMATS:
        problem = _jpeg_problem(data)
    elif problem is None and fmt == "PNG":
        problem = _png_problem(data)
    if problem is not None:
        return ImageCheck(size, problem, "unreadable_image")
    if (width and size[0] != width) or (height and size[1] != height):
        return ImageCheck(
            size,
            f"image is {size[0]}x{size[1]} px but the annotation says {width}x{height} px "
            "(crops would be cut at the wrong place)",
            "size_mismatch",
        )
    return ImageCheck(size)

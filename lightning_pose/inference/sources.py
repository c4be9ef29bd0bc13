"""What ``predict --source`` reads: an image file, a folder of images, a glob pattern, or a video file (cv2).

Frames are yielded one at a time as :class:`Frame` (RGB uint8, or ``image=None`` with the reason when the file or
frame cannot be decoded: the caller reports it by name and counts it, nothing is dropped silently).
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from lightning_pose.errors import PoseUserError

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Frame", "Source", "SourceError", "resolve_source"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class SourceError(PoseUserError, ValueError):
    """A ``--source`` that names nothing readable."""


@dataclass
class Frame:
    """One image to run on.

    Attributes:
        index: 0-based position in the source (image order, or frame number of a video).
        name: file name relative to the source folder (images) or ``<video>#<frame>`` (video frames).
        path: the file it comes from.
        image: ``(H, W, 3)`` uint8 RGB, or ``None`` when it could not be decoded.
        error: why ``image`` is ``None``.
    """

    index: int
    name: str
    path: Path
    image: np.ndarray | None
    error: str = ""


@dataclass
class Source:
    """A resolved ``--source``: ``kind`` is ``"images"`` (``paths`` in order) or ``"video"`` (one path)."""

    spec: str
    kind: str
    paths: list[Path]
    root: Path

    def __len__(self) -> int:
        """Number of images, or the video's frame count as reported by its container (0 when unknown)."""
        if self.kind == "images":
            return len(self.paths)
        import cv2

        cap = cv2.VideoCapture(str(self.paths[0]))
        try:
            return max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        finally:
            cap.release()

    def fps(self) -> float:
        """Frames per second of a video (25 when the container does not say)."""
        import cv2

        cap = cv2.VideoCapture(str(self.paths[0]))
        try:
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        return fps if np.isfinite(fps) and fps > 0 else 25.0

    def frames(self) -> Iterator[Frame]:
        return self._image_frames() if self.kind == "images" else self._video_frames()

    def _image_frames(self) -> Iterator[Frame]:
        import cv2

        for i, p in enumerate(self.paths):
            name = _relative_name(p, self.root)
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                reason = "file does not exist" if not p.exists() else "cv2 could not decode the image"
                yield Frame(i, name, p, None, reason)
                continue
            yield Frame(i, name, p, cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

    def _video_frames(self) -> Iterator[Frame]:
        import cv2

        path = self.paths[0]
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise SourceError(f"--source {path}: cv2 cannot open the video (unknown codec or not a video)")
        expected = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        index = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                name = f"{path.name}#{index:06d}"
                if img is None or img.ndim != 3:
                    yield Frame(index, name, path, None, "cv2 returned an empty frame")
                else:
                    yield Frame(index, name, path, cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            cap.release()
        # the container announced more frames than could be decoded: report each missing one by number
        for missing in range(index, expected):
            yield Frame(missing, f"{path.name}#{missing:06d}", path, None, "frame could not be decoded")


def _relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _is_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def resolve_source(spec: str | Path) -> Source:
    """Resolve ``--source``: a video (by extension), an image file, a folder (its image files, sorted, not
    recursive) or a glob pattern (``**`` recurses). Raises one clear line when nothing matches."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            raise SourceError(f"--source {path}: the folder holds no image file ({', '.join(IMAGE_EXTENSIONS)})")
        return Source(text, "images", images, path)
    if path.is_file():
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return Source(text, "video", [path], path.parent)
        return Source(text, "images", [path], path.parent)
    if _is_glob(text):
        matches = sorted(Path(m) for m in globlib.glob(str(path), recursive=True))
        files = [m for m in matches if m.is_file()]
        videos = [m for m in files if m.suffix.lower() in VIDEO_EXTENSIONS]
        images = [m for m in files if m.suffix.lower() in IMAGE_EXTENSIONS]
        if videos:
            raise SourceError(
                f"--source {text}: the pattern matches video file(s) ({videos[0].name}); give one video file at a time"
            )
        if not images:
            raise SourceError(f"--source {text}: the pattern matches no image file")
        return Source(text, "images", images, _glob_root(text))
    raise SourceError(f"--source {text}: no such file or folder")


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard (names in the outputs are relative to it)."""
    parts = Path(pattern).expanduser().parts
    fixed = []
    for part in parts:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")

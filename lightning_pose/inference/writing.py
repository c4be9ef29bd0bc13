"""The files ``predict --source`` writes into ``--out DIR``, atomically and never over an input or an existing file.

* ``predictions.json``: ``{"info", "images", "annotations", "categories"}``. ``images`` lists every image/frame
  read (``id``, ``file_name``, ``width``, ``height``, plus ``frame_index`` for videos); ``annotations`` is the COCO
  keypoint results list (``image_id``, ``category_id`` 1, ``keypoints`` ``[x, y, score] * K`` in 0-based image
  pixels, instance ``score``, person ``bbox`` x, y, w, h, ``box_score``, ``id``), so ``json.load(f)["annotations"]``
  is a valid COCO results file and the whole file loads with pycocotools' ``COCO``.
* ``overlays/<file name>.png`` per image (e.g. ``overlays/img.jpg.png``) (keypoints with score >= the drawing threshold, skeleton, box and instance score),
  or ``<video stem>_pose.mp4`` for a video.

Existing files are refused unless ``overwrite``; an output that would replace an input file is always refused.
Every file is written to a temporary name in the same folder and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from lightning_pose.errors import OutputPathError

__all__ = [
    "atomic_write_bytes",
    "check_outputs",
    "overlay_name",
    "draw_overlay",
    "VideoOverlayWriter",
    "predictions_document",
]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path`` and rename it to ``path`` (all or nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_outputs(planned: Iterable[Path], inputs: Iterable[Path], overwrite: bool) -> None:
    """Refuse outputs that are inputs (always) or that exist (unless ``overwrite``): one line naming the file."""
    input_set = {Path(p).resolve() for p in inputs}
    existing = []
    for p in planned:
        r = Path(p).resolve()
        if r in input_set:
            raise OutputPathError(f"output {p} would overwrite the input file {p}; choose another --out")
        if r.exists():
            existing.append(p)
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise OutputPathError(f"output {existing[0]}{more} already exist(s); pass --overwrite or choose another --out")


def overlay_name(name: str) -> str:
    """``sub/img.jpg`` -> ``sub/img.jpg.png``: the overlay of an image, relative to ``DIR/overlays`` (the full source
    name is kept, so ``a.jpg`` and ``a.png`` of one folder get distinct overlays)."""
    return f"{Path(name).as_posix()}.png"


def draw_overlay(image: np.ndarray, poses: Any, keypoint_set: Any, keypoint_threshold: float = 0.3) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB copy of ``image`` with every person's box, instance score, skeleton and the keypoints
    whose score is ``>= keypoint_threshold`` (coordinates in image pixels)."""
    from PIL import Image, ImageDraw

    from lightning_pose.data.drawing import draw_pose

    h, w = image.shape[:2]
    scale = max(1, int(round(max(h, w) / 400)))
    canvas = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    for kp, score, box in zip(poses.keypoints, poses.scores, poses.boxes):
        shown = np.concatenate([kp[:, :2], (kp[:, 2:3] >= keypoint_threshold).astype(np.float64)], axis=1)
        canvas = draw_pose(canvas, shown, keypoint_set, radius=2 * scale, line_width=scale)
        draw = ImageDraw.Draw(canvas)
        x, y, bw, bh = (float(v) for v in box)
        draw.rectangle([x, y, x + bw, y + bh], outline=(255, 255, 255), width=scale)
        draw.text((x + 2, max(0.0, y - 12)), f"{float(score):.2f}", fill=(255, 255, 0))
    return np.asarray(canvas)


def encode_png(image_rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image_rgb[:, :, ::-1]))
    if not ok:  # pragma: no cover - cv2 always encodes uint8 RGB
        raise RuntimeError("cv2 could not encode the overlay PNG")
    return buf.tobytes()


class VideoOverlayWriter:
    """MP4 (``mp4v``) of overlay frames, written to a temporary file renamed into place by :meth:`close`.

    Frames of another size than the first are resized to it; a missing frame can be written as a black one."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".partial.mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self.frames = 0

    @property
    def size(self) -> tuple[int, int] | None:
        """``(W, H)`` of the video frames (set by the first frame)."""
        return self._size

    def write(self, image_rgb: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = image_rgb.shape[:2]
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise OutputPathError(f"output {self.path}: cv2 cannot write an mp4v video here")
        frame = image_rgb
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        if self._writer is not None:
            self._writer.release()
        if keep and self.frames:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def predictions_document(images: Sequence[dict], annotations: Sequence[dict], keypoint_set: Any, info: dict) -> dict:
    """The ``predictions.json`` object (see the module docstring)."""
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(keypoint_set.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in keypoint_set.skeleton],
    }
    return {"info": info, "images": list(images), "annotations": list(annotations), "categories": [category]}


def result_entries(poses: Any, image_id: int, first_id: int) -> list[dict]:
    """COCO results dicts of one image's people (image pixels)."""
    out = []
    for j, (kp, score, box, bscore) in enumerate(zip(poses.keypoints, poses.scores, poses.boxes, poses.box_scores)):
        out.append(
            {
                "id": first_id + j,
                "image_id": int(image_id),
                "category_id": 1,
                "keypoints": [float(v) for v in np.asarray(kp, dtype=np.float64).reshape(-1)],
                "score": float(score),
                "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]),
                "box_score": float(bscore),
                "num_keypoints": int(kp.shape[0]),
            }
        )
    return out


def write_json(path: Path, document: dict) -> None:
    atomic_write_bytes(path, (json.dumps(document) + "\n").encode("utf-8"))

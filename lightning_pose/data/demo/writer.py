"""Writing the synthetic demo people as a COCO keypoint dataset, and the on-disk cache around it.

Layout of a dataset root::

    <root>/annotations/person_keypoints_train.json
    <root>/annotations/person_keypoints_val.json
    <root>/train/000000000001.jpg ...      (``file_name`` is relative to the split folder)
    <root>/val/000000000001.jpg ...
    <root>/DEMO_COMPLETE.json               (written last; its presence marks a complete copy)

Every file is written atomically (temporary file + fsync + rename) and a whole copy is built in a temporary folder
renamed into place after its marker, so a killed generation never leaves a half cache that a later run trusts.

Keypoints are 0-based image-frame pixels (pixel centres at integers), ``v`` uses COCO codes; ``bbox`` is
``[x, y, w, h]`` in pixels; see :mod:`lightning_pose.data.demo.scene` for the exact labelling rules.
Image ids start at 1 in each split; annotation ids start at 1 in each split. Each annotation also carries
``demo_view`` (``"front"``, ``"side"`` or ``"back"``, :func:`~lightning_pose.data.demo.figures.view_of`), which COCO
tools ignore, for per-view error analysis.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from ...outputs import atomic_path, atomic_write_text
from ...skeletons import COCO
from .figures import view_of
from .scene import render_scene

__all__ = [
    "DEMO_VERSION",
    "COMPLETE_MARKER",
    "default_cache_root",
    "demo_dataset_name",
    "generate_demo_split",
    "ensure_demo_dataset",
    "is_complete_demo_dataset",
]

log = logging.getLogger(__name__)

#: bump when the generator's output changes, so cached copies of older versions are not reused
DEMO_VERSION = 2
COMPLETE_MARKER = "DEMO_COMPLETE.json"
_OWNER_FILE = ".demo_tmp_owner.json"
_JPEG_QUALITY = 90
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def default_cache_root() -> Path:
    """``$LIGHTNING_POSE_CACHE`` if set, else ``~/.cache/lightning_pose``."""
    env = os.environ.get("LIGHTNING_POSE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lightning_pose"


def _check_size(image_size: tuple[int, int]) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height) in pixels, got {image_size!r}") from None
    if w < 32 or h < 32:
        raise ValueError(f"image_size must be at least (32, 32) pixels, got {image_size!r}")
    return w, h


def demo_dataset_name(seed: int, num_train: int, num_val: int, image_size: tuple[int, int], max_people: int) -> str:
    """Folder name of a cached copy, e.g. ``demo-v1-s0-1200-200-256x256-p3`` (size is width x height)."""
    w, h = _check_size(image_size)
    return f"demo-v{DEMO_VERSION}-s{seed}-{num_train}-{num_val}-{w}x{h}-p{max_people}"


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode("utf-8"))


def _r2(v: float) -> float:
    return float(round(float(v), 2))


def generate_demo_split(
    out_dir: Path,
    num_images: int,
    *,
    seed: int,
    split: str,
    image_size: tuple[int, int] = (256, 256),
    max_people: int = 3,
) -> dict:
    """Render ``num_images`` images into ``out_dir/<split>/`` and write
    ``out_dir/annotations/person_keypoints_<split>.json``; return the COCO dict written.

    Image ``i`` (0-based) is drawn from ``numpy.random.default_rng([seed, crc32(split), i])``, so the output
    depends only on (seed, split, index, image_size, max_people): same arguments -> byte-identical JSON and
    identical JPEGs (quality 90).

    Args:
        out_dir: dataset root (created if missing).
        num_images: number of images (>= 0).
        seed: non-negative integer seed.
        split: split name, letters/digits/``_``/``-`` only (e.g. ``"train"``, ``"val"``).
        image_size: ``(W, H)`` in pixels, each >= 32.
        max_people: people per image are drawn uniformly from ``1..max_people``.
    """
    w, h = _check_size(image_size)
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise ValueError(f"split must be a simple name (letters, digits, '_' or '-'), got {split!r}")
    if int(num_images) < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if int(max_people) < 1:
        raise ValueError(f"max_people must be >= 1, got {max_people}")
    out_dir = Path(out_dir)
    img_dir = out_dir / split
    ann_dir = out_dir / "annotations"
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)

    images: list[dict] = []
    annotations: list[dict] = []
    code = _split_code(split)
    for i in range(int(num_images)):
        image_id = i + 1
        scene = render_scene(np.random.default_rng([int(seed), code, i]), (w, h), int(max_people))
        file_name = f"{image_id:012d}.jpg"
        path = img_dir / file_name
        with atomic_path(path, fsync=False) as tmp:  # flushed once, before the completion marker
            if not cv2.imwrite(str(tmp), scene.image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
                raise OSError(f"could not write image {path}")
        images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
        for person in scene.persons:
            kp = person.keypoints
            flat: list[float | int] = []
            for x, y, v in kp:
                flat += [_r2(x), _r2(y), int(v)] if v > 0 else [0, 0, 0]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": flat,
                    "num_keypoints": int((kp[:, 2] > 0).sum()),
                    "bbox": [_r2(v) for v in person.bbox],
                    "area": _r2(person.area),
                    "iscrowd": 0,
                    "demo_view": view_of(person.figure.figure),
                }
            )
    coco = {
        "info": {
            "description": "lightning_pose procedural demo people (synthetic)",
            "version": str(DEMO_VERSION),
            "split": split,
            "seed": int(seed),
            "max_people": int(max_people),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(COCO.keypoints),
                "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton],
            }
        ],
    }
    ann_path = ann_dir / f"person_keypoints_{split}.json"
    atomic_write_text(ann_path, json.dumps(coco, separators=(",", ":")))
    return coco


def is_complete_demo_dataset(path: Path) -> bool:
    """True when ``path`` holds a copy finished by :func:`ensure_demo_dataset` (its marker file parses)."""
    marker = Path(path) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("version") == DEMO_VERSION


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(base: Path, name: str) -> None:
    """Delete temp folders of *this generator* for ``name`` whose writing process (same host) is gone.

    Only folders named ``.<name>.tmp-*`` that contain our owner file are considered; anything else is left.
    """
    host = socket.gethostname()
    for tmp in base.glob(f".{name}.tmp-*"):
        owner = tmp / _OWNER_FILE
        try:
            info = json.loads(owner.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if info.get("host") == host and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"]):
            log.info("removing leftover temporary demo folder %s (writer pid %s is gone)", tmp, info["pid"])
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_demo_dataset(
    root: str | Path | None = None,
    *,
    seed: int = 0,
    num_train: int = 1200,
    num_val: int = 200,
    image_size: tuple[int, int] = (256, 256),
    max_people: int = 3,
) -> Path:
    """Generate the demo dataset once and return its folder ``<root>/<demo_dataset_name(...)>``.

    ``root`` is the cache folder (default :func:`default_cache_root`); the dataset lives in a subfolder named
    by the generator version and every parameter, e.g. ``demo-v1-s0-1200-200-256x256-p3``. If a complete copy
    is there it is returned immediately (nothing is rewritten). Otherwise both splits are generated into a
    temporary folder ``<root>/.<name>.tmp-*`` which is renamed into place only after the completion marker is
    written, so an interrupted or concurrent run never leaves a half dataset that looks complete. A folder
    with the final name but without the marker (not ours) is never touched: a :class:`FileExistsError` says so.

    Args:
        root: cache folder; ``None`` -> ``$LIGHTNING_POSE_CACHE`` or ``~/.cache/lightning_pose``.
        seed: non-negative seed (same seed -> byte-identical JSON, identical images).
        num_train, num_val: number of images per split (>= 1).
        image_size: ``(W, H)`` in pixels.
        max_people: people per image are 1..max_people.

    Returns:
        The dataset root (layout in the module docstring).
    """
    if int(num_train) < 1 or int(num_val) < 1:
        raise ValueError(f"num_train and num_val must be >= 1, got {num_train} and {num_val}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if int(max_people) < 1:
        raise ValueError(f"max_people must be >= 1, got {max_people}")
    base = Path(root).expanduser() if root is not None else default_cache_root()
    name = demo_dataset_name(int(seed), int(num_train), int(num_val), image_size, int(max_people))
    final = base / name
    if is_complete_demo_dataset(final):
        return final
    if final.exists():
        raise FileExistsError(
            f"{final} exists but is not a complete demo dataset (no valid {COMPLETE_MARKER}); it was not written "
            f"by ensure_demo_dataset, so it is left alone: move or delete it, or pass another root"
        )
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(base, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=base))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the finished dataset should be readable like any folder
    (tmp / _OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}), encoding="utf-8")
    log.info("generating the demo dataset %s into %s", name, base)
    t0 = time.perf_counter()
    try:
        size = _check_size(image_size)
        counts = {}
        for split, n in (("train", int(num_train)), ("val", int(num_val))):
            coco = generate_demo_split(tmp, n, seed=int(seed), split=split, image_size=size, max_people=int(max_people))
            counts[split] = {"images": len(coco["images"]), "annotations": len(coco["annotations"])}
        marker = {
            "version": DEMO_VERSION,
            "name": name,
            "seed": int(seed),
            "image_size": list(size),
            "max_people": int(max_people),
            "counts": counts,
        }
        # every image on disk first (one sync for all), then the marker, written last and atomically: a marker
        # that parses means every file before it is complete, even after a power cut
        if hasattr(os, "sync"):
            os.sync()
        atomic_write_text(tmp / COMPLETE_MARKER, json.dumps(marker, indent=1, sort_keys=True))
        (tmp / _OWNER_FILE).unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, final)
    except OSError:
        # another process finished first (final exists and is non-empty): use its copy, drop ours
        shutil.rmtree(tmp, ignore_errors=True)
        if is_complete_demo_dataset(final):
            return final
        raise
    log.info("demo dataset ready in %.1f s: %s", time.perf_counter() - t0, final)
    return final

"""``lightning-pose data show``: write PNGs of training samples exactly as the network sees them.

Usage (``argv`` starts after ``show``)::

    lightning-pose data show {coco,mpii,aic,aic-raw,demo} --ann FILE --images DIR --out DIR
                             [-n 8] [--seed 0] [--split train] [--mode topdown|bottomup]

Each PNG is a de-normalised network input (after augmentation for ``--split train``) with the sample's
keypoints (input frame, scaled by ``--zoom``) and skeleton drawn: left joints/limbs orange, right blue,
centre green (``lightning_pose.data.drawing``); in bottom-up mode ignored regions (mask 0) are darkened.
``samples.json`` in the output folder lists, per PNG, the drawn keypoints in PNG pixel coordinates.

Outputs: ``--out`` must not be an input (the ``--ann`` file, the ``--images`` folder, ``--headboxes``) and is checked
for writability before the dataset is read. Files written there are recorded in ``.lightning_pose_outputs.json``: a
later run may replace them, but any other same-named file is refused unless ``--overwrite`` is given. Every file is
written atomically (temporary file + rename).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

__all__ = ["main", "render_topdown_sample", "render_bottomup_sample", "build_parser"]

FORMATS = ("coco", "mpii", "aic", "aic-raw", "demo")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lightning-pose data show",
        description="Write PNGs of (augmented) training samples with their keypoints and skeleton drawn.",
    )
    p.add_argument("format", choices=FORMATS, help="annotation format")
    p.add_argument("--ann", type=Path, help="annotation file (demo: default = the generated demo split)")
    p.add_argument("--images", type=Path, help="image folder (demo: default = the generated demo split)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the PNGs")
    p.add_argument("-n", "--num", type=int, default=8, help="number of samples to write (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample choice and augmentation")
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="train = with training augmentation; val/test = plain crops (demo: also picks the split)",
    )
    p.add_argument("--mode", choices=("topdown", "bottomup"), default="topdown")
    p.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        default=None,
        help="network input size (default 192 256 top-down, 256 256 for mpii, 512 512 bottom-up)",
    )
    p.add_argument("--headboxes", type=Path, default=None, help="MPII gt_valid.mat-layout head boxes (optional)")
    p.add_argument("--zoom", type=int, default=2, help="integer upscaling of the PNGs (default 2)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace same-named files in --out that lightning-pose did not write"
    )
    return p


def _zoomed(image: np.ndarray, zoom: int) -> np.ndarray:
    if zoom == 1:
        return image
    return cv2.resize(image, (image.shape[1] * zoom, image.shape[0] * zoom), interpolation=cv2.INTER_NEAREST)


def _zoom_points(kp: np.ndarray, zoom: int) -> np.ndarray:
    """Input-frame pixel centres -> pixel centres of the ``zoom``-times upscaled image."""
    out = np.array(kp, dtype=np.float64, copy=True)
    out[..., :2] = (out[..., :2] + 0.5) * zoom - 0.5
    return out


def render_topdown_sample(sample: dict[str, Any], keypoint_set: Any, zoom: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Top-down sample dict -> ``(RGB uint8 image (zoom*H_in, zoom*W_in, 3), drawn keypoints (K, 3))``.

    The keypoints returned are in the PNG's pixel coordinates (0-based centres); joints with v = 0 are not
    drawn.
    """
    from lightning_pose.data.drawing import draw_pose
    from lightning_pose.data.transforms import denormalize_image

    image = _zoomed(denormalize_image(np.asarray(sample["image"])), zoom)
    kp = _zoom_points(np.asarray(sample["keypoints"], dtype=np.float64), zoom)
    drawn = draw_pose(image, kp, keypoint_set, radius=max(2, zoom + 1), line_width=max(1, zoom))
    return np.asarray(drawn), kp


def render_bottomup_sample(sample: dict[str, Any], keypoint_set: Any, zoom: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Bottom-up sample dict -> ``(RGB image, drawn keypoints (N, K, 3))``; ignored regions darkened."""
    from lightning_pose.data.drawing import draw_pose
    from lightning_pose.data.transforms import denormalize_image

    image = denormalize_image(np.asarray(sample["image"]))
    mask = np.asarray(sample["mask"]) > 0
    image = np.where(mask[..., None], image, (image // 3)).astype(np.uint8)
    image = _zoomed(image, zoom)
    n = int(sample["num_persons"])
    kps = _zoom_points(np.asarray(sample["keypoints"], dtype=np.float64)[:n], zoom)
    pil: Any = image
    for kp in kps:
        pil = draw_pose(pil, kp, keypoint_set, radius=max(2, zoom + 1), line_width=max(1, zoom))
    return np.asarray(pil if n else image), kps


def _read(args: argparse.Namespace) -> tuple[Any, Path]:
    from lightning_pose.data.readers import read_aic, read_aic_raw, read_coco, read_mpii

    ann, images = args.ann, args.images
    if args.format == "demo" and (ann is None or images is None):
        from lightning_pose.data.demo import ensure_demo_dataset

        root = Path(ensure_demo_dataset())
        split = "train" if args.split == "train" else "val"
        ann = ann or root / "annotations" / f"person_keypoints_{split}.json"
        images = images or root / split
    if ann is None or images is None:
        raise _UsageError(f"{args.format}: --ann and --images are required")
    if args.format in ("coco", "demo"):
        return read_coco(ann, images), ann
    if args.format == "mpii":
        return read_mpii(ann, images, headbox_file=args.headboxes), ann
    if args.format == "aic":
        return read_aic(ann, images), ann
    return read_aic_raw(ann, images), ann


class _UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 data error, 2 usage error)."""
    import torch

    from lightning_pose.data.datasets import BottomUpDataset, TopDownDataset
    from lightning_pose.data.records import DatasetError

    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.num < 1 or args.zoom < 1:
        print("error: -n and --zoom must be >= 1", file=sys.stderr)
        return 2
    from lightning_pose.errors import OutputPathError
    from lightning_pose.outputs import (
        ToolFiles,
        atomic_path,
        atomic_write_json,
        prepare_output_dir,
        refuse_input_overlap,
    )

    try:  # before reading the dataset: never into an input, and the folder must be writable
        refuse_input_overlap(
            args.out, [("--ann", args.ann), ("--images", args.images), ("--headboxes", args.headboxes)], option="--out"
        )
        prepare_output_dir(args.out, option="--out")
    except OutputPathError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result, ann = _read(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kset = result.keypoint_set
    train = args.split == "train"
    if args.mode == "topdown":
        size = args.input_size or ((256, 256) if args.format == "mpii" else (192, 256))
        aug: dict[str, Any] | None = {} if train else None
        if args.format == "mpii" and train:
            aug = {"scale_factor": 0.25, "rotation_factor": 30.0, "half_body_prob": 0.0}
        dataset: Any = TopDownDataset(result.records, kset, size, aug, train=train, seed=args.seed)
    else:
        size = args.input_size or (512, 512)
        dataset = BottomUpDataset(result.records, kset, size, {} if train else None, train=train, seed=args.seed)
    if len(dataset) == 0:
        print(f"error: {ann}: no samples to show in the {args.split!r} split", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    count = min(args.num, len(dataset))
    indices = sorted(rng.choice(len(dataset), size=count, replace=False).tolist())
    torch.manual_seed(args.seed)  # the dataset's augmentation stream follows torch.initial_seed()
    names = [
        f"{args.format}_{args.mode}_{args.split}_{rank:03d}_sample{index}.png" for rank, index in enumerate(indices)
    ]
    owned = ToolFiles(args.out)
    try:
        owned.claim(names + ["samples.json"], overwrite=args.overwrite, option="--out")
    except OutputPathError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    listing = []
    try:
        for name, index in zip(names, indices):
            sample = dataset[index]
            if args.mode == "topdown":
                picture, kp = render_topdown_sample(sample, kset, args.zoom)
            else:
                picture, kp = render_bottomup_sample(sample, kset, args.zoom)
            with atomic_path(args.out / name) as tmp:
                if not cv2.imwrite(str(tmp), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
                    raise OutputPathError(f"--out: could not write the PNG {args.out / name}")
            owned.record(name)
            entry = {
                "file": name,
                "sample_id": index,
                "image_id": int(sample["image_id"]),
                "keypoints": np.round(kp, 3).tolist(),
            }
            if "flipped" in sample:
                entry["flipped"] = bool(sample["flipped"])
            listing.append(entry)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OutputPathError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write_json(
        args.out / "samples.json",
        {"format": args.format, "keypoints": list(kset.keypoints), "zoom": args.zoom, "samples": listing},
        indent=1,
    )
    owned.record("samples.json")
    print(f"wrote {len(listing)} sample(s) to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``lightning-pose predict --ckpt_path CKPT --source PATH [--out DIR]``: run a trained model on your own images.

``PATH`` is an image, a folder of images, a glob (quote it) or a video file. The checkpoint alone defines the model
(keypoint set, input size, normalisation, network); ``--config FILE`` may override constructor options and is
checked against the checkpoint (another keypoint count or input size is refused). Person boxes of top-down models
come from ``--boxes FILE`` (COCO detection results), ``--boxes image`` (the whole image, the default) or
``--detector NAME`` (a torchvision model). Nothing is sent to W&B.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["build_parser", "main", "run_predict"]


def build_parser() -> argparse.ArgumentParser:
    from lightning_pose.inference.detector import DETECTORS

    p = argparse.ArgumentParser(
        prog="lightning-pose predict",
        description="Predict keypoints on images, a folder, a glob or a video with a trained checkpoint "
        "(for the config-driven dataset prediction use `lightning-pose predict --config FILE`).",
    )
    p.add_argument("--ckpt_path", "--ckpt-path", required=True, help="checkpoint written by lightning-pose fit")
    p.add_argument("--source", required=True, help="image file, folder, glob pattern (quoted) or video file")
    p.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    p.add_argument(
        "--boxes",
        default=None,
        help="top-down person boxes: a COCO detection-results json (matched by file_name or image_id) "
        "or 'image' (the whole image; default when no --detector is given)",
    )
    p.add_argument(
        "--detector",
        default=None,
        choices=DETECTORS,
        metavar="NAME",
        help=f"torchvision person detector, one of: {', '.join(DETECTORS)}",
    )
    p.add_argument(
        "--detector-weights",
        default=None,
        help="local state-dict file of the detector (default: torchvision's weights, downloaded once)",
    )
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.3,
        help="drop person boxes (detector or --boxes file) and the persons of a bottom-up model scoring below this "
        "(default 0.3; 0 keeps every bottom-up person, e.g. to score them with COCO AP)",
    )
    p.add_argument(
        "--nms-threshold",
        type=float,
        default=0.9,
        help="OKS-NMS: drop a person whose OKS with a higher-scored one exceeds this (default 0.9)",
    )
    p.add_argument("--no-nms", action="store_true", help="keep overlapping people (no OKS-NMS)")
    p.add_argument(
        "--keypoint-threshold",
        type=float,
        default=0.3,
        help="draw keypoints scoring at least this on the overlays (default 0.3)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="images per detector pass / crops per pose pass")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument(
        "--flip-test",
        dest="flip_test",
        action="store_true",
        default=None,
        help="average with the flipped image (default: as trained)",
    )
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    p.add_argument("--config", default=None, help="optional training config overriding the model options")
    p.add_argument("--no-overlays", action="store_true", help="write predictions.json only")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files in --out")
    return p


def _config_overrides(config: str, ckpt: Path) -> tuple[type | None, dict[str, Any]]:
    """The model class and constructor options of a training config (``model.init_args``), checked against the
    checkpoint's keypoint set and input size by the loader."""
    import importlib

    import yaml

    from lightning_pose.errors import ConfigError

    path = _resolve_config(config)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    model = cfg.get("model") or {}
    data = (cfg.get("data") or {}).get("init_args") or {}
    overrides = {
        k: v
        for k, v in (model.get("init_args") or {}).items()
        if k not in ("optimizer", "scheduler", "export_dir", "pretrained") and not isinstance(v, dict)
    }
    for key in ("input_size", "keypoint_set"):
        if key in data:
            overrides[key] = data[key]
    cls = None
    if model.get("class_path"):
        module, _, name = str(model["class_path"]).rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            raise ConfigError(f"--config {path}: model class_path {model['class_path']} cannot be imported") from None
    return cls, overrides


def _resolve_config(config: str) -> Path:
    from lightning_pose.config_paths import resolve_config

    return Path(resolve_config(config))


def _load_task(args: argparse.Namespace) -> Any:
    from lightning_pose.tasks.checkpoint import (
        check_compatible,
        checkpoint_metadata,
        read_checkpoint,
        task_from_checkpoint,
    )

    ckpt = Path(args.ckpt_path)
    if not args.config:
        return task_from_checkpoint(ckpt)
    cls, overrides = _config_overrides(args.config, ckpt)
    wanted_size = overrides.pop("input_size", None)
    wanted_set = overrides.pop("keypoint_set", None)
    meta = checkpoint_metadata(read_checkpoint(ckpt), ckpt)
    if wanted_size is not None or wanted_set is not None:
        from lightning_pose.skeletons import get_keypoint_set

        k = get_keypoint_set(wanted_set).num_keypoints if wanted_set is not None else meta.get("num_keypoints")
        size = wanted_size if wanted_size is not None else meta["input_size"]
        check_compatible(meta, int(k), tuple(int(v) for v in size), ckpt)
    return task_from_checkpoint(ckpt, cls=cls, **overrides)


def _plan_outputs(out: Path, source: Any, overlays: bool) -> list[Path]:
    from lightning_pose.inference.writing import overlay_name

    planned = [out / "predictions.json"]
    if overlays:
        if source.kind == "video":
            planned.append(out / f"{source.paths[0].stem}_pose.mp4")
        else:
            from lightning_pose.inference.sources import _relative_name

            planned += [out / "overlays" / overlay_name(_relative_name(p, source.root)) for p in source.paths]
    return planned


def _progress(total: int, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total or None, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None)


def run_predict(args: argparse.Namespace, detector: Any = None, task: Any = None) -> dict[str, Any]:
    """Run ``predict --source`` with parsed ``args``; returns the summary (counts and written files).

    ``detector`` / ``task`` may be given ready-built (tests, notebooks) instead of from ``args``."""
    from lightning_pose.errors import ConfigError, PoseUserError
    from lightning_pose.inference.boxes import assign_image_ids, read_box_file
    from lightning_pose.inference.predictor import PosePredictor, iter_batches
    from lightning_pose.inference.sources import resolve_source
    from lightning_pose.inference.writing import (
        VideoOverlayWriter,
        atomic_write_bytes,
        check_outputs,
        draw_overlay,
        encode_png,
        overlay_name,
        predictions_document,
        result_entries,
        write_json,
    )

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.boxes is not None and args.detector is not None:
        raise ConfigError("give either --boxes or --detector, not both")
    source = resolve_source(args.source)
    out = Path(args.out)
    overlays = not args.no_overlays
    check_outputs(_plan_outputs(out, source, overlays), source.paths, args.overwrite)

    task = task if task is not None else _load_task(args)
    predictor = PosePredictor(
        task,
        device=args.device,
        batch_size=args.batch_size,
        flip_test=args.flip_test,
        nms_threshold=None if args.no_nms else args.nms_threshold,
        # --score-threshold filters a top-down model's boxes (detector / box file), a bottom-up model's persons
        person_score_threshold=args.score_threshold if getattr(task, "is_bottomup", False) else 0.0,
    )
    box_mode, table = "image", None
    if predictor.is_bottomup:
        box_mode = "none"
        if args.boxes is not None or args.detector is not None:
            print("note: bottom-up model, --boxes/--detector are not used", file=sys.stderr)
    elif args.detector is not None or detector is not None:
        box_mode = "detector"
        if detector is None:
            from lightning_pose.inference.detector import PersonDetector, build_detector

            detector = PersonDetector(
                build_detector(args.detector, args.detector_weights),
                device=args.device,
                score_threshold=args.score_threshold,
            )
    elif args.boxes not in (None, "image"):
        box_mode, table = "file", read_box_file(args.boxes)
    elif args.boxes is None:
        print("note: no --boxes or --detector given: the whole image is the person box", file=sys.stderr)

    if source.kind == "video":
        ids_by_index = None
        total, unit = len(source), "frame"
    else:
        from lightning_pose.inference.sources import _relative_name

        ids_by_index = assign_image_ids([_relative_name(p, source.root) for p in source.paths])
        total, unit = len(source.paths), "image"
    video = (
        VideoOverlayWriter(_plan_outputs(out, source, True)[1], source.fps())
        if overlays and source.kind == "video"
        else None
    )

    images, annotations, skipped, no_box = [], [], [], 0
    written: list[Path] = []
    start = time.perf_counter()
    bar = _progress(total, unit)
    ok_run = False
    try:
        for group in iter_batches(source.frames(), args.batch_size):
            readable = []
            for frame in group:
                if frame.image is None:
                    skipped.append(frame.name)
                    bar.write(f"skipped {frame.name} ({frame.path}): {frame.error}", file=sys.stderr)
                    if video is not None and video.frames:
                        video.write(_blank(video))
                else:
                    readable.append(frame)
            if readable:
                imgs = [f.image for f in readable]
                ids = [f.index if ids_by_index is None else ids_by_index[f.index] for f in readable]
                boxes: list[Any] | None = None
                if box_mode == "detector":
                    boxes = detector(imgs)
                elif box_mode == "file":
                    boxes = []
                    for f, iid in zip(readable, ids):
                        b = table.lookup(f.name, iid)
                        boxes.append(b[b[:, 4] >= args.score_threshold])
                if boxes is not None:
                    no_box += sum(1 for b in boxes if len(b) == 0)
                results = predictor.predict_batch(imgs, boxes)
                for f, iid, poses in zip(readable, ids, results):
                    h, w = f.image.shape[:2]
                    entry = {
                        "id": int(iid),
                        "file_name": f.name,
                        "width": int(w),
                        "height": int(h),
                        "path": str(f.path),
                    }
                    if source.kind == "video":
                        entry["frame_index"] = int(f.index)
                    images.append(entry)
                    annotations += result_entries(poses, iid, len(annotations) + 1)
                    if overlays:
                        drawn = draw_overlay(f.image, poses, predictor.keypoint_set, args.keypoint_threshold)
                        if video is not None:
                            video.write(drawn)
                        else:
                            target = out / "overlays" / overlay_name(f.name)
                            atomic_write_bytes(target, encode_png(drawn))
                            written.append(target)
            bar.update(len(group))
        ok_run = True
    finally:
        bar.close()
        if video is not None:
            video.close(keep=ok_run)
            if ok_run and video.frames:
                written.append(video.path)
    if not images:
        raise PoseUserError(f"--source {args.source}: none of the {len(skipped)} image(s)/frame(s) could be read")
    info = {
        "checkpoint": str(args.ckpt_path),
        "source": str(args.source),
        "boxes": box_mode,
        "keypoint_set": predictor.keypoint_set.name,
        "input_size": list(predictor.input_size),
        "coordinates": "0-based image pixels",
        "skipped": skipped,
    }
    pred_path = out / "predictions.json"
    write_json(pred_path, predictions_document(images, annotations, predictor.keypoint_set, info))
    written.insert(0, pred_path)
    seconds = time.perf_counter() - start
    summary = {
        "images": len(images),
        "skipped": len(skipped),
        "skipped_names": skipped,
        "people": len(annotations),
        "images_without_boxes": no_box,
        "files": [str(p) for p in written],
        "seconds": seconds,
    }
    if table is not None:
        summary["unmatched_box_keys"] = table.unmatched()
    return summary


def _blank(video: Any) -> Any:
    """A black frame of the overlay video's size (stands in for an undecodable frame, keeping the timing)."""
    import numpy as np

    w, h = video.size
    return np.zeros((h, w, 3), dtype=np.uint8)


def main(argv: Sequence[str] | None = None) -> int:
    """``lightning-pose predict --source ...``; returns the exit status (user errors raise ``PoseUserError``)."""
    args = build_parser().parse_args(argv)
    summary = run_predict(args)
    skipped = f", {summary['skipped']} unreadable (skipped)" if summary["skipped"] else ""
    line = (
        f"{summary['images']} image(s)/frame(s), {summary['people']} people{skipped} "
        f"in {summary['seconds']:.1f} s -> {summary['files'][0]}"
    )
    print(line)
    if summary.get("images_without_boxes"):
        print(f"note: {summary['images_without_boxes']} image(s) had no person box above --score-threshold")
    if summary.get("unmatched_box_keys"):
        print(f"note: {summary['unmatched_box_keys']} image key(s) of the --boxes file matched no source image")
    return 0

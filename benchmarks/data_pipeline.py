"""Throughput of the COCO top-down data pipeline in ONE process, against its floor.

pipeline: ``TopDownDataset.__getitem__`` with full training augmentation (half-body, scale, rotation,
flip, colour jitter, blur, noise, occlusion) at 256x192 and the uint8 ``(3, H, W)`` image tensor — what one
DataLoader worker does per sample (the ImageNet normalisation runs per batch on the training device).
floor: ``cv2.imread`` of the same JPEG plus one ``cv2.warpAffine`` to 192x256 — the unavoidable work.
The pipeline is measured twice: as shipped (``reduced_decoding=True``: JPEGs of persons that the crop
shrinks by >= 2 are decoded at 1/2..1/8 resolution) and with full decoding always, the like-for-like case.

GPU path (``augment_on: gpu``), run here on CPU tensors: the worker half alone (``TopDownBytesDataset``: read the
file bytes, draw the crop and photometric parameters; collate) — what stays on a DataLoader worker — and worker
plus device half (``augment_batch``: ``decode_jpeg``, one batched ``grid_sample``, photometric ops, normalisation)
in batches of ``--batch-size``. On a GPU the device half runs on the GPU; its CPU figure here is only a bound.

All run in this process on the shared COCO sample images (repeated), in alternating rounds; the best
round of each is reported, with their ratio. Rates are per second of this process's **CPU time**
(``time.process_time``; cv2 and torch limited to one thread), which on a shared machine is far more stable
than wall-clock time; ``--wall`` uses wall-clock time instead.

    python3 benchmarks/data_pipeline.py [--samples 240] [--rounds 3] [--cv2-threads 1] [--batch-size 32]

Since session 6 the CPU path decodes into reused memory (``image_io.DecodeBuffer``: ~10 % faster than a fresh
allocation); the floor as defined keeps plain ``cv2.imread``, and a floor that also decodes into reused memory is
printed beside it for comparison.

The last line is ``ratio_cpu_path_to_floor=X`` (the CPU pipeline as shipped over the floor: best round over best
round). On a shared VM both rates drift by several per cent between rounds; the median over rounds of the ratio of
the two runs of the same round (back to back) is printed too, and is the steadier of the two figures.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import cv2
import torch

from lightning_pose.data import geometry
from lightning_pose.data.datasets import TopDownDataset
from lightning_pose.data.datasets.gpu_augment import augment_batch
from lightning_pose.data.datasets.topdown_bytes import TopDownBytesDataset, collate_encoded
from lightning_pose.data.readers import read_coco
from lightning_pose.data.transforms.image_io import DecodeBuffer

#: every augmentation switched on: the TopDownAugmentation defaults (HRNet-W32 COCO geometry, colour jitter
#: 0.5, blur 0.1, noise 0.1) plus the options that are off by default (shift 0.3, occlusion 0.3)
FULL_AUGMENTATION = {"shift_factor": 0.1, "shift_prob": 0.3, "occlusion_prob": 0.3}


def _shared_coco() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco"


def run(samples: int, rounds: int, cv2_threads: int, wall: bool = False, batch_size: int = 32) -> dict[str, float]:
    clock = time.perf_counter if wall else time.process_time
    cv2.setNumThreads(cv2_threads)
    torch.set_num_threads(1)
    data = _shared_coco()
    result = read_coco(data / "test_coco.json", data)
    ds = TopDownDataset(result.records, "coco", (192, 256), FULL_AUGMENTATION, seed=0)
    ds_full = TopDownDataset(result.records, "coco", (192, 256), FULL_AUGMENTATION, seed=0, reduced_decoding=False)
    ds_gpu = TopDownBytesDataset(result.records, "coco", (192, 256), FULL_AUGMENTATION, seed=0)
    n = len(ds)
    plan = []  # (file, plain crop matrix) per sample, same order as the pipeline
    for i in range(n):
        c, s = ds.center_scale(i)
        plan.append((str(ds.records[ds.items[i].record].file), geometry.crop_matrix(c, s, 0.0, (192, 256))))

    def pipeline(dataset: TopDownDataset = ds) -> float:
        t = clock()
        for k in range(samples):
            dataset[k % n]
        return samples / (clock() - t)

    def floor() -> float:
        t = clock()
        for k in range(samples):
            file, m = plan[k % n]
            img = cv2.imread(file, cv2.IMREAD_COLOR)
            cv2.warpAffine(img, m, (192, 256), flags=cv2.INTER_LINEAR)
        return samples / (clock() - t)

    reuse = DecodeBuffer()
    shapes = {file: cv2.imread(file).shape for file, _ in plan}

    def floor_reused() -> float:
        """The floor with the decode into reused memory (what the CPU path does since session 6): a stricter
        reference, printed for comparison only."""
        t = clock()
        for k in range(samples):
            file, m = plan[k % n]
            img = cv2.imread(file, reuse.view(shapes[file]), cv2.IMREAD_COLOR)
            cv2.warpAffine(img, m, (192, 256), flags=cv2.INTER_LINEAR)
        return samples / (clock() - t)

    def gpu_path(device_half: bool) -> float:
        t = clock()
        for start in range(0, samples, batch_size):
            batch = collate_encoded([ds_gpu[k % n] for k in range(start, min(start + batch_size, samples))])
            if device_half:
                with torch.no_grad():
                    augment_batch(batch, (192, 256))
        return samples / (clock() - t)

    def interleaved(count: int) -> float:
        """Pipeline over floor with the two alternating sample by sample (each sample of each timed alone): no drift
        of the machine and no position in a round can favour either."""
        spent_floor = spent_pipeline = 0.0
        for k in range(count):
            file, m = plan[k % n]
            t0 = clock()
            img = cv2.imread(file, cv2.IMREAD_COLOR)
            cv2.warpAffine(img, m, (192, 256), flags=cv2.INTER_LINEAR)
            t1 = clock()
            ds[k % n]
            t2 = clock()
            spent_floor += t1 - t0
            spent_pipeline += t2 - t1
        return spent_floor / spent_pipeline

    pipeline(), pipeline(ds_full), floor(), floor_reused(), gpu_path(True)  # warm-up (page cache, lazy imports)
    best = dict.fromkeys(("pipeline", "pipeline_full_decode", "floor", "floor_reused", "gpu_worker", "gpu_total"), 0.0)
    paired = []  # pipeline / floor of each round: the two run back to back, so a slow spell of the machine hits both
    for r in range(rounds):
        if r % 2 == 0:  # alternate which of the two runs first: neither gets the first (or second) slot every round
            fl, pl = floor(), pipeline()
        else:
            pl, fl = pipeline(), floor()
        paired.append(pl / fl)
        best["floor"] = max(best["floor"], fl)
        best["pipeline"] = max(best["pipeline"], pl)
        best["pipeline_full_decode"] = max(best["pipeline_full_decode"], pipeline(ds_full))
        best["floor_reused"] = max(best["floor_reused"], floor_reused())
        best["gpu_worker"] = max(best["gpu_worker"], gpu_path(False))
        best["gpu_total"] = max(best["gpu_total"], gpu_path(True))
    f = best["floor"]
    best["ratio_interleaved"] = interleaved(samples * rounds)
    return {
        **best,
        "ratio": best["pipeline"] / f,
        "ratio_paired_median": statistics.median(paired),
        "ratio_full_decode": best["pipeline_full_decode"] / f,
        "ratio_to_floor_reused": best["pipeline"] / best["floor_reused"],
        "ratio_gpu_worker": best["gpu_worker"] / f,
        "ratio_gpu_total": best["gpu_total"] / f,
    }


def profile_steps(samples: int, cv2_threads: int = 1) -> dict[str, float]:
    """CPU seconds per sample of each step of the CPU pipeline's ``__getitem__`` (full augmentation, as shipped),
    replayed step by step on the same samples: parameters, decode, warp, colour conversion, each photometric op
    (albumentations, with its probability), keypoints, the uint8 image tensor (normalised later, on the batch's
    device), the rest of the sample dict."""
    import numpy as np

    from lightning_pose.data.datasets.tensors import uint8_chw_view

    cv2.setNumThreads(cv2_threads)
    torch.set_num_threads(1)
    data = _shared_coco()
    result = read_coco(data / "test_coco.json", data)
    ds = TopDownDataset(result.records, "coco", (192, 256), FULL_AUGMENTATION, seed=0)
    t = ds.transform
    ops = list(t._photometric.transforms) if t._photometric is not None else []
    names = (
        ["params", "decode", "warpAffine", "BGR->RGB"]
        + [type(o).__name__ for o in ops]
        + ["keypoints", "uint8 tensor view", "sample dict"]
    )
    spent = dict.fromkeys(names, 0.0)
    clock = time.process_time
    n = len(ds)
    for _rep in range(2):  # the first pass warms the caches and is discarded
        spent = dict.fromkeys(names, 0.0)
        for k in range(samples):
            i = k % n
            t0 = clock()
            item = ds.items[i]
            person = ds.records[item.record].persons[item.person]
            center, scale = ds.center_scale(i)
            gt = np.asarray(person.keypoints, np.float64)
            params = t.sample_params(center, scale, gt)
            f = t.decode_downscale(params)
            width = ds.image_size(i)[0]
            m = t.matrix(params, width)
            t1 = clock()
            image, is_bgr, f = ds.load_image(i, f)
            t2 = clock()
            warp = (
                m
                if f == 1
                else geometry.compose_affine(m, np.array([[f, 0.0, (f - 1) / 2.0], [0.0, f, (f - 1) / 2.0]]))
            )
            crop = cv2.warpAffine(image, warp, (192, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            t3 = clock()
            if is_bgr:  # OpenCV < 4.10 only: newer ones decode to RGB directly
                crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
            t4 = clock()
            spent["params"] += t1 - t0
            spent["decode"] += t2 - t1
            spent["warpAffine"] += t3 - t2
            spent["BGR->RGB"] += t4 - t3
            for op in ops:
                a = clock()
                crop = op(image=crop)["image"]
                spent[type(op).__name__] += clock() - a
            a = clock()
            kp = t.transform_keypoints(gt, m, params.flip)
            b = clock()
            img = uint8_chw_view(crop)
            c = clock()
            sample = {
                "image": img,
                "keypoints": torch.from_numpy(kp.astype(np.float32)),
                "crop_to_image": torch.from_numpy(geometry.invert_affine(m)),
            }
            sample.update(ds._sample_metadata(i, gt, scale, params.flip))  # what __getitem__ adds
            d = clock()
            spent["keypoints"] += b - a
            spent["uint8 tensor view"] += c - b
            spent["sample dict"] += d - c
            del img, sample
    return {k: v / samples for k, v in spent.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=240, help="samples per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cv2-threads", type=int, default=1, help="cv2.setNumThreads (1 = like a DataLoader worker)")
    ap.add_argument("--wall", action="store_true", help="rates per wall-clock second instead of CPU second")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size of the GPU path's device half")
    ap.add_argument("--profile", action="store_true", help="also print the CPU pipeline's time per step")
    args = ap.parse_args()
    if args.profile:
        steps = profile_steps(args.samples, args.cv2_threads)
        total = sum(steps.values())
        print(f"CPU pipeline per step (CPU ms per sample, share of the {total * 1e3:.2f} ms total):")
        for name, sec in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<18} {sec * 1e3:7.3f} ms  {sec / total:6.1%}")
    r = run(args.samples, args.rounds, args.cv2_threads, args.wall, args.batch_size)
    print(f"rates per {'wall-clock' if args.wall else 'CPU'} second, best of {args.rounds} rounds x {args.samples}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}, opencv {cv2.__version__}, torch {torch.__version__}"
    )
    print(f"floor (imread + one warpAffine 192x256): {r['floor']:.1f} samples/s")
    print(
        f"pipeline (full augmentation, uint8 image tensor, sample dict): {r['pipeline']:.1f} samples/s  ratio {r['ratio']:.2f}"
    )
    print(
        f"floor with the decode into reused memory (reference only): {r['floor_reused']:.1f} samples/s; "
        f"pipeline / it: {r['ratio_to_floor_reused']:.2f}"
    )
    print(
        f"pipeline / floor of the same round (back to back), median of {args.rounds} rounds: "
        f"{r['ratio_paired_median']:.3f}"
    )
    print(
        f"pipeline / floor alternating sample by sample ({args.rounds * args.samples} samples each): "
        f"{r['ratio_interleaved']:.3f}"
    )
    print(
        f"pipeline with reduced_decoding=False (always full JPEG decode): {r['pipeline_full_decode']:.1f} "
        f"samples/s  ratio {r['ratio_full_decode']:.2f}"
    )
    print(
        f"GPU path, worker half only (read bytes, draw parameters, collate): {r['gpu_worker']:.1f} samples/s  "
        f"ratio {r['ratio_gpu_worker']:.2f}"
    )
    print(
        f"GPU path, worker + device half on CPU tensors (decode_jpeg, grid_sample, photometric, normalise; "
        f"batch {args.batch_size}): {r['gpu_total']:.1f} samples/s  ratio {r['ratio_gpu_total']:.2f}"
    )
    print(f"ratio_cpu_path_to_floor={r['ratio']:.3f}")


if __name__ == "__main__":
    main()

"""Throughput of the COCO top-down data pipeline in ONE process, against its floor.

pipeline: ``TopDownDataset.__getitem__`` with full training augmentation (half-body, scale, rotation,
flip, colour jitter, blur, noise, occlusion) at 256x192, ImageNet normalisation and tensor conversion —
what one DataLoader worker does per sample.
floor: ``cv2.imread`` of the same JPEG plus one ``cv2.warpAffine`` to 192x256 — the unavoidable work.

Both run in this process on the shared COCO sample images (repeated), in alternating rounds; the best
round of each is reported (robust to other load on the machine), with their ratio.

    python3 benchmarks/data_pipeline.py [--samples 240] [--rounds 3] [--cv2-threads 1]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from lightning_pose.data import geometry
from lightning_pose.data.datasets import TopDownDataset
from lightning_pose.data.readers import read_coco

FULL_AUGMENTATION = {
    "flip_prob": 0.5, "scale_factor": 0.35, "rotation_factor": 45.0, "rotation_prob": 0.6,
    "shift_factor": 0.1, "shift_prob": 0.3, "half_body_prob": 0.3,
    "color_jitter_prob": 1.0, "blur_prob": 0.5, "noise_prob": 0.5, "occlusion_prob": 0.5,
}


def _shared_coco() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco"


def run(samples: int, rounds: int, cv2_threads: int) -> dict[str, float]:
    cv2.setNumThreads(cv2_threads)
    torch.set_num_threads(1)
    data = _shared_coco()
    result = read_coco(data / "test_coco.json", data)
    ds = TopDownDataset(result.records, "coco", (192, 256), FULL_AUGMENTATION, seed=0)
    n = len(ds)
    plan = []  # (file, plain crop matrix) per sample, same order as the pipeline
    for i in range(n):
        c, s = ds.center_scale(i)
        plan.append((str(ds.records[ds.items[i].record].file), geometry.crop_matrix(c, s, 0.0, (192, 256))))

    def pipeline() -> float:
        t = time.perf_counter()
        for k in range(samples):
            ds[k % n]
        return samples / (time.perf_counter() - t)

    def floor() -> float:
        t = time.perf_counter()
        for k in range(samples):
            file, m = plan[k % n]
            img = cv2.imread(file, cv2.IMREAD_COLOR)
            cv2.warpAffine(img, m, (192, 256), flags=cv2.INTER_LINEAR)
        return samples / (time.perf_counter() - t)

    pipeline(), floor()  # warm-up (page cache, lazy imports)
    best_p, best_f = 0.0, 0.0
    for _ in range(rounds):
        best_f = max(best_f, floor())
        best_p = max(best_p, pipeline())
    return {"pipeline": best_p, "floor": best_f, "ratio": best_p / best_f}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=240, help="samples per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cv2-threads", type=int, default=1, help="cv2.setNumThreads (1 = like a DataLoader worker)")
    args = ap.parse_args()
    r = run(args.samples, args.rounds, args.cv2_threads)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()} {platform.release()}, "
          f"python {platform.python_version()}, opencv {cv2.__version__}, torch {torch.__version__}")
    print(f"floor (imread + one warpAffine 192x256): {r['floor']:.1f} samples/s")
    print(f"pipeline (full augmentation, normalise, tensors): {r['pipeline']:.1f} samples/s")
    print(f"ratio pipeline / floor: {r['ratio']:.2f}")


if __name__ == "__main__":
    main()

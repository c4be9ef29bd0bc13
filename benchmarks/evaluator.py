"""Benchmark of the COCO keypoint evaluator against pycocotools and faster-coco-eval (a script, not a test).

Generates a COCO-like keypoint set with a fixed seed (default 5,000 images, ~20,000 persons, ~23,000
detections), then in one process times

* ours: ``evaluate_coco_keypoints(gt, results)`` (GT indexing + results parsing + evaluation), and
  ``CocoKeypointEvaluator(gt).evaluate(results)`` with the GT indexed beforehand (list-of-dict and array inputs);
* pycocotools: ``COCOeval.evaluate() + accumulate() + summarize()`` (COCO index and loadRes not timed,
  summarize's stdout suppressed);
* faster-coco-eval: ``COCOeval_faster`` (its C++ pycocotools-compatible API), same three calls;

asserts that the 10 stats agree (prints the max abs difference), prints times and ratios, and finally times
whole processes: ``python -m lightning_pose.evaluation.cli coco --gt G --pred P`` vs a minimal pycocotools
script on the same files (skipped with a notice when the CLI module is missing).

Usage: ``python3 benchmarks/evaluator.py [--images 5000] [--seed 0] [--repeats 3] [--skip-cli]``
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from lightning_pose.evaluation.coco import STAT_NAMES, CocoKeypointEvaluator, evaluate_coco_keypoints  # noqa: E402
from lightning_pose.skeletons import COCO as COCO_SET  # noqa: E402

K = 17


def generate(n_images: int, seed: int) -> tuple[dict, list[dict]]:
    """A COCO person_keypoints-like GT (4 persons/image on average) and top-down-like keypoint results.

    Persons: box sides log-uniform (small, medium and large persons), 5 % crowd regions, 4 % without labelled
    keypoints, v drawn from {0, 1, 2}. Results: 90 % of the persons detected with a pixel error that grows with
    the person size (0.3-5 % of the box diagonal), duplicates for 8 %, ~0.9 false positives per image, scores
    correlated with the error, per-keypoint scores in (0, 1). Coordinates are image pixels.
    """
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    aid = 1
    for i in range(n_images):
        img_id = 100000 + 3 * i
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "width": 640, "height": 480})
        for _ in range(rng.poisson(4.0)):
            w = float(np.exp(rng.uniform(np.log(12), np.log(420))))
            h = float(w * rng.uniform(1.2, 2.6))
            x, y = float(rng.uniform(0, 640 - min(w, 600))), float(rng.uniform(0, 480 - min(h, 460)))
            kp = np.zeros((K, 3))
            kp[:, 0] = x + rng.uniform(0.1, 0.9, K) * w
            kp[:, 1] = y + np.sort(rng.uniform(0.05, 0.95, K)) * h
            kp[:, 2] = rng.choice([0, 1, 2], K, p=[0.25, 0.15, 0.6])
            crowd = rng.random() < 0.05
            if crowd or rng.random() < 0.04:
                kp[:, 2] = 0
            kp[kp[:, 2] == 0, :2] = 0
            anns.append(
                {
                    "id": aid,
                    "image_id": img_id,
                    "category_id": 1,
                    "iscrowd": int(crowd),
                    "keypoints": [round(float(v), 2) for v in kp.ravel()],
                    "num_keypoints": int((kp[:, 2] > 0).sum()),
                    "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                    "area": round(w * h * float(rng.uniform(0.35, 0.75)), 3),
                }
            )
            aid += 1
            if crowd or rng.random() > 0.9:
                continue
            for _dup in range(2 if rng.random() < 0.08 else 1):
                err = float(rng.uniform(0.003, 0.05)) * float(np.hypot(w, h))
                pred = np.zeros((K, 3))
                pred[:, 0] = np.where(kp[:, 2] > 0, kp[:, 0], x + 0.5 * w) + rng.normal(0, err, K)
                pred[:, 1] = np.where(kp[:, 2] > 0, kp[:, 1], y + 0.5 * h) + rng.normal(0, err, K)
                pred[:, 2] = rng.uniform(0.05, 1.0, K)
                score = float(np.clip(1.0 - err / np.hypot(w, h) * 8 + rng.normal(0, 0.1), 0.01, 1.0))
                results.append(
                    {
                        "image_id": img_id,
                        "category_id": 1,
                        "keypoints": [float(v) for v in pred.ravel()],
                        "score": score,
                    }
                )
        for _ in range(rng.poisson(0.9)):
            w, h = float(rng.uniform(20, 200)), float(rng.uniform(40, 400))
            x, y = float(rng.uniform(0, 600)), float(rng.uniform(0, 400))
            pred = np.stack([x + rng.uniform(0, w, K), y + rng.uniform(0, h, K), rng.uniform(0.05, 1, K)], axis=1)
            results.append(
                {
                    "image_id": img_id,
                    "category_id": 1,
                    "keypoints": [float(v) for v in pred.ravel()],
                    "score": float(rng.uniform(0.01, 0.6)),
                }
            )
    cat = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_SET.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_SET.skeleton],
    }
    return {"images": images, "annotations": anns, "categories": [cat]}, results


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_pycocotools(gt: dict, results: list[dict]) -> tuple[float, np.ndarray]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(results))
        ev = COCOeval(cg, cd, "keypoints")
        t0 = time.perf_counter()
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        dt = time.perf_counter() - t0
    return dt, np.array(ev.stats)


def run_faster_coco_eval(gt: dict, results: list[dict], repeats: int) -> tuple[float, np.ndarray, str]:
    import faster_coco_eval
    from faster_coco_eval import COCO as FCOCO
    from faster_coco_eval import COCOeval_faster

    def noop(*_a, **_k):
        return None

    with contextlib.redirect_stdout(io.StringIO()):
        cg = FCOCO(copy.deepcopy(gt))
        cd = cg.loadRes(copy.deepcopy(results))
    best, stats = float("inf"), None
    for _ in range(repeats):
        ev = COCOeval_faster(cg, cd, "keypoints", print_function=noop)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        best = min(best, time.perf_counter() - t0)
        stats = np.array(ev.stats[:10])
    return best, stats, faster_coco_eval.__version__


PYCOCO_SCRIPT = """
import contextlib, io, json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2])
    ev = COCOeval(gt, dt, "keypoints"); ev.evaluate(); ev.accumulate(); ev.summarize()
print(json.dumps(list(ev.stats)))
"""


def run_processes(gt_path: Path, pred_path: Path, out_json: Path) -> None:
    if importlib.util.find_spec("lightning_pose.evaluation.cli") is None:
        print("\n[notice] lightning_pose.evaluation.cli does not exist yet: whole-process comparison skipped")
        return
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd_ours = [
        sys.executable,
        "-m",
        "lightning_pose.evaluation.cli",
        "coco",
        "--gt",
        str(gt_path),
        "--pred",
        str(pred_path),
        "--json",
        str(out_json),
    ]
    t0 = time.perf_counter()
    p1 = subprocess.run(cmd_ours, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    t_ours = time.perf_counter() - t0
    if p1.returncode != 0:
        print(f"\n[notice] the CLI failed (exit {p1.returncode}): {p1.stderr.strip()[:500]}")
        return
    t0 = time.perf_counter()
    p2 = subprocess.run(
        [sys.executable, "-c", PYCOCO_SCRIPT, str(gt_path), str(pred_path)], capture_output=True, text=True, env=env
    )
    t_ref = time.perf_counter() - t0
    if p2.returncode != 0:
        print(f"\n[notice] the pycocotools script failed: {p2.stderr.strip()[:500]}")
        return
    ours = json.loads(out_json.read_text())
    ref = json.loads(p2.stdout.strip().splitlines()[-1])
    diff = max(abs(float(ours[k]) - r) for k, r in zip(STAT_NAMES, ref))
    print("\nwhole process (json load + evaluation + interpreter start-up):")
    print(f"  python -m lightning_pose.evaluation.cli coco : {t_ours:8.2f} s")
    print(f"  minimal pycocotools script                  : {t_ref:8.2f} s   ratio {t_ref / t_ours:5.1f}x")
    print(f"  max |CLI - pycocotools| over the 10 stats  : {diff:.3e}")
    assert diff < 1e-10, "CLI and pycocotools disagree"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="best-of repeats for ours and faster-coco-eval")
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()

    print(
        f"machine: {os.cpu_count()} cpu(s), {_cpu_model()}, python {platform.python_version()}, numpy {np.__version__}"
    )
    gt, results = generate(args.images, args.seed)
    print(
        f"data: {len(gt['images'])} images, {len(gt['annotations'])} persons, {len(results)} detections (seed {args.seed})"
    )

    t_full, stats_full = best_of(lambda: evaluate_coco_keypoints(gt, results), args.repeats)
    t_index, ev = best_of(lambda: CocoKeypointEvaluator(gt), args.repeats)
    t_eval, stats = best_of(lambda: ev.evaluate(results), args.repeats)
    arrays = {
        "image_id": np.array([r["image_id"] for r in results]),
        "keypoints": np.array([r["keypoints"] for r in results]).reshape(len(results), K, 3),
        "score": np.array([r["score"] for r in results]),
    }
    t_arr, stats_arr = best_of(lambda: ev.evaluate(arrays), args.repeats)
    ours = np.array([stats[k] for k in STAT_NAMES])
    assert stats_full == stats and stats_arr == stats

    t_pc, ref = run_pycocotools(gt, results)
    d_pc = float(np.abs(ours - ref).max())
    try:
        t_fc, ref_fc, fc_version = run_faster_coco_eval(gt, results, args.repeats)
        d_fc = float(np.abs(ours - ref_fc).max())
    except ImportError:
        t_fc = ref_fc = None
        d_fc, fc_version = float("nan"), "not installed"

    print("\nstats:", ", ".join(f"{k}={v:.4f}" for k, v in zip(STAT_NAMES, ours)))
    print(f"max |ours - pycocotools|      = {d_pc:.3e}")
    print(f"max |ours - faster-coco-eval| = {d_fc:.3e}  (faster-coco-eval {fc_version})")
    print("\nevaluate + accumulate + summarize (seconds; ours best of %d):" % args.repeats)
    print(f"  ours, evaluate_coco_keypoints (incl. GT index + results parse): {t_full:8.3f}")
    print(f"  ours, CocoKeypointEvaluator.evaluate(list of dicts)         : {t_eval:8.3f}   (GT index {t_index:.3f})")
    print(f"  ours, CocoKeypointEvaluator.evaluate(arrays)                : {t_arr:8.3f}")
    print(f"  pycocotools COCOeval (one run)                              : {t_pc:8.3f}")
    if t_fc is not None:
        print(f"  faster-coco-eval COCOeval_faster                            : {t_fc:8.3f}")
    print("ratios (their time / ours):")
    print(
        f"  pycocotools / ours(full function)      = {t_pc / t_full:6.1f}x   / ours(evaluate) = {t_pc / t_eval:6.1f}x"
    )
    if t_fc is not None:
        print(
            f"  faster-coco-eval / ours(full function) = {t_fc / t_full:6.1f}x   / ours(evaluate) = {t_fc / t_eval:6.1f}x"
        )
    assert d_pc < 1e-10, "pycocotools and ours disagree"
    if t_fc is not None:
        assert d_fc < 1e-10, "faster-coco-eval and ours disagree"

    if not args.skip_cli:
        with tempfile.TemporaryDirectory() as tmp:
            gt_path, pred_path = Path(tmp) / "gt.json", Path(tmp) / "pred.json"
            gt_path.write_text(json.dumps(gt))
            pred_path.write_text(json.dumps(results))
            run_processes(gt_path, pred_path, Path(tmp) / "scores.json")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


if __name__ == "__main__":
    main()

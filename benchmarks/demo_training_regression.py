"""Demo training of the regression and hybrid methods: untrained vs trained, and the hybrid ablation.

For each run the script builds the task on the built-in synthetic people (``DemoDataModule``, 17 COCO keypoints,
generated into the cache on first use), validates the untrained network, trains it for a fixed number of optimizer
steps with ``lightning.Trainer.fit`` (the demo datamodule's default training augmentation, Adam, seed fixed), and
validates again. Validation is the real one: GT person boxes of the demo val split, flip test, bbox-normalised PCK
(``val/PCK@0.2``, ``val/PCK@0.05``: fraction of labelled joints within 0.2 / 0.05 x the longer box side, image px) and
COCO keypoint AP (``val/AP``).

Runs (networks as in ``configs/{deeppose,integral,hybrid}/demo.yaml``: timm ResNet-18, random init, 96x128 input):

* ``deeppose``: GAP + FC, SmoothL1;  ``deeppose_rle``: the same with RLE;
* ``integral``: 3 deconvolutions -> soft-argmax (beta 5), L1;
* hybrid ablation, same seed and step budget: ``hybrid_both`` (det 1, reg 1000, coord 1; decoded with ``fuse`` and also
  ``heatmap`` / ``coords`` / ``detection``), ``hybrid_det_only`` (reg = coord = 0; decode ``detection``),
  ``hybrid_loc_only`` (det = 0; decode ``heatmap`` and ``coords``).

Usage (from the project root; the defaults are the recorded run: 60 steps x batch 16 per run; about 40 min
of wall time in one process on the shared 2-core VM under load; ``--runs`` selects a subset, e.g. to split the work)::

    python3 benchmarks/demo_training_regression.py [--steps 60] [--batch-size 16] [--runs ...] [--json out.json]

Prints one Markdown table (before -> after for each metric, training wall time) and the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from typing import Any, Callable

RUNS = ("deeppose", "deeppose_rle", "integral", "hybrid_both", "hybrid_det_only", "hybrid_loc_only")
METRICS = ("val/PCK@0.2", "val/PCK@0.05", "val/AP")


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60, help="optimizer steps per run (fixed budget)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every run")
    p.add_argument("--num-train", type=int, default=400, help="demo training images")
    p.add_argument("--num-val", type=int, default=60, help="demo validation images")
    p.add_argument("--input-size", type=int, nargs=2, default=(96, 128), metavar=("W", "H"))
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    p.add_argument("--json", default=None, help="also write all figures to this JSON file")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        p.error("--steps and --batch-size must be >= 1")
    return args


def _task_factories() -> dict[str, Callable[..., Any]]:
    from lightning_pose.tasks.hybrid import HybridTask
    from lightning_pose.tasks.regression import DeepPoseTask, IntegralRegressionTask

    hybrid = dict(backbone="resnet18", deconv_channels=(128, 128, 128), refine_channels=64, dilations=(1, 2, 4, 8))
    return {
        "deeppose": lambda **kw: DeepPoseTask(backbone="resnet18", loss="smooth_l1", **kw),
        "deeppose_rle": lambda **kw: DeepPoseTask(backbone="resnet18", loss="rle", **kw),
        "integral": lambda **kw: IntegralRegressionTask(
            backbone="resnet18", deconv_channels=(128, 128, 128), beta=5.0, loss="l1", **kw
        ),
        "hybrid_both": lambda **kw: HybridTask(**hybrid, decode_mode="fuse", **kw),
        "hybrid_det_only": lambda **kw: HybridTask(
            **hybrid, reg_weight=0.0, coord_weight=0.0, decode_mode="detection", **kw
        ),
        "hybrid_loc_only": lambda **kw: HybridTask(**hybrid, det_weight=0.0, decode_mode="heatmap", **kw),
    }


#: extra decoders evaluated on the trained hybrid models (same weights, no retraining)
EXTRA_DECODES = {"hybrid_both": ("heatmap", "coords", "detection"), "hybrid_loc_only": ("coords",)}


def _validate(task: Any, datamodule: Any) -> dict[str, float]:
    import lightning as L

    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(task, datamodule=datamodule, verbose=False)
    return {k: float(task.final_metrics["val"][k]) for k in METRICS}


def run_one(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train run ``name``; returns one result row per evaluated decoder."""
    import lightning as L
    import torch

    from lightning_pose.data.datamodules import DemoDataModule

    L.seed_everything(args.seed, verbose=False)
    dm = DemoDataModule(
        num_train=args.num_train,
        num_val=args.num_val,
        input_size=tuple(args.input_size),
        batch_size=args.batch_size,
        num_workers=1,
        seed=args.seed,
    )
    lr = args.lr

    def optimizer(params: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr)

    task = _task_factories()[name](
        keypoint_set=dm.keypoint_set, input_size=dm.input_size, optimizer=optimizer, flip_test=True
    )
    params = sum(p.numel() for p in task.network.parameters()) / 1e6
    t0 = time.perf_counter()
    before = _validate(task, dm)
    t_val = time.perf_counter() - t0
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    t0 = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    train_s = time.perf_counter() - t0
    if trainer.global_step != args.steps:
        raise RuntimeError(f"{name}: trained {trainer.global_step} steps instead of {args.steps}")
    after = _validate(task, dm)
    rows = [
        {
            "run": name,
            "decode": getattr(task, "decode_mode", "-"),
            "before": before,
            "after": after,
            "train_s": train_s,
            "val_s": t_val,
            "params_M": params,
            "steps": args.steps,
        }
    ]
    for mode in EXTRA_DECODES.get(name, ()):
        task.decode_mode = mode
        rows.append(
            {
                "run": name,
                "decode": mode,
                "before": None,
                "after": _validate(task, dm),
                "train_s": train_s,
                "val_s": None,
                "params_M": params,
                "steps": args.steps,
            }
        )
    return rows


def _machine() -> str:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )


def _fmt(row: dict[str, Any], key: str) -> str:
    after = row["after"][key]
    if row["before"] is None:
        return f"{after:.3f}"
    return f"{row['before'][key]:.3f} -> {after:.3f}"


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    machine_start = _machine()
    t_all = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name in args.runs:
        new_rows = run_one(name, args)
        rows.extend(new_rows)
        for row in new_rows:  # progress (a partial table survives an interrupted run)
            print(
                f"[{time.perf_counter() - t_all:7.1f} s] {name} ({row['decode']}): "
                + ", ".join(f"{k} {_fmt(row, k)}" for k in METRICS)
                + f", train {row['train_s']:.0f} s",
                flush=True,
            )
    total = time.perf_counter() - t_all
    print()
    print(
        f"{args.steps} steps x batch {args.batch_size}, Adam lr {args.lr}, input {args.input_size[0]}x"
        f"{args.input_size[1]} (WxH), demo {args.num_train} train / {args.num_val} val images, seed {args.seed}, "
        f"flip test on"
    )
    print()
    print("| run | decode | PCK@0.2 | PCK@0.05 | AP | train s | params M |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['run']} | {row['decode']} | {_fmt(row, 'val/PCK@0.2')} | {_fmt(row, 'val/PCK@0.05')} | "
            f"{_fmt(row, 'val/AP')} | {row['train_s']:.0f} | {row['params_M']:.2f} |"
        )
    print()
    print(f"machine at start: {machine_start}")
    print(f"machine at end:   {_machine()}")
    print(f"total wall time: {total:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "rows": rows, "machine": machine_start, "total_s": total}, fh, indent=2)


if __name__ == "__main__":
    main()

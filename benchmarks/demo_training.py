"""Train every method's demo config under the same budget and print one comparison table.

Each method is built from its config (``configs/<method>/demo*.yaml``) through the project CLI exactly as
``lightning-pose fit --config`` would (W&B logger and the configs' callbacks off), trained with the config's
budget (20 epochs of the demo train split at 96x128, batch 32, LR / 10 for the last 4, the configs' ``precision``
(``auto``: bf16 autocast where the CPU has native bf16) and LR-drop callback, 8.5-minute wall-clock cap; ``--epochs``,
``--max-steps`` and ``--minutes`` shorten it for a loaded machine), then validated once on the demo val split
(GT boxes, the configs' flip test). One row per method:

* params (M), GFLOPs of one forward pass at batch 1 (``torch.utils.flop_counter``, conv/linear/matmul FLOPs = 2 x MACs),
* train wall time (s) and training samples/s (optimizer steps x batch size / train wall time),
* COCO keypoint AP (GT boxes), PCK@0.05 and PCK@0.2 (bbox-normalised, pooled, fractions),
* left/right swap rate (:func:`lightning_pose.evaluation.baseline.left_right_swaps`), overall and per view
  (front / side / back, from the demo annotations' ``demo_view``),

and a final row for the constant predictor (mean training pose placed in each val box), the floor every method
must beat: ``AP x`` and ``PCK@0.05 x`` are each method's multiples of it.

Usage::

    python3 benchmarks/demo_training.py                                  # full budget, every method
    python3 benchmarks/demo_training.py --epochs 1 --methods simple_baseline hourglass --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lightning_pose.config_paths import load_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "simple_baseline": "configs/simple_baseline/demo.yaml",
    "hourglass": "configs/hourglass/demo.yaml",
    "cpm": "configs/cpm/demo.yaml",
    "deeppose": "configs/deeppose/demo.yaml",
    "deeppose_rle": "configs/deeppose/demo_rle.yaml",
    "deeppose_cascade": "configs/deeppose/demo_cascade.yaml",
    "integral": "configs/integral/demo.yaml",
    "hybrid": "configs/hybrid/demo.yaml",
}
VIEWS = ("front", "side", "back")


def build_from_config(config: Path, extra: list[str] = ()) -> tuple[Any, Any]:
    """``(model, datamodule)`` instantiated from a config through the project's CLI (no logger, no callbacks)."""
    from lightning_pose.cli import run_lightning

    cli = run_lightning(
        ["--config", str(config), "--trainer.logger", "false", "--trainer.callbacks", "[]", *extra], run=False
    )
    return cli.model, cli.datamodule


def forward_gflops(model: Any) -> float:
    """FLOPs (x 1e-9) of one eval-mode forward pass at batch 1 (conv/linear/matmul ops, as FlopCounterMode counts)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    w, h = model.input_size
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, h, w))
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def raw_annotations(dm: Any, split: str) -> dict:
    """The demo split's COCO json as written by the generator (it keeps ``demo_view``, which records drop)."""
    return json.loads(Path(dm.paths(split)[0]).read_text(encoding="utf-8"))


def view_swap_rates(pred: dict[str, np.ndarray], val_gt: dict, flip_pairs: list[tuple[int, int]]) -> dict[str, float]:
    """Swap rate overall and per ``demo_view`` of the validation predictions collected by ``SwapRateMonitor``."""
    from lightning_pose.evaluation.baseline import left_right_swaps

    view_of = {int(a["id"]): a.get("demo_view", "?") for a in val_gt["annotations"]}
    views = np.array([view_of.get(int(i), "?") for i in pred["ann_id"]])
    out = {"all": left_right_swaps(pred["pred"], pred["gt"], pred["bbox"], flip_pairs).swap_rate}
    for v in VIEWS:
        sel = views == v
        out[v] = (
            left_right_swaps(pred["pred"][sel], pred["gt"][sel], pred["bbox"][sel], flip_pairs).swap_rate
            if sel.any()
            else float("nan")
        )
    return out


def per_joint_errors_by_view(pred: dict[str, np.ndarray], val_gt: dict, names: tuple[str, ...]) -> dict[str, list]:
    """Mean error of each joint, in units of the box size ``max(w, h)``, per view (labelled joints only)."""
    view_of = {int(a["id"]): a.get("demo_view", "?") for a in val_gt["annotations"]}
    views = np.array([view_of.get(int(i), "?") for i in pred["ann_id"]])
    size = pred["bbox"][:, 2:4].max(axis=1)
    err = np.linalg.norm(pred["pred"] - pred["gt"][:, :, :2], axis=2) / size[:, None]
    lab = pred["gt"][:, :, 2] > 0
    out = {}
    for v in VIEWS:
        sel = (views == v)[:, None] & lab
        cnt = sel.sum(axis=0)
        out[v] = [
            float(np.where(sel[:, k], err[:, k], 0).sum() / cnt[k]) if cnt[k] else float("nan")
            for k in range(len(names))
        ]
    return out


def run_method(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one method under the budget and evaluate it."""
    import lightning as L

    from lightning_pose.callbacks.swap_rate import SwapRateMonitor

    config = PROJECT_ROOT / CONFIGS[method]
    raw = load_config(config)["trainer"]  # the config merged over its __base__ files
    epochs = args.epochs if args.epochs is not None else int(raw["max_epochs"])
    max_time = (
        None
        if args.no_time_cap
        else ({"seconds": int(round(args.minutes * 60))} if args.minutes is not None else raw.get("max_time"))
    )
    from lightning_pose.callbacks.time_cap_lr import DropLRBeforeTimeCap
    from lightning_pose.trainer import resolve_precision

    precision = resolve_precision(raw.get("precision") or "32-true", "cpu")  # the config's (auto: bf16 if native)
    drops = [
        DropLRBeforeTimeCap(**(cb.get("init_args") or {}))
        for cb in raw.get("callbacks") or []
        if isinstance(cb, dict) and str(cb.get("class_path", "")).endswith("DropLRBeforeTimeCap")
    ]
    L.seed_everything(args.seed, verbose=False)
    model, dm = build_from_config(config)
    dm.prepare_data()  # generates the demo dataset once (cached)
    params = sum(p.numel() for p in model.parameters())
    gflops = forward_gflops(model)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        max_epochs=epochs,
        max_steps=args.max_steps if args.max_steps else -1,
        max_time=max_time,
        limit_val_batches=0,
        precision=precision,
        callbacks=drops,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    train_seconds = time.perf_counter() - start
    monitor = SwapRateMonitor()
    L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[monitor],
        precision=precision,
        limit_val_batches=args.val_batches or 1.0,
    ).validate(model, datamodule=dm, verbose=False)
    final = dict(model.final_metrics["val"])
    val_gt = raw_annotations(dm, "val")
    ks = model.keypoint_set
    swaps = view_swap_rates(monitor.last, val_gt, list(ks.flip_pairs))
    return {
        "method": method,
        "config": CONFIGS[method],
        "params_M": params / 1e6,
        "gflops": gflops,
        "input_size": list(model.input_size),
        "epochs": epochs,
        "steps": int(trainer.global_step),
        "precision": precision,
        "lr_drop_brought_forward_at_step": drops[0].applied_at_step if drops else None,
        "batch_size": dm.batch_size,
        "train_seconds": train_seconds,
        "samples_per_s": trainer.global_step * dm.batch_size / max(train_seconds, 1e-9),
        "AP": final.get("val/AP", float("nan")),
        "PCK@0.05": final.get("val/PCK@0.05", float("nan")),
        "PCK@0.2": final.get("val/PCK@0.2", float("nan")),
        "swap_rate": swaps,
        "joint_error_by_view": per_joint_errors_by_view(monitor.last, val_gt, ks.keypoints),
    }


def baseline_row(method: str) -> dict[str, Any]:
    """The constant predictor on the same split (its figures do not depend on the method's config)."""
    from lightning_pose.evaluation.baseline import ConstantPosePredictor, constant_baseline_metrics, persons_from_coco

    _, dm = build_from_config(PROJECT_ROOT / CONFIGS[method])
    dm.prepare_data()
    train_gt, val_gt = dm.ground_truth("train"), raw_annotations(dm, "val")
    ks = dm.keypoint_set
    m = constant_baseline_metrics(train_gt, val_gt, ks.sigmas, ks.flip_pairs)
    kp, boxes, _, ann_ids, _ = persons_from_coco(val_gt, ks.num_keypoints)
    tr_kp, tr_boxes, *_ = persons_from_coco(train_gt, ks.num_keypoints)
    pred = {
        "pred": ConstantPosePredictor.fit(tr_kp, tr_boxes).predict(boxes),
        "gt": kp,
        "bbox": boxes,
        "ann_id": ann_ids,
    }
    return {
        "method": "constant predictor",
        "AP": m["AP"],
        "PCK@0.05": m["PCK@0.05"],
        "PCK@0.2": m["PCK@0.2"],
        "swap_rate": view_swap_rates(pred, val_gt, list(ks.flip_pairs)),
        "val_persons": int(kp.shape[0]),
    }


def format_table(rows: list[dict[str, Any]], base: dict[str, Any]) -> str:
    """Markdown table; fractions (AP 3 decimals), swap rate in %."""
    head = (
        "| method | params M | GFLOPs | epochs / steps | train s | samples/s | AP | PCK@0.05 | PCK@0.2 | AP x base "
        "| PCK@0.05 x base | L/R swap % (front / side / back) |"
    )
    lines = [head, "|" + "---|" * 12]

    def sw(s: dict[str, float]) -> str:
        return f"{100 * s['all']:.1f} ({100 * s['front']:.1f} / {100 * s['side']:.1f} / {100 * s['back']:.1f})"

    for r in rows:
        ap_x = r["AP"] / base["AP"] if base["AP"] > 0 else float("inf")
        lines.append(
            f"| {r['method']} | {r['params_M']:.2f} | {r['gflops']:.2f} | {r['epochs']} / {r['steps']} | "
            f"{r['train_seconds']:.0f} | {r['samples_per_s']:.1f} | {r['AP']:.3f} | {r['PCK@0.05']:.3f} | "
            f"{r['PCK@0.2']:.3f} | {ap_x:.0f} | {r['PCK@0.05'] / base['PCK@0.05']:.1f} | "
            f"{sw(r['swap_rate'])} |"
        )
    lines.append(
        f"| constant predictor (baseline) | 0 | 0 | - | - | - | {base['AP']:.4f} | {base['PCK@0.05']:.3f} | "
        f"{base['PCK@0.2']:.3f} | 1 | 1.0 | {sw(base['swap_rate'])} |"
    )
    return "\n".join(lines)


def machine_description() -> str:
    """CPU model, core count, load, Python and torch versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, load {load:.1f} at start, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--epochs", type=int, default=None, help="override the configs' max_epochs (shorter budget)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    parser.add_argument("--minutes", type=float, default=None, help="override the configs' wall-clock cap")
    parser.add_argument(
        "--no-time-cap",
        action="store_true",
        help="no wall-clock cap (a loaded machine would otherwise cut the runs short)",
    )
    parser.add_argument("--val-batches", type=int, default=None, help="validate on this many batches only (smoke runs)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)

    import torch

    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(args.threads)
    machine = machine_description()
    rows = []
    for method in args.methods:
        rows.append(run_method(method, args))
        r = rows[-1]
        print(
            f"{method}: {r['steps']} steps in {r['train_seconds']:.0f} s, AP {r['AP']:.3f}, "
            f"PCK@0.05 {r['PCK@0.05']:.3f} ({r['precision']})",
            file=sys.stderr,
            flush=True,
        )
        if args.json is not None:  # partial results survive an interrupted run
            args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    base = baseline_row(args.methods[0])
    print(f"Machine: {machine}")
    print(
        f"Demo val split: {base['val_persons']} persons (GT boxes), flip test on; budget per method: "
        f"{args.epochs or 'config'} epochs, max steps {args.max_steps or '-'}, "
        f"cap {'none' if args.no_time_cap else (args.minutes or 'config')}"
    )
    print(format_table(rows, base))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows, "baseline": base}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Demo training of the heatmap methods on CPU: untrained vs trained on the synthetic demo people.

For each heatmap method's demo config (``configs/<method>/demo.yaml``; SimpleBaseline, Stacked Hourglass, CPM) this
script builds the model and the ``DemoDataModule`` exactly as ``lightning-pose fit --config`` would (same CLI, W&B
logger and callbacks switched off), validates the untrained model on the demo val split, trains it for a fixed wall
time budget (``--minutes``, Lightning's ``max_time``), validates again and prints PCK@0.2 / PCK@0.05 (bbox-normalised,
fractions) and COCO keypoint AP (GT boxes) before and after, with the training wall time and the number of optimizer
steps. The validation uses the configs' flip test.

Usage::

    python3 benchmarks/demo_training.py --minutes 3
    python3 benchmarks/demo_training.py --minutes 1 --methods simple_baseline --json demo_training.json
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

PROJECT_ROOT = Path(__file__).resolve().parents[1]
METHODS = ("simple_baseline", "hourglass", "cpm")
REPORTED = ("val/PCK@0.2", "val/PCK@0.05", "val/AP")


def build_from_config(config: Path) -> tuple[Any, Any]:
    """``(model, datamodule)`` instantiated from a config through the project's CLI (no logger, no callbacks)."""
    from lightning_pose.cli import run_lightning

    cli = run_lightning(["--config", str(config), "--trainer.logger", "false", "--trainer.callbacks", "[]"], run=False)
    return cli.model, cli.datamodule


def _trainer(**kwargs: Any) -> Any:
    import lightning as L

    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, **kwargs)


def evaluate(model: Any, datamodule: Any) -> dict[str, float]:
    """Validation metrics of ``model`` on the demo val split (exact float64 values kept by the task)."""
    _trainer().validate(model, datamodule=datamodule, verbose=False)
    return dict(model.final_metrics["val"])


def run_method(method: str, minutes: float, seed: int) -> dict[str, Any]:
    """Evaluate, train for ``minutes`` of wall time, evaluate again; returns the figures of one method."""
    import lightning as L

    config = PROJECT_ROOT / "configs" / method / "demo.yaml"
    L.seed_everything(seed, verbose=False)
    model, datamodule = build_from_config(config)
    datamodule.prepare_data()  # generates the demo dataset once (cached)
    params = sum(p.numel() for p in model.parameters())
    before = evaluate(model, datamodule)
    trainer = _trainer(max_time={"seconds": int(round(minutes * 60))}, max_epochs=10_000,
                       check_val_every_n_epoch=10_000)
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    train_seconds = time.perf_counter() - start
    after = evaluate(model, datamodule)
    return {
        "method": method,
        "config": str(config.relative_to(PROJECT_ROOT)),
        "params_M": params / 1e6,
        "input_size": list(model.input_size),
        "train_seconds": train_seconds,
        "steps": int(trainer.global_step),
        "train_samples": len(datamodule.dataset("train")),
        "val_samples": len(datamodule.dataset("val")),
        "before": {k: before.get(k, float("nan")) for k in REPORTED},
        "after": {k: after.get(k, float("nan")) for k in REPORTED},
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the figures (fractions; PCK 3 decimals, AP 4)."""
    head = ("| method | params M | optimizer steps | train s | PCK@0.2 before -> after | PCK@0.05 before -> after "
            "| AP before -> after |")
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        digits = {"val/AP": 4}  # AP of a briefly trained model is tiny; keep it visible
        cells = [f"{r['before'][k]:.{digits.get(k, 3)}f} -> {r['after'][k]:.{digits.get(k, 3)}f}" for k in REPORTED]
        lines.append(f"| {r['method']} | {r['params_M']:.2f} | {r['steps']} | "
                     f"{r['train_seconds']:.0f} | " + " | ".join(cells) + " |")
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
    return (f"{cpu}, {os.cpu_count()} cores, load {load:.1f} at start, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training wall-time budget per method")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be > 0")

    import torch

    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(args.threads)
    machine = machine_description()
    rows = []
    for method in args.methods:
        rows.append(run_method(method, args.minutes, args.seed))
        print(f"{method}: done in {rows[-1]['train_seconds']:.0f} s of training", file=sys.stderr)
    print(f"Machine: {machine}")
    print(f"Budget: {args.minutes:g} min of training per method; demo val split "
          f"({rows[0]['val_samples']} persons), flip test on")
    print(format_table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine, "minutes": args.minutes, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parameter and FLOP report of the heatmap networks next to the published / reference numbers.

MACs are counted like docs/methods.md#model-sizes: ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass at batch 1,
convolution / transposed-convolution / linear (matmul) ops only (BN, ReLU, pooling, additions and upsampling are
ignored), MACs = FLOPs / 2. By default the models are built and run on the ``meta`` device, so nothing is computed and
the report takes seconds; ``--device cpu`` runs real forward passes (same counts, much slower).

Run: ``python3 benchmarks/model_stats.py`` (prints a Markdown table).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_pose.models import ConvolutionalPoseMachine, SimpleBaseline, StackedHourglass  # noqa: E402

# aten ops whose FLOPs are counted (bare names, overloads ignored)
COUNTED_OPS = frozenset({"convolution", "_convolution", "conv2d", "mm", "addmm", "bmm", "baddbmm", "linear"})


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


def _op_name(op: object) -> str:
    """Bare aten op name: ``aten.convolution`` / ``aten.convolution.default`` -> ``convolution``."""
    text = str(getattr(op, "__name__", "") or op)
    parts = [p for p in text.replace("::", ".").split(".") if p and p != "aten"]
    return parts[0] if parts else text


def count_macs(model: nn.Module, input_shape: tuple[int, ...], *, device: str | torch.device = "meta") -> float:
    """Multiply-accumulates of one forward pass on a zero input of ``input_shape`` ``(B, C, H, W)``.

    Counts only convolutions (incl. transposed) and matrix products, as docs/methods.md#model-sizes does; returns MACs (FLOPs / 2).
    The model must already live on ``device``.
    """
    x = torch.zeros(input_shape, device=device)
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    flops = 0
    for op, n in counter.get_flop_counts().get("Global", {}).items():
        name = _op_name(op)
        if name in COUNTED_OPS:
            flops += int(n)
    return flops / 2.0


@dataclass(frozen=True)
class Entry:
    """One row of the report: a model factory, its input ``(H, W)`` and the reference numbers."""

    name: str
    build: Callable[[], nn.Module]
    input_hw: tuple[int, int]
    ref_params_m: float | None
    ref_gmacs: float | None
    source: str


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "Hourglass 8-stack, 256 ch, K=16",
        lambda: StackedHourglass(16, 8),
        (256, 256),
        25.43,
        27.4,
        "docs/methods.md#stacked-hourglass",
    ),
    Entry("Hourglass 4-stack, 256 ch, K=16", lambda: StackedHourglass(16, 4), (256, 256), None, None, "-"),
    Entry(
        "Hourglass 2-stack, 256 ch, K=16",
        lambda: StackedHourglass(16, 2),
        (256, 256),
        6.57,
        8.3,
        "docs/methods.md#stacked-hourglass",
    ),
    Entry(
        "Hourglass 1-stack, 256 ch, K=16",
        lambda: StackedHourglass(16, 1),
        (256, 256),
        3.43,
        5.2,
        "docs/methods.md#stacked-hourglass",
    ),
    Entry(
        "CPM 6-stage mmpose-style (BN), K=16",
        lambda: ConvolutionalPoseMachine(16),
        (368, 368),
        31.23,
        175.4,
        "docs/methods.md#cpm",
    ),
    Entry(
        "CPM 6-stage original (K'=15 bg, centre map, no BN)",
        lambda: ConvolutionalPoseMachine(14, background=True, center_map=True, batch_norm=False),
        (368, 368),
        31.22,
        175.4,
        "docs/methods.md#cpm",
    ),
    Entry(
        "CPM 6-stage mmpose-style (BN), K=17",
        lambda: ConvolutionalPoseMachine(17),
        (256, 192),
        31.30,
        63.7,
        "docs/methods.md#cpm",
    ),
    Entry(
        "SimpleBaseline R50, K=17",
        lambda: SimpleBaseline(17, "resnet50"),
        (256, 192),
        34.00,
        5.43,
        "docs/methods.md#simplebaseline",
    ),
    Entry(
        "SimpleBaseline R50, K=16",
        lambda: SimpleBaseline(16, "resnet50"),
        (256, 256),
        34.00,
        7.24,
        "docs/methods.md#simplebaseline (params quoted for K=17)",
    ),
)


def _ratio(ours: float, ref: float | None) -> str:
    return "-" if ref is None else f"{ours / ref:.4f}"


def _ref(ref: float | None, fmt: str) -> str:
    return "-" if ref is None else format(ref, fmt)


def report(device: str = "meta") -> list[str]:
    """Build every model of :data:`ENTRIES` on ``device`` and return the Markdown table lines."""
    lines = [
        "| model | input HxW | params M (ours) | params M (ref) | ratio "
        "| GMACs (ours) | GMACs (ref) | ratio | ref source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in ENTRIES:
        torch.manual_seed(0)
        with torch.device(device):
            model = entry.build()
        params_m = count_parameters(model) / 1e6
        gmacs = count_macs(model, (1, 3, *entry.input_hw), device=device) / 1e9
        lines.append(
            f"| {entry.name} | {entry.input_hw[0]}x{entry.input_hw[1]} | {params_m:.3f} | "
            f"{_ref(entry.ref_params_m, '.2f')} | {_ratio(params_m, entry.ref_params_m)} | {gmacs:.2f} | "
            f"{_ref(entry.ref_gmacs, '.2f')} | {_ratio(gmacs, entry.ref_gmacs)} | {entry.source} |"
        )
        del model
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="meta", help="device to build/run the models on (default: meta)")
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"device={args.device}"
    )
    for line in report(args.device):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

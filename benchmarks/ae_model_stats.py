"""Parameters and forward MACs of the associative-embedding networks, next to the published figures.

Counted like ``benchmarks/model_stats.py`` (``FlopCounterMode``, one forward pass at batch 1, convolutions incl.
transposed and matmuls only, MACs = FLOPs / 2, models on the ``meta`` device: nothing computed or downloaded).

    python3 benchmarks/ae_model_stats.py [--device cpu]
"""

from __future__ import annotations

import argparse

import torch
from model_stats import count_macs, count_parameters  # same folder (run as a script)

from lightning_pose.models.associative_embedding import HigherHRNetAENet, HourglassAENet

# (name, factory, input (H, W), reference params M, reference GMACs, source)
ENTRIES = (
    (
        "AE Hourglass 4-stack, 256 ch (+128/level), K=17, L=1 (paper)",
        lambda: HourglassAENet(17),
        (512, 512),
        138.9,
        221.0,
        "docs/methods.md#ae-network [computed]",
    ),
    (
        "AE Hourglass 4-stack, K=17, L=1, BN units (mmpose)",
        lambda: HourglassAENet(17, batch_norm=True),
        (512, 512),
        None,
        None,
        "-",
    ),
    (
        "AE Hourglass 1-stack 32 ch, depth 3, stem 16 (demo config)",
        lambda: HourglassAENet(17, num_stacks=1, channels=32, increase=16, depth=3, stem_channels=16, batch_norm=True),
        (128, 128),
        None,
        None,
        "-",
    ),
    (
        "HigherHRNet-style AE, timm hrnet_w32, head 32 ch, 4 blocks",
        lambda: HigherHRNetAENet(17, "hrnet_w32"),
        (512, 512),
        28.6,
        47.9,
        "HigherHRNet paper W32-512 [recalled]",
    ),
    (
        "HigherHRNet-style AE, timm resnet50, head 32 ch",
        lambda: HigherHRNetAENet(17, "resnet50"),
        (512, 512),
        None,
        None,
        "-",
    ),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="meta")
    args = parser.parse_args(argv)
    print("| model | input HxW | params M (ours) | params M (ref) | GMACs (ours) | GMACs (ref) | ref source |")
    print("|---|---|---|---|---|---|---|")
    for name, build, hw, ref_p, ref_g, source in ENTRIES:
        with torch.device(args.device):
            model = build()
        p = count_parameters(model) / 1e6
        g = count_macs(model, (1, 3, *hw), device=args.device) / 1e9
        rp = "-" if ref_p is None else f"{ref_p:.1f}"
        rg = "-" if ref_g is None else f"{ref_g:.1f}"
        print(f"| {name} | {hw[0]}x{hw[1]} | {p:.2f} | {rp} | {g:.2f} | {rg} | {source} |")
        del model


if __name__ == "__main__":
    main()

"""Framework overhead of a training step: ``Trainer.fit`` against a plain PyTorch loop on the same batches.

Both loops train the quickstart model (``configs/quickstart.yaml``: SimpleBaseline, timm ResNet-18 up to its
stride-16 layer3, 2 deconvolutions (128, 64 channels: stride-4 heatmaps), DARK decoding, channels-last, 96x128 input,
batch 32, Adam 2e-3, fp32) on the SAME
pre-built batches (random images, keypoints uniform in the crop, all visible; the heatmap targets are encoded inside ``compute_loss`` in both loops, as in
training). The plain loop is forward -> ``task.compute_loss`` -> ``zero_grad(set_to_none=True)`` -> backward ->
step. The Lightning loop is ``Trainer.fit`` with what a quickstart run has besides validation: the W&B logger
(``WANDB_MODE=disabled``: the logging code paths run, nothing is written), ``log_every_n_steps=10``, the progress
bar, the LR monitor and the project's callbacks (W&B pose images, epoch summary); no validation, no checkpoint.

Rounds alternate (plain, Lightning, plain, ...) so that a load change on a shared machine hits both; the best
round of each is reported (per-step seconds, wall and process CPU), with the ratio ``lightning / plain``.
The first ``--warmup`` steps of every round are excluded (allocator and kernel warm-up).

    python3 benchmarks/step_overhead.py [--steps 30] [--rounds 3] [--warmup 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from lightning_pose.tasks import HeatmapTask  # noqa: E402

INPUT_SIZE = (96, 128)  # (W, H)
BATCH = 32
LR = 2e-3


def make_batches(n: int, k: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    w, h = INPUT_SIZE
    out = []
    for _ in range(n):
        kp = torch.empty(BATCH, k, 3)
        kp[..., 0] = torch.rand(BATCH, k, generator=g) * (w - 1)
        kp[..., 1] = torch.rand(BATCH, k, generator=g) * (h - 1)
        kp[..., 2] = 2.0
        out.append({"image": torch.randn(BATCH, 3, h, w, generator=g), "keypoints": kp})
    return out


def make_task(seed: int = 0) -> HeatmapTask:
    torch.manual_seed(seed)
    network = {
        "class_path": "lightning_pose.models.SimpleBaseline",
        "init_args": {"backbone": "resnet18", "pretrained": False, "feature_index": 3, "deconv_channels": [128, 64]},
    }
    return HeatmapTask(
        network=network,
        keypoint_set="coco",
        input_size=INPUT_SIZE,
        channels_last=True,
        sigma=2.0,
        decode="dark",
        unbiased=True,
        optimizer=lambda params: torch.optim.Adam(params, lr=LR),
    )


class _ListDataset(Dataset):
    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        return self.batches[i]


def _timed_steps(step_fn, batches, warmup: int) -> tuple[float, float]:
    """Run ``step_fn`` on every batch; per-step (wall, cpu) seconds over the steps after ``warmup``."""
    t_wall = t_cpu = 0.0
    for i, b in enumerate(batches):
        if i == warmup:
            t_wall, t_cpu = time.perf_counter(), time.process_time()
        step_fn(b)
    n = len(batches) - warmup
    return (time.perf_counter() - t_wall) / n, (time.process_time() - t_cpu) / n


def plain_round(batches, warmup: int) -> tuple[float, float]:
    task = make_task()
    task.configure_model()  # channels-last weights and inputs, as Trainer.fit applies them
    task.train()
    opt = torch.optim.Adam(task.parameters(), lr=LR)

    def step(b):
        out = task(b["image"])
        loss, _ = task.compute_loss(out, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _timed_steps(step, batches, warmup)


class _StepClock(L.Callback):
    """Per-step times inside ``Trainer.fit``, measured from batch start to batch start (everything Lightning does
    around a step — hooks, logging, progress bar, optimizer wrapper — is inside the interval)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: tuple[float, float] | None = None
        self.end: tuple[float, float] | None = None
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = (time.perf_counter(), time.process_time())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.end = (time.perf_counter(), time.process_time())
        self.steps = trainer.global_step - self.warmup


def lightning_round(batches, warmup: int) -> tuple[float, float]:
    from lightning.pytorch.callbacks import LearningRateMonitor

    from lightning_pose.callbacks.console import EpochSummary
    from lightning_pose.callbacks.wandb_callbacks import WandbPoseCallback
    from lightning_pose.callbacks.wandb_logger import PoseWandbLogger

    task = make_task()
    clock = _StepClock(warmup)
    loader = DataLoader(_ListDataset(batches), batch_size=None, shuffle=False, num_workers=0)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=PoseWandbLogger(project="lp-bench", save_dir=os.environ.get("TMPDIR", "/tmp")),
        callbacks=[WandbPoseCallback(), EpochSummary(), LearningRateMonitor(), clock],
    )
    trainer.fit(task, train_dataloaders=loader)
    assert clock.start and clock.end and clock.steps == len(batches) - warmup, "step clock did not run"
    return (clock.end[0] - clock.start[0]) / clock.steps, (clock.end[1] - clock.start[1]) / clock.steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    k = make_task().num_keypoints
    batches = make_batches(args.steps + args.warmup, k)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, lightning {L.__version__}, "
        f"{args.threads} threads"
    )
    print(
        f"quickstart model, batch {BATCH} at {INPUT_SIZE[0]}x{INPUT_SIZE[1]}, {args.steps} timed steps "
        f"(+{args.warmup} warm-up) per round, {args.rounds} rounds each, alternating"
    )
    plain, light = [], []
    for r in range(args.rounds):
        plain.append(plain_round(batches, args.warmup))
        light.append(lightning_round(batches, args.warmup))
        print(
            f"round {r + 1}: plain {plain[-1][0] * 1e3:.1f} ms/step wall, {plain[-1][1] * 1e3:.1f} ms cpu; "
            f"Trainer.fit {light[-1][0] * 1e3:.1f} ms/step wall, {light[-1][1] * 1e3:.1f} ms cpu"
        )
    bp_w, bp_c = min(p[0] for p in plain), min(p[1] for p in plain)
    bl_w, bl_c = min(x[0] for x in light), min(x[1] for x in light)
    print(f"best plain loop : {bp_w * 1e3:.1f} ms/step wall, {bp_c * 1e3:.1f} ms/step cpu")
    print(f"best Trainer.fit: {bl_w * 1e3:.1f} ms/step wall, {bl_c * 1e3:.1f} ms/step cpu")
    print(f"overhead_wall={(bl_w / bp_w - 1) * 100:+.2f}%  overhead_cpu={(bl_c / bp_c - 1) * 100:+.2f}%")


if __name__ == "__main__":
    main()

"""Model cost figures that make methods comparable: parameters, GFLOPs at the input size, inference images/s.

* parameters: every parameter of the task's modules (trainable or not), as a count.
* GFLOPs: floating-point operations of **one forward pass of one crop** at the configured input size, counted by
  PyTorch's ``FlopCounterMode`` (a multiply-add counts as 2 FLOPs, as in Lightning's model summary), divided by 1e9.
  The flip test, when enabled, doubles the cost at evaluation time; it is not included here.
* images/s: measured throughput of :meth:`PoseTask.predict_keypoints` (forward, flip test when enabled, decoding)
  on the module's current device with a batch of crops, after one warm-up batch. It depends on the machine and on
  its load: compare it between runs made on the same hardware only.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

__all__ = ["count_parameters", "forward_gflops", "inference_images_per_second", "model_cost"]


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (elements) of ``module``."""
    return int(sum(p.numel() for p in module.parameters()))


def _input_for(module: nn.Module, input_size: tuple[int, int], batch: int) -> torch.Tensor:
    try:
        ref = next(module.parameters())
        device, dtype = ref.device, ref.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    width, height = int(input_size[0]), int(input_size[1])
    return torch.zeros(batch, 3, height, width, device=device, dtype=dtype)


@torch.no_grad()
def forward_gflops(module: nn.Module, input_size: tuple[int, int]) -> float:
    """GFLOPs of one forward pass of one ``(W, H) = input_size`` crop (eval mode; training mode is restored)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            module(_input_for(module, input_size, 1))
        return float(counter.get_total_flops()) / 1e9
    finally:
        module.train(was_training)


@torch.no_grad()
def inference_images_per_second(task: Any, input_size: tuple[int, int], batch: int = 4, repeats: int = 2) -> float:
    """Measured images per second of ``task.predict_keypoints`` (batch ``batch``, ``repeats`` timed batches): person
    crops for top-down tasks; for bottom-up tasks (``is_bottomup``, grouping runs per image outside the network)
    the network's forward pass on whole input images."""
    was_training = task.training
    task.eval()
    run = task if getattr(task, "is_bottomup", False) else task.predict_keypoints
    try:
        images = _input_for(task, input_size, batch)
        run(images)  # warm-up (allocations, cudnn autotune)
        if images.is_cuda:
            torch.cuda.synchronize(images.device)
        start = time.perf_counter()
        for _ in range(repeats):
            run(images)
        if images.is_cuda:
            torch.cuda.synchronize(images.device)
        elapsed = time.perf_counter() - start
        return float(batch * repeats / elapsed) if elapsed > 0 else float("nan")
    finally:
        task.train(was_training)


def model_cost(task: Any, measure_speed: bool = True) -> dict[str, float]:
    """``{"params": count, "gflops": G, "images_per_s": rate}`` of a :class:`PoseTask` at its ``input_size``."""
    size = tuple(task.input_size)
    out = {"params": float(count_parameters(task)), "gflops": forward_gflops(task, size)}
    if measure_speed:
        out["images_per_s"] = inference_images_per_second(task, size)
    return out

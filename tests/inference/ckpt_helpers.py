"""Tiny task factories for every method and a helper that writes a real Lightning checkpoint of one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

INPUT_SIZE = (64, 64)


def _factories() -> dict[str, Callable[..., Any]]:
    from lightning_pose.tasks import (
        CPMTask,
        DeepPoseTask,
        HybridTask,
        IntegralRegressionTask,
        SimpleBaselineTask,
        StackedHourglassTask,
    )

    return {
        "simple_baseline": lambda **kw: SimpleBaselineTask(backbone="lcnet_050", deconv_channels=(16, 16, 16), **kw),
        "hourglass": lambda **kw: StackedHourglassTask(num_stacks=2, channels=16, depth=2, stem_channels=8, **kw),
        "cpm": lambda **kw: CPMTask(num_stages=2, channels=8, **kw),
        "deeppose": lambda **kw: DeepPoseTask(backbone="lcnet_050", **kw),
        "deeppose_rle": lambda **kw: DeepPoseTask(backbone="lcnet_050", loss="rle", **kw),
        "deeppose_cascade": lambda **kw: DeepPoseTask(
            backbone="lcnet_050", cascade_stages=1, cascade_crop_size=16, **kw
        ),
        "integral": lambda **kw: IntegralRegressionTask(backbone="lcnet_050", deconv_channels=(16, 16, 16), **kw),
        "hybrid": lambda **kw: HybridTask(
            backbone="lcnet_050", deconv_channels=(16, 16, 16), refine_channels=8, dilations=(1, 2), **kw
        ),
    }


METHODS = ("simple_baseline", "hourglass", "cpm", "deeppose", "deeppose_rle", "deeppose_cascade", "integral", "hybrid")


def make_task(method: str, keypoint_set: Any = "coco", input_size: tuple[int, int] = INPUT_SIZE, seed: int = 0) -> Any:
    import torch

    torch.manual_seed(seed)
    return _factories()[method](keypoint_set=keypoint_set, input_size=input_size)


def save_checkpoint(task: Any, path: Path) -> Path:
    """Write ``task`` as Lightning does at the end of training (hooks, hparams, loops), without training."""
    import lightning as L

    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
        enable_model_summary=False,
    )
    trainer.strategy.connect(task)
    trainer.save_checkpoint(str(path))
    return Path(path)

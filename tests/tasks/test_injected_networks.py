"""Injected networks (``network: {class_path, init_args}``) for the regression, hybrid and bottom-up tasks.

One table of network specs drives every test: for each task (DeepPose plain / RLE / cascade, integral regression,
hybrid, Associative Embedding with the hourglass and the timm head) the injected form and the older keyword form
build the same network (same parameters, same outputs for the same seed); a checkpoint of the injected form
reloads from the checkpoint alone; giving both forms is one clear error. CPU-sized networks (ResNet-18, 48x64 or
128x96 inputs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import pytest
import torch

from lightning_pose.errors import ConfigError
from lightning_pose.tasks import AssociativeEmbeddingTask
from lightning_pose.tasks.hybrid import HybridTask
from lightning_pose.tasks.regression import DeepPoseTask, IntegralRegressionTask

TOP_DOWN = dict(keypoint_set="coco", input_size=(48, 64))
BOTTOM_UP = dict(keypoint_set="coco", input_size=(128, 96))

#: name -> (task class, task arguments, network spec, the same network in the older keyword form)
NETWORKS: dict[str, tuple[type, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "deeppose": (
        DeepPoseTask,
        {**TOP_DOWN, "loss": "smooth_l1"},
        {"class_path": "lightning_pose.models.DeepPoseRegressor", "init_args": {"backbone": "resnet18", "hidden": 32}},
        {"backbone": "resnet18", "hidden": 32},
    ),
    "deeppose_rle": (
        DeepPoseTask,
        {**TOP_DOWN, "loss": "rle"},
        {
            "class_path": "lightning_pose.models.DeepPoseRegressor",
            "init_args": {"backbone": "resnet18", "rle": False},
        },  # the loss sets rle
        {"backbone": "resnet18"},
    ),
    "deeppose_cascade": (
        DeepPoseTask,
        {**TOP_DOWN, "cascade_stages": 1, "cascade_crop_size": 16},
        {"class_path": "lightning_pose.models.DeepPoseRegressor", "init_args": {"backbone": "resnet18"}},
        {"backbone": "resnet18"},
    ),
    "integral": (
        IntegralRegressionTask,
        {**TOP_DOWN, "beta": 5.0, "heatmap_loss_weight": 1.0},
        {
            "class_path": "lightning_pose.models.SimpleBaseline",
            "init_args": {"backbone": "resnet18", "deconv_channels": [16, 16, 16]},
        },
        {"backbone": "resnet18", "deconv_channels": (16, 16, 16)},
    ),
    "hybrid": (
        HybridTask,
        {**TOP_DOWN, "decode_mode": "fuse"},
        {
            "class_path": "lightning_pose.models.HybridPoseNet",
            "init_args": {
                "backbone": "resnet18",
                "deconv_channels": [16, 16, 16],
                "refine_channels": 16,
                "dilations": [1, 2],
            },
        },
        {"backbone": "resnet18", "deconv_channels": (16, 16, 16), "refine_channels": 16, "dilations": (1, 2)},
    ),
    "ae_hourglass": (
        AssociativeEmbeddingTask,
        {**BOTTOM_UP, "tag_dim": 2},
        {
            "class_path": "lightning_pose.models.associative_embedding.HourglassAENet",
            "init_args": {
                "num_stacks": 1,
                "channels": 16,
                "increase": 8,
                "depth": 2,
                "stem_channels": 8,
                "batch_norm": True,
                "tag_dim": 1,
            },
        },  # the task's tag_dim wins
        {"num_stacks": 1, "channels": 16, "increase": 8, "depth": 2, "stem_channels": 8, "batch_norm": True},
    ),
    "ae_timm_head": (
        AssociativeEmbeddingTask,
        {**BOTTOM_UP},
        {
            "class_path": "lightning_pose.models.associative_embedding.HigherHRNetAENet",
            "init_args": {"backbone": "resnet18", "channels": 16, "num_blocks": 1},
        },
        {"backbone": "resnet18", "head_channels": 16, "num_blocks": 1},
    ),
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _build(name: str, injected: bool) -> Any:
    cls, task_args, spec, legacy = NETWORKS[name]
    torch.manual_seed(0)
    return cls(**task_args, **({"network": spec} if injected else legacy)).eval()


def _images(task: Any) -> torch.Tensor:
    w, h = task.input_size
    return torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(1))


def _flat(outputs: Any) -> list[torch.Tensor]:
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    return [t for o in outputs for t in ((o.heatmaps, o.tags) if hasattr(o, "heatmaps") else (o,)) if t is not None]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_injected_and_keyword_networks_are_the_same(name: str) -> None:
    injected, legacy = _build(name, True), _build(name, False)
    assert type(injected.network) is type(legacy.network)
    shapes = {k: tuple(v.shape) for k, v in injected.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in legacy.state_dict().items()}
    x = _images(injected)
    with torch.no_grad():
        for a, b in zip(_flat(injected(x)), _flat(legacy(x)), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the stored hyper-parameters hold the spec, not the older arguments
    assert injected.hparams["network"]["class_path"].endswith(NETWORKS[name][2]["class_path"].rpartition(".")[2])
    assert not set(NETWORKS[name][3]) & set(injected.hparams)
    assert legacy.hparams["network"]["class_path"].endswith(type(legacy.network).__name__)
    if "backbone" in NETWORKS[name][2]["init_args"]:
        assert injected.backbone == legacy.backbone == "resnet18"


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_injected_network_checkpoint_reloads_from_the_checkpoint_alone(name: str, tmp_path: Path) -> None:
    task = _build(name, True)
    ckpt: dict[str, Any] = {
        "state_dict": task.state_dict(),
        "hyper_parameters": dict(task.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    task.on_save_checkpoint(ckpt)
    path = tmp_path / f"{name}.ckpt"
    torch.save(ckpt, path)
    loaded = type(task).load_from_checkpoint(path, map_location="cpu")
    assert type(loaded.network) is type(task.network) and loaded.network_name == task.network_name
    x = _images(task)
    with torch.no_grad():
        for a, b in zip(_flat(task(x)), _flat(loaded.eval()(x)), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_and_keyword_arguments_together_are_refused(name: str) -> None:
    cls, task_args, spec, legacy = NETWORKS[name]
    with pytest.raises(ConfigError, match=r"either as model.init_args.network or with the old arguments"):
        cls(**task_args, network=spec, **legacy)


def test_task_owned_network_arguments_override_the_spec() -> None:
    rle = _build("deeppose_rle", True)
    assert rle.network.rle and "sigma" in rle(_images(rle))
    ae = _build("ae_hourglass", True)
    assert ae.network.tag_dim == 2

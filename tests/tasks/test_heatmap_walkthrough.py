"""Adding a heatmap network touches no library file: a network defined here (or in any importable module) is trained
through :class:`~lightning_pose.tasks.HeatmapTask`, validated, checkpointed and re-loaded from the checkpoint alone;
the same from a YAML config whose ``network.class_path`` names a module on ``sys.path``. The historical task classes
(``SimpleBaselineTask``, ``StackedHourglassTask``, ``CPMTask``) keep loading their checkpoints, older ones (without
the stored ``network``) included.

Keypoints are in the **input frame** (0-based pixels of the network input, ``(W_in, H_in)`` width first); images are
``(B, 3, H_in, W_in)``; ``crop_to_image`` is the identity here (input frame = image frame).
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

torch.set_num_threads(1)

W_IN, H_IN = 48, 64  # network input (width, height) in pixels
K = 17  # COCO keypoints


class TinyHeatNet(nn.Module):
    """A new heatmap network, known to no library file: two stride-2 convolutions and a 1x1 head.

    Args:
        num_keypoints: K output maps (the task passes it first).
        width: hidden channels.

    Output: ``[maps (B, K, H/4, W/4)]`` (one stage; heatmap frame at stride 4). No ``method_name`` attribute, so the
    method is named after the class (``tiny_heat_net``).
    """

    stride = 4

    def __init__(self, num_keypoints: int, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, num_keypoints, 1),
        )

    def forward(self, images: Tensor) -> list[Tensor]:
        return [self.body(images)]


def _fixed_samples(n: int = 4, seed: int = 0) -> list[dict[str, Tensor]]:
    """Top-down sample dicts (the keys the training/validation/predict steps read) with keypoints inside the crop."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        xy = torch.rand(K, 2, generator=g) * torch.tensor([W_IN - 13.0, H_IN - 13.0]) + 6.0
        keypoints = torch.cat([xy, torch.full((K, 1), 2.0)], dim=1)
        samples.append(
            {
                "image": torch.randn(3, H_IN, W_IN, generator=g),
                "keypoints": keypoints,
                "crop_to_image": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64),
                "gt_keypoints": keypoints.double(),  # image frame = input frame here
                "bbox": torch.tensor([0.0, 0.0, W_IN, H_IN], dtype=torch.float64),
                "sample_id": torch.tensor(len(samples)),
            }
        )
    return samples


def _loader(samples: list[dict[str, Tensor]]) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(samples, batch_size=len(samples), shuffle=False)


def _trainer(**kwargs: Any) -> Any:
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def test_method_name_defaults_to_the_class_name_in_snake_case() -> None:
    from lightning_pose.tasks.heatmap import network_method_name

    assert network_method_name(TinyHeatNet) == "tiny_heat_net"
    assert network_method_name({"class_path": "lightning_pose.models.ConvolutionalPoseMachine"}) == "cpm"
    assert network_method_name(None) == "heatmap"


def test_new_network_trains_validates_checkpoints_and_reloads_alone(tmp_path: Path) -> None:
    """Walk-through of issue 10: a network defined in this test module only, given to HeatmapTask."""
    import lightning_pose
    from lightning_pose.tasks import HeatmapTask, PoseTask

    torch.manual_seed(0)
    task = HeatmapTask(
        network=TinyHeatNet,
        keypoint_set="coco",
        input_size=(W_IN, H_IN),
        sigma=1.5,
        optimizer=lambda params: torch.optim.Adam(params, lr=3e-3),
    )
    assert isinstance(task.network, TinyHeatNet) and task.method_name == "tiny_heat_net"
    assert task.hparams["method"] == "tiny_heat_net" and task.network_name == "TinyHeatNet"
    assert task.codec.heatmap_size == (W_IN // 4, H_IN // 4)
    samples = _fixed_samples()
    batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    outputs = task(batch["image"])
    assert len(outputs) == 1 and outputs[0].shape == (4, K, H_IN // 4, W_IN // 4)

    # a few optimiser steps on the fixed batch through the task's own loss: finite and decreasing
    optimizer = task.configure_optimizers()
    task.train()
    losses = []
    for _ in range(6):
        loss, parts = task.compute_loss(task(batch["image"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        assert math.isfinite(losses[-1]) and float(parts["loss_last_stage"]) == pytest.approx(losses[-1])
    assert losses[-1] < 0.9 * losses[0], losses

    # Lightning fit (2 steps) + validate (bbox PCK: no datamodule here), then a checkpoint as ModelCheckpoint writes
    from lightning_pose.metrics.pck import PCK

    task.set_metrics("val", {"pck": PCK(task.keypoint_set, thresholds=(0.1, 0.2), normalizer="bbox")})
    trainer = _trainer(max_steps=2, limit_val_batches=1)
    trainer.fit(task, train_dataloaders=_loader(samples), val_dataloaders=_loader(samples))
    assert trainer.global_step == 2 and math.isfinite(float(trainer.callback_metrics["train/loss"]))
    val = trainer.validate(task, dataloaders=_loader(samples), verbose=False)
    assert math.isfinite(val[0]["val/loss"]) and 0.0 <= val[0]["val/PCK@0.1"] <= val[0]["val/PCK@0.2"] <= 1.0
    path = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(str(path))

    meta = torch.load(path, weights_only=True)["lightning_pose"]
    assert meta["class_path"] == "lightning_pose.tasks.heatmap.HeatmapTask"
    assert meta["init_args"]["network"] == {"class_path": f"{__name__}.TinyHeatNet", "init_args": {}}
    assert meta["init_args"]["sigma"] == 1.5

    task.eval()
    want = task.predict_keypoints(batch["image"])
    for loaded in (PoseTask.load_from_checkpoint(path), HeatmapTask.load_from_checkpoint(path)):
        assert type(loaded) is HeatmapTask and isinstance(loaded.network, TinyHeatNet) and not loaded.training
        assert loaded.method_name == "tiny_heat_net" and loaded.codec.sigma == 1.5
        got = loaded.predict_keypoints(batch["image"])
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    predictor = lightning_pose.load(path)
    coords, scores = predictor.predict_crops(batch["image"].numpy())
    assert coords.shape == (4, K, 2) and scores.shape == (4, K)
    assert torch.allclose(torch.from_numpy(coords), want[0].double()) and torch.allclose(
        torch.from_numpy(scores), want[1].double()
    )


def _write_network_module(folder: Path, name: str) -> None:
    (folder / f"{name}.py").write_text(
        textwrap.dedent('''
        """A user's heatmap network in their own module (stride 8, one stage)."""
        from torch import nn


        class YamlHeatNet(nn.Module):
            stride = 8
            method_name = "yaml_heat"

            def __init__(self, num_keypoints: int, width: int = 4, depth: int = 3) -> None:
                super().__init__()
                layers, c = [], 3
                for _ in range(depth):
                    layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.ReLU()]
                    c = width
                self.body = nn.Sequential(*layers, nn.Conv2d(width, num_keypoints, 1))

            def forward(self, images):
                return [self.body(images)]
    ''')
    )


def _yaml_config(folder: Path, module: str) -> Path:
    cfg = folder / "user.yaml"
    cfg.write_text(
        textwrap.dedent(f"""
        seed_everything: 0
        trainer:
          accelerator: cpu
          devices: 1
          logger: false
          enable_progress_bar: false
          enable_model_summary: false
        model:
          class_path: lightning_pose.tasks.HeatmapTask
          init_args:
            network:
              class_path: {module}.YamlHeatNet
              init_args:
                width: 6
            sigma: 1.0
        data:
          class_path: DemoDataModule
          init_args:
            num_train: 8
            num_val: 4
            image_size: [96, 96]
            input_size: [48, 64]
            batch_size: 4
            num_workers: 0
    """)
    )
    return cfg


def test_yaml_config_injects_a_network_from_a_user_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, demo_cache: Any
) -> None:
    """``network.class_path`` pointing at a module on sys.path: --print_config resolves it, a fast_dev_run fit
    trains it, and its checkpoint reloads from the checkpoint alone."""
    import yaml

    from lightning_pose.cli import main, run_lightning
    from lightning_pose.tasks import HeatmapTask, PoseTask

    module = "lp_user_heatnets"
    _write_network_module(tmp_path, module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    cfg = _yaml_config(tmp_path, module)

    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(cfg), "--print_config"])
    assert exc.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)["model"]
    assert resolved["class_path"] == "lightning_pose.tasks.HeatmapTask"
    assert resolved["init_args"]["network"] == {
        "class_path": f"{module}.YamlHeatNet",
        "init_args": {"width": 6, "depth": 3},
    }

    cli = run_lightning(["fit", "--config", str(cfg), "--trainer.fast_dev_run=true"])
    task = cli.model
    assert type(task) is HeatmapTask and type(task.network).__module__ == module
    assert task.method_name == "yaml_heat" and task.codec.heatmap_size == (6, 8)
    assert task.network.body[0].out_channels == 6
    assert math.isfinite(float(cli.trainer.callback_metrics["train/loss"]))
    path = tmp_path / "user.ckpt"
    cli.trainer.save_checkpoint(str(path))
    loaded = PoseTask.load_from_checkpoint(path)
    assert type(loaded) is HeatmapTask and type(loaded.network).__name__ == "YamlHeatNet"
    images = torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    task.eval()
    want, got = task.predict_keypoints(images), loaded.predict_keypoints(images)
    assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])


#: the historical task classes with tiny settings (thin subclasses of HeatmapTask)
LEGACY = {
    "simple_baseline": (
        "SimpleBaselineTask",
        {"backbone": "lcnet_050", "deconv_channels": (16, 16, 16), "pretrained": False},
    ),
    "hourglass": ("StackedHourglassTask", {"num_stacks": 2, "channels": 16, "depth": 2, "stem_channels": 8}),
    "cpm_background": (
        "CPMTask",
        {"num_stages": 2, "channels": 8, "background": True, "batch_norm": False, "center_map": True},
    ),
}


@pytest.mark.parametrize("method", sorted(LEGACY))
@pytest.mark.parametrize("age", ["current", "before_network_hparam"])
def test_legacy_task_checkpoints_still_load(method: str, age: str, tmp_path: Path) -> None:
    """Checkpoints of SimpleBaselineTask / StackedHourglassTask / CPMTask load with their class, HeatmapTask,
    PoseTask and ``lightning_pose.load``, also when written before the ``network`` hyper-parameter existed."""
    import lightning_pose
    import lightning_pose.tasks as tasks
    from lightning_pose.tasks import HeatmapTask, PoseTask

    cls_name, args = LEGACY[method]
    cls = getattr(tasks, cls_name)
    torch.manual_seed(0)
    task = cls(keypoint_set="coco", input_size=(W_IN, H_IN), **args).eval()
    trainer = _trainer()
    trainer.strategy.connect(task)
    path = tmp_path / f"{method}.ckpt"
    trainer.save_checkpoint(str(path))
    if age == "before_network_hparam":  # as written by the version with `_net_args` (no stored network)
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["hyper_parameters"].pop("network")["class_path"].endswith(type(task.network).__name__)
        del ckpt["lightning_pose"]["init_args"]["network"]
        torch.save(ckpt, path)
    images = torch.randn(2, 3, H_IN, W_IN, generator=torch.Generator().manual_seed(3))
    want = task.predict_keypoints(images)
    for loader in (cls.load_from_checkpoint, HeatmapTask.load_from_checkpoint, PoseTask.load_from_checkpoint):
        loaded = loader(path)
        assert type(loaded) is cls and loaded.method_name == task.method_name
        assert loaded.background == task.background
        got = loaded.predict_keypoints(images)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    coords, _ = lightning_pose.load(path).predict_crops(images.numpy())
    assert torch.allclose(torch.from_numpy(coords), want[0].double())


def test_predict_cli_runs_a_heatmap_task_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``lightning-pose predict`` on a HeatmapTask checkpoint of a network defined in this module (checkpoint
    alone, no config): one person per image, 17 keypoints inside the image."""
    import cv2
    import numpy as np

    from lightning_pose.cli import main
    from lightning_pose.tasks import HeatmapTask

    torch.manual_seed(0)
    task = HeatmapTask(network=TinyHeatNet, keypoint_set="coco", input_size=(W_IN, H_IN)).eval()
    trainer = _trainer()
    trainer.strategy.connect(task)
    ckpt = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(str(ckpt))
    image = (np.random.default_rng(0).random((80, 60, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "person.png"), image)
    out = tmp_path / "out"
    try:
        main(
            [
                "predict",
                "--ckpt_path",
                str(ckpt),
                "--source",
                str(tmp_path / "person.png"),
                "--out",
                str(out),
                "--no-overlays",
            ]
        )
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    doc = json.loads((out / "predictions.json").read_text())
    assert [(im["file_name"], im["width"], im["height"]) for im in doc["images"]] == [("person.png", 60, 80)]
    assert len(doc["annotations"]) == 1  # the whole image is the person box
    kp = np.asarray(doc["annotations"][0]["keypoints"], dtype=float).reshape(K, 3)
    assert np.isfinite(kp).all()
    # keypoints lie in the padded (1.25) crop box around the whole-image box (crop_to_image applied)
    side = 1.25 * 80 / 2 + 1
    assert (np.abs(kp[:, 0] - 30) <= side).all() and (np.abs(kp[:, 1] - 40) <= side).all()

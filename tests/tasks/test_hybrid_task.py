"""Unit tests of ``HybridTask`` (part detection + localisation): losses, decode modes, flip merge.

Frames: heatmaps are at stride 4 (ResNet-18 with three deconvolutions); heatmap pixel ``(i, j)`` stands for input pixel
``(4 i, 4 j)`` (convention A); ``coords`` are normalised input-frame coordinates ``(x / W_in, y / H_in)``; every decode
mode returns input-frame pixels ``(B, K, 2)`` and scores ``(B, K)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from lightning_pose.tasks.hybrid import HybridTask

INPUT_SIZE = (48, 64)  # (W_in, H_in) -> heatmaps 12 x 16 (W_h x H_h)
STRIDE = 4
K = 17


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


#: the tiny network every test injects (test_injected_networks.py checks it equals the keyword form)
NETWORK = {
    "class_path": "lightning_pose.models.HybridPoseNet",
    "init_args": {"backbone": "resnet18", "deconv_channels": [16, 16, 16], "refine_channels": 16, "dilations": [1, 2]},
}


def _task(**kwargs) -> HybridTask:
    torch.manual_seed(0)
    args = dict(network=NETWORK, keypoint_set="coco", input_size=INPUT_SIZE)
    args.update(kwargs)
    return HybridTask(**args)


def _batch(batch_size: int = 3, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    w, h = INPUT_SIZE
    xy = torch.rand(batch_size, K, 2, generator=g) * torch.tensor([w - 9.0, h - 9.0]) + 4.0
    return {
        "image": torch.randn(batch_size, 3, h, w, generator=g),
        "keypoints": torch.cat((xy, torch.full((batch_size, K, 1), 2.0)), dim=-1),
    }


def _peak_map(col: int, row: int, height: float = 1.0) -> Tensor:
    """(H_h, W_h) Gaussian (sigma 1 heatmap px) centred exactly on heatmap pixel (col, row): zero quarter offset."""
    w_h, h_h = INPUT_SIZE[0] // STRIDE, INPUT_SIZE[1] // STRIDE
    xs = torch.arange(w_h, dtype=torch.float32)[None, :]
    ys = torch.arange(h_h, dtype=torch.float32)[:, None]
    return height * torch.exp(-((xs - col) ** 2 + (ys - row) ** 2) / 2.0)


def _hand_outputs() -> tuple[dict[str, Tensor], dict[str, tuple[float, float]]]:
    """Outputs whose branches point at different, known places (input px) for every joint."""
    w, h = INPUT_SIZE
    det = torch.full((1, K, h // STRIDE, w // STRIDE), -8.0)
    reg = torch.zeros(1, K, h // STRIDE, w // STRIDE)
    det[0, :] = -8.0 + 16.0 * _peak_map(3, 5)  # logits: detection peak at heatmap (3, 5) -> input (12, 20)
    reg[0, :] = 0.9 * _peak_map(7, 9)  # localisation peak at heatmap (7, 9) -> input (28, 36)
    coords = torch.tensor([30.0 / w, 40.0 / h]).expand(1, K, 2).clone()  # soft-argmax branch: input (30, 40)
    expected = {
        "detection": (12.0, 20.0),
        "heatmap": (28.0, 36.0),
        "coords": (30.0, 40.0),
        "fuse": (0.5 * (28.0 + 30.0), 0.5 * (36.0 + 40.0)),
    }
    return {"det": det, "reg": reg, "coords": coords}, expected


# ----------------------------------------------------------------------------------------------- decode
@pytest.mark.parametrize("mode", ["fuse", "heatmap", "coords", "detection"])
def test_decode_modes_return_the_hand_computed_input_frame_coords(mode: str) -> None:
    task = _task(decode_mode=mode)
    outputs, expected = _hand_outputs()
    coords, scores = task.decode(outputs)
    assert coords.shape == (1, K, 2) and scores.shape == (1, K)
    torch.testing.assert_close(coords, torch.tensor(expected[mode]).expand(1, K, 2), rtol=0, atol=1e-4)
    det_peak = torch.sigmoid(torch.tensor(8.0)).item()
    expected_score = {"detection": det_peak, "heatmap": 0.9, "coords": 0.9, "fuse": 0.9 * det_peak}[mode]
    torch.testing.assert_close(scores, torch.full((1, K), expected_score), rtol=0, atol=1e-5)


def test_fuse_of_two_identical_branches_equals_either() -> None:
    task = _task(decode_mode="fuse")
    outputs, _ = _hand_outputs()
    w, h = INPUT_SIZE
    outputs["coords"] = torch.tensor([28.0 / w, 36.0 / h]).expand(1, K, 2).clone()  # = the heatmap branch
    fused, _ = task.decode(outputs)
    task.decode_mode = "heatmap"
    heat, _ = task.decode(outputs)
    task.decode_mode = "coords"
    soft, _ = task.decode(outputs)
    torch.testing.assert_close(heat, soft, rtol=0, atol=1e-4)
    torch.testing.assert_close(fused, heat, rtol=0, atol=1e-4)


@pytest.mark.parametrize("mode", ["fuse", "heatmap", "coords", "detection"])
def test_decode_modes_on_network_outputs_are_input_frame_coords(mode: str) -> None:
    task = _task(decode_mode=mode).eval()
    images = _batch(batch_size=2)["image"]
    for flip in (False, True):
        coords, scores = task.predict_keypoints(images, flip_test=flip)
        assert coords.shape == (2, K, 2) and scores.shape == (2, K)
        assert torch.isfinite(coords).all() and torch.isfinite(scores).all()
        w, h = INPUT_SIZE
        assert (coords[..., 0] >= -1).all() and (coords[..., 0] <= w).all()
        assert (coords[..., 1] >= -1).all() and (coords[..., 1] <= h).all()


def test_invalid_decode_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="decode_mode"):
        _task(decode_mode="argmax")


# ----------------------------------------------------------------------------------------------- flip merge
def test_flip_merge_of_mirror_symmetric_outputs_keeps_the_coords() -> None:
    """Outputs of the mirrored image that are the exact mirror of the direct ones decode to the direct coords."""
    task = _task(decode_mode="coords")
    w = INPUT_SIZE[0]
    outputs, _ = _hand_outputs()
    flip = task.flip_indices
    # the mirrored image's coordinates: u -> (W - 1) / W - u, joints swapped with their pairs
    mirrored = outputs["coords"][:, flip].clone()
    mirrored[..., 0] = (w - 1) / w - mirrored[..., 0]
    flipped = {"det": outputs["det"], "reg": outputs["reg"], "coords": mirrored}
    merged = task.merge_flip(outputs, flipped)
    coords, _ = task.decode(merged)
    torch.testing.assert_close(coords, torch.tensor([30.0, 40.0]).expand(1, K, 2), rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------------------------- losses
def test_loss_is_the_weighted_sum_of_its_parts() -> None:
    task = _task(det_weight=2.0, reg_weight=500.0, coord_weight=3.0).train()
    batch = _batch()
    loss, parts = task.compute_loss(task(batch["image"]), batch)
    expected = 2.0 * parts["loss_det"] + 500.0 * parts["loss_reg"] + 3.0 * parts["loss_coords"]
    torch.testing.assert_close(loss.detach(), expected)


@pytest.mark.parametrize(
    "weights, present",
    [
        ({"reg_weight": 0.0, "coord_weight": 0.0}, {"loss_det"}),
        ({"det_weight": 0.0}, {"loss_reg", "loss_coords"}),
        ({}, {"loss_det", "loss_reg", "loss_coords"}),
    ],
)
def test_ablation_weights_switch_the_loss_terms(weights: dict, present: set) -> None:
    task = _task(**weights)
    batch = _batch()
    _, parts = task.compute_loss(task(batch["image"]), batch)
    assert set(parts) == present


def test_loss_decreases_on_a_fixed_batch() -> None:
    task = _task().train()
    batch = _batch()
    opt = torch.optim.Adam(task.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss, _ = task.compute_loss(task(batch["image"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses
    assert max(losses[-3:]) < losses[0], losses


def test_detection_only_training_leaves_the_localisation_head_without_gradient() -> None:
    """det-only weights: the localisation output conv gets no gradient; the detector does."""
    task = _task(reg_weight=0.0, coord_weight=0.0).train()
    batch = _batch()
    loss, _ = task.compute_loss(task(batch["image"]), batch)
    loss.backward()
    assert task.network.reg_out.weight.grad is None or float(task.network.reg_out.weight.grad.abs().sum()) == 0.0
    assert float(task.network.det_out.weight.grad.abs().sum()) > 0


# ----------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "config, monitor, input_size",
    [
        ("hybrid/mpii.yaml", "val/PCKh@0.5", (256, 256)),
        ("hybrid/coco.yaml", "val/AP", (192, 256)),
        ("hybrid/aic.yaml", "val/AIC_score", (192, 256)),
        ("hybrid/demo.yaml", "val/AP", (96, 128)),
    ],
)
def test_shipped_config_instantiates(config: str, monitor: str, input_size: tuple, tmp_path, monkeypatch) -> None:
    from lightning_pose.cli import run_lightning

    monkeypatch.chdir(tmp_path)
    project = Path(__file__).resolve().parents[2]
    cli = run_lightning(
        [
            "--config",
            str(project / "configs" / config),
            "--model.init_args.network.init_args.pretrained",
            "false",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
        ],
        run=False,
    )
    assert type(cli.model).__name__ == "HybridTask"
    assert cli.model.input_size == input_size
    assert cli.model.num_keypoints == cli.datamodule.num_keypoints
    assert cli.trainer.checkpoint_callback.monitor == monitor
    assert (cli.model.det_weight, cli.model.reg_weight, cli.model.coord_weight) == (1.0, 1000.0, 1.0)
    assert cli.model.decode_mode == "fuse"
    assert cli.model.network.stride == 4

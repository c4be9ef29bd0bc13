"""Unit tests of the coordinate-regression LightningModules (``DeepPoseTask``, ``IntegralRegressionTask``).

Small CPU sizes (ResNet-18, 64x48 inputs, batches of 2-4), no Trainer: the tasks' own ``compute_loss`` /
``merge_flip`` / ``decode`` are exercised against hand-computed references.

Frames: regression outputs are normalised input-frame coordinates ``u = x / W_in`` (``x`` 0-based input pixels,
pixel centres at integers), so the mirror image of ``u`` is ``(W_in - 1) / W_in - u``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from lightning_pose.skeletons import get_keypoint_set
from lightning_pose.tasks.regression import DeepPoseTask, IntegralRegressionTask

INPUT_SIZE = (48, 64)  # (W_in, H_in)
#: the networks the tests inject (tests/tasks/test_injected_networks.py checks they equal the keyword forms)
REGRESSOR = {"class_path": "lightning_pose.models.DeepPoseRegressor", "init_args": {"backbone": "resnet18"}}


def _simple_baseline(*deconv_channels: int) -> dict:
    return {
        "class_path": "lightning_pose.models.SimpleBaseline",
        "init_args": {"backbone": "resnet18", "deconv_channels": list(deconv_channels)},
    }


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _batch(batch_size: int = 4, num_keypoints: int = 17, seed: int = 0) -> dict[str, Tensor]:
    """A fixed batch: random images and random visible keypoints inside the input frame (input px)."""
    g = torch.Generator().manual_seed(seed)
    w, h = INPUT_SIZE
    xy = torch.rand(batch_size, num_keypoints, 2, generator=g) * torch.tensor([w - 9.0, h - 9.0]) + 4.0
    vis = torch.full((batch_size, num_keypoints, 1), 2.0)
    return {
        "image": torch.randn(batch_size, 3, h, w, generator=g),
        "keypoints": torch.cat((xy, vis), dim=-1),
    }


def _losses_over_steps(task: nn.Module, batch: dict[str, Tensor], steps: int, lr: float) -> list[float]:
    torch.manual_seed(0)
    task.train()
    opt = torch.optim.Adam(task.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss, parts = task.compute_loss(task(batch["image"]), batch)
        assert all(torch.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


# ----------------------------------------------------------------------------------------------- loss decreases
@pytest.mark.parametrize("loss", ["smooth_l1", "l1", "l2", "rle"])
def test_deeppose_loss_decreases_on_a_fixed_batch(loss: str) -> None:
    torch.manual_seed(0)
    task = DeepPoseTask(network=REGRESSOR, loss=loss, keypoint_set="coco", input_size=INPUT_SIZE)
    losses = _losses_over_steps(task, _batch(), steps=8, lr=1e-3)
    assert losses[-1] < losses[0], losses
    # the last three steps all below the start: a steady decrease, not one lucky step
    assert max(losses[-3:]) < losses[0], losses


def test_integral_loss_decreases_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    task = IntegralRegressionTask(
        network=_simple_baseline(32, 32, 32), heatmap_loss_weight=1.0, keypoint_set="coco", input_size=INPUT_SIZE
    )
    losses = _losses_over_steps(task, _batch(), steps=8, lr=1e-3)
    assert losses[-1] < losses[0], losses
    assert max(losses[-3:]) < losses[0], losses


def test_deeppose_loss_matches_hand_computed_smooth_l1() -> None:
    """The loss of given outputs equals the masked SmoothL1 of the normalised targets computed by hand."""
    task = DeepPoseTask(network=REGRESSOR, loss="smooth_l1", keypoint_set="coco", input_size=INPUT_SIZE)
    batch = _batch(batch_size=2)
    batch["keypoints"][1, 3, 2] = 0.0  # one unlabelled joint: weight 0
    coords = torch.full((2, 17, 2), 0.5)
    loss, _ = task.compute_loss({"coords": coords}, batch)
    w, h = INPUT_SIZE
    target = batch["keypoints"][..., :2] / torch.tensor([w, h])
    d = (coords - target).abs()
    elem = torch.where(d < 1.0, 0.5 * d * d, d - 0.5)
    elem[1, 3] = 0.0
    expected = elem.sum() / elem.numel()
    torch.testing.assert_close(loss, expected)


# ----------------------------------------------------------------------------------------------- flip test
class _MirrorCentroidNet(nn.Module):
    """Equivariant toy regressor: joint ``k`` = intensity centroid of image channel ``group[k]``.

    Pairs (k, flip_indices[k]) read the same channel, so the prediction on the mirrored image is exactly the
    mirrored prediction with the pairs swapped. Centroid over pixel centres ``x = 0..W-1``, normalised by ``W``.
    """

    def __init__(self, flip_indices: list[int], *, symmetric: bool = True, rle: bool = False) -> None:
        super().__init__()
        self.rle = rle
        k = len(flip_indices)
        group = [min(i, flip_indices[i]) % 3 for i in range(k)] if symmetric else [i % 3 for i in range(k)]
        self.register_buffer("group", torch.tensor(group))
        self.scale = nn.Parameter(torch.ones(()))  # so that the task has a parameter

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        b, _, h, w = images.shape
        weights = images.exp()[:, self.group] * self.scale  # (B, K, H, W) > 0
        total = weights.sum(dim=(-2, -1))
        xs = torch.arange(w, dtype=images.dtype)
        ys = torch.arange(h, dtype=images.dtype)
        x = (weights.sum(dim=-2) * xs).sum(-1) / total / w
        y = (weights.sum(dim=-1) * ys).sum(-1) / total / h
        out = {"coords": torch.stack((x, y), dim=-1)}
        if self.rle:
            # a mirror-invariant sigma (from y only), distinct per joint group
            out["sigma"] = torch.sigmoid(torch.stack((y, 2 * y), dim=-1) - 0.3)
        return out


@pytest.mark.parametrize("loss", ["smooth_l1", "rle"])
def test_deeppose_flip_test_of_a_mirror_symmetric_network_equals_direct(loss: str) -> None:
    torch.manual_seed(0)
    task = DeepPoseTask(network=REGRESSOR, loss=loss, keypoint_set="coco", input_size=INPUT_SIZE).eval()
    task.network = _MirrorCentroidNet(task.flip_indices, rle=loss == "rle")
    images = torch.randn(2, 3, INPUT_SIZE[1], INPUT_SIZE[0], dtype=torch.float64)
    direct, direct_scores = task.predict_keypoints(images, flip_test=False)
    flipped, flipped_scores = task.predict_keypoints(images, flip_test=True)
    # decode works in float32: agreement to float32 rounding of input pixels
    torch.testing.assert_close(flipped, direct, rtol=0, atol=1e-4)
    torch.testing.assert_close(flipped_scores, direct_scores, rtol=0, atol=1e-6)
    if loss == "rle":
        assert torch.all((flipped_scores > 0) & (flipped_scores < 1))
    else:
        assert torch.all(flipped_scores == 1.0)
    # reference of the direct prediction: the centroid in input px, computed independently with numpy-style sums
    img = images[0, 0].exp()
    x_ref = float((img.sum(0) * torch.arange(INPUT_SIZE[0], dtype=img.dtype)).sum() / img.sum())
    nose = task.keypoint_set.keypoints.index("nose")  # pairs with itself -> channel 0
    assert direct[0, nose, 0].item() == pytest.approx(x_ref, abs=1e-4)


def test_deeppose_flip_test_detects_a_non_symmetric_network() -> None:
    """The same check fails for a network whose pairs read different channels (the test can fail)."""
    task = DeepPoseTask(network=REGRESSOR, keypoint_set="coco", input_size=INPUT_SIZE).eval()
    task.network = _MirrorCentroidNet(task.flip_indices, symmetric=False)
    images = torch.randn(2, 3, INPUT_SIZE[1], INPUT_SIZE[0], dtype=torch.float64)
    direct, _ = task.predict_keypoints(images, flip_test=False)
    flipped, _ = task.predict_keypoints(images, flip_test=True)
    assert (flipped - direct).abs().max() > 1e-3


def test_deeppose_flip_merge_mirrors_with_the_minus_one_pixel_shift() -> None:
    """Hand case: flipped-image output u' of joint flip[k] maps back to (W-1)/W - u' for joint k."""
    task = DeepPoseTask(network=REGRESSOR, keypoint_set="coco", input_size=INPUT_SIZE)
    k = task.num_keypoints
    direct = torch.full((1, k, 2), 0.25)
    flipped = torch.full((1, k, 2), 0.25)
    ls = task.keypoint_set.keypoints.index("left_shoulder")
    rs = task.keypoint_set.keypoints.index("right_shoulder")
    flipped[0, rs] = torch.tensor([10.0 / INPUT_SIZE[0], 0.5])  # the right shoulder of the mirrored image at x = 10
    merged = task.merge_flip({"coords": direct}, {"coords": flipped})
    coords, scores = task.decode(merged)
    w, h = INPUT_SIZE
    # the left shoulder of the original image sits at x = W - 1 - 10 = 37: average with the direct 0.25 * W = 12
    assert coords[0, ls, 0].item() == pytest.approx(0.5 * (w - 1 - 10 + 0.25 * w), abs=1e-5)
    assert coords[0, ls, 1].item() == pytest.approx(0.5 * (0.5 * h + 0.25 * h), abs=1e-5)
    assert torch.all(scores == 1.0)


def test_integral_flip_test_of_a_mirror_symmetric_network_equals_direct() -> None:
    """Stride-1 logit maps that mirror with the image: flip-test coords and probs equal the direct ones."""

    class _MirrorLogits(nn.Module):
        def __init__(self, flip_indices: list[int]) -> None:
            super().__init__()
            self.register_buffer("group", torch.tensor([min(i, f) % 3 for i, f in enumerate(flip_indices)]))

        def forward(self, images: Tensor) -> list[Tensor]:
            return [images[:, self.group]]

    task = IntegralRegressionTask(network=_simple_baseline(16), keypoint_set="coco", input_size=INPUT_SIZE).eval()
    task.network = _MirrorLogits(task.flip_indices)
    images = 3.0 * torch.randn(2, 3, INPUT_SIZE[1], INPUT_SIZE[0], dtype=torch.float64)
    direct, direct_scores = task.predict_keypoints(images, flip_test=False)
    flipped, flipped_scores = task.predict_keypoints(images, flip_test=True)
    torch.testing.assert_close(flipped, direct, rtol=0, atol=1e-4)
    torch.testing.assert_close(flipped_scores, direct_scores, rtol=0, atol=1e-6)
    # independent reference: expectation of the pixel index under softmax(logits) of channel 0 (nose)
    p = torch.softmax(images[0, 0].flatten(), 0).view(INPUT_SIZE[1], INPUT_SIZE[0])
    x_ref = float((p.sum(0) * torch.arange(INPUT_SIZE[0], dtype=p.dtype)).sum())
    assert direct[0, 0, 0].item() == pytest.approx(x_ref, abs=1e-4)


# ----------------------------------------------------------------------------------------------- RLE scores
def test_rle_scores_are_in_the_open_unit_interval_and_equal_one_minus_mean_sigma() -> None:
    torch.manual_seed(0)
    task = DeepPoseTask(network=REGRESSOR, loss="rle", keypoint_set="mpii", input_size=INPUT_SIZE).eval()
    images = _batch(batch_size=3, num_keypoints=16)["image"]
    with torch.no_grad():
        out = task(images)
    assert out["sigma"].shape == (3, 16, 2)
    coords, scores = task.decode(out)
    assert coords.shape == (3, 16, 2) and scores.shape == (3, 16)
    assert torch.all((scores > 0) & (scores < 1))
    torch.testing.assert_close(scores, 1.0 - out["sigma"].mean(-1))
    _, flip_scores = task.predict_keypoints(images, flip_test=True)
    assert torch.all((flip_scores > 0) & (flip_scores < 1))


def test_rle_loss_decreases_and_sigma_tracks_the_error() -> None:
    """After fitting a fixed batch the predicted sigmas shrink (the model becomes confident where it is right)."""
    torch.manual_seed(0)
    task = DeepPoseTask(network=REGRESSOR, loss="rle", keypoint_set="coco", input_size=INPUT_SIZE)
    batch = _batch(batch_size=2)
    task.eval()
    with torch.no_grad():
        sigma0 = task(batch["image"])["sigma"].mean().item()
    _losses_over_steps(task, batch, steps=10, lr=1e-3)
    task.eval()
    with torch.no_grad():
        sigma1 = task(batch["image"])["sigma"].mean().item()
    assert sigma0 == pytest.approx(0.5, abs=0.05)  # sigma logits start at bias 0
    assert sigma1 < sigma0


# ----------------------------------------------------------------------------------------------- cascade
def _cascade_task(stages: int = 1) -> DeepPoseTask:
    torch.manual_seed(0)
    task = DeepPoseTask(
        network=REGRESSOR,
        loss="smooth_l1",
        keypoint_set="coco",
        input_size=INPUT_SIZE,
        cascade_stages=stages,
        cascade_crop_size=16,
    )
    # a fresh stage head is zero (moves nothing); give it weights so that the refinement is visible
    for stage in task.cascade.stages:
        nn.init.normal_(stage.head.weight, std=0.05)
    return task


def test_cascade_refinement_changes_eval_coords_by_the_stage_displacements() -> None:
    task = _cascade_task(stages=2).eval()
    images = _batch(batch_size=2)["image"]
    with torch.no_grad():
        base = task.network(images)["coords"]
        refined = task(images)["coords"]
        # reference: apply the stages in turn by hand
        expected = base
        for s in range(2):
            expected = expected + task.cascade(images, expected, s)
    torch.testing.assert_close(refined, expected)
    assert (refined - base).abs().max() > 1e-4
    coords, _ = task.decode({"coords": refined})
    torch.testing.assert_close(coords, refined * torch.tensor([float(INPUT_SIZE[0]), float(INPUT_SIZE[1])]))


def test_cascade_is_differentiable_in_training() -> None:
    task = _cascade_task(stages=1).train()
    batch = _batch(batch_size=2)
    out = task(batch["image"])
    # training forward returns the regressor output only (stages are trained on simulated estimates)
    with torch.no_grad():
        torch.testing.assert_close(out["coords"], task.network(batch["image"])["coords"], rtol=1e-4, atol=1e-5)
    loss, parts = task.compute_loss(out, batch)
    assert "loss_cascade1" in parts and float(parts["loss_cascade1"]) > 0
    loss.backward()
    stage_grads = [p.grad for p in task.cascade.parameters() if p.requires_grad]
    assert all(g is not None for g in stage_grads)
    assert sum(float(g.abs().sum()) for g in stage_grads) > 0
    assert task.network.fc.weight.grad is not None and float(task.network.fc.weight.grad.abs().sum()) > 0
    # the residual spread estimate moved from its initial 0.05 towards the observed residuals
    assert not torch.allclose(task.residual_std, torch.full_like(task.residual_std, 0.05))


def test_cascade_training_step_reduces_the_stage_loss() -> None:
    task = _cascade_task(stages=1)
    batch = _batch(batch_size=2)
    torch.manual_seed(1)
    opt = torch.optim.Adam(task.cascade.parameters(), lr=3e-3)
    first = last = math.nan
    for i in range(10):
        torch.manual_seed(100)  # the same simulated estimates at every step
        loss, parts = task.compute_loss(task(batch["image"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i == 0:
            first = float(parts["loss_cascade1"])
        last = float(parts["loss_cascade1"])
    assert last < first


def test_invalid_loss_is_rejected() -> None:
    with pytest.raises(ValueError, match="loss must be"):
        DeepPoseTask(network=REGRESSOR, loss="huber", keypoint_set=get_keypoint_set("coco"), input_size=INPUT_SIZE)


# ----------------------------------------------------------------------------------------------- configs
CONFIG_EXPECTATIONS = {
    # file: (task class, checkpoint monitor, (W, H), {attribute: value})
    "deeppose/mpii.yaml": ("DeepPoseTask", "val/PCKh@0.5", (256, 256), {"loss_kind": "smooth_l1", "warmup_steps": 500}),
    "deeppose/coco.yaml": ("DeepPoseTask", "val/AP", (192, 256), {"loss_kind": "smooth_l1", "warmup_steps": 500}),
    "deeppose/aic.yaml": ("DeepPoseTask", "val/AIC_score", (192, 256), {"loss_kind": "smooth_l1"}),
    "deeppose/mpii_rle.yaml": ("DeepPoseTask", "val/PCKh@0.5", (256, 256), {"loss_kind": "rle"}),
    "deeppose/coco_rle.yaml": ("DeepPoseTask", "val/AP", (192, 256), {"loss_kind": "rle"}),
    "deeppose/mpii_cascade.yaml": ("DeepPoseTask", "val/PCKh@0.5", (256, 256), {"cascade_stages": 2}),
    "deeppose/demo.yaml": ("DeepPoseTask", "val/AP", (96, 128), {"loss_kind": "l1"}),
    "integral/coco.yaml": ("IntegralRegressionTask", "val/AP", (256, 256), {"debias": True, "beta": 10.0}),
    "integral/demo.yaml": ("IntegralRegressionTask", "val/AP", (96, 128), {"debias": False}),
}


def _instantiate_config(config: str, tmp_path, monkeypatch) -> object:
    """Build model, datamodule and trainer of a shipped config through the CLI (no download: pretrained off)."""
    from lightning_pose.cli import run_lightning

    monkeypatch.chdir(tmp_path)  # the logger / checkpoint folders of the config land here
    project = Path(__file__).resolve().parents[2]
    return run_lightning(
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


@pytest.mark.parametrize("config", sorted(CONFIG_EXPECTATIONS))
def test_shipped_config_instantiates_with_the_stated_recipe(config: str, tmp_path, monkeypatch) -> None:
    cls_name, monitor, input_size, attrs = CONFIG_EXPECTATIONS[config]
    cli = _instantiate_config(config, tmp_path, monkeypatch)
    assert type(cli.model).__name__ == cls_name
    assert cli.model.input_size == input_size
    assert cli.model.num_keypoints == cli.datamodule.num_keypoints
    assert cli.trainer.checkpoint_callback.monitor == monitor
    assert type(cli.trainer.logger).__name__ == "PoseWandbLogger"
    for name, value in attrs.items():
        assert getattr(cli.model, name) == value, name
    if "demo" not in config:
        assert cli.trainer.max_epochs == 210
        assert cli.model.scheduler_factory.keywords["milestones"] == [170, 200]
        assert cli.datamodule.train_augmentation.flip_prob == 0.5
        # half-body for COCO / AIC (mmpose pipelines); MPII has none
        assert (cli.datamodule.train_augmentation.half_body_prob > 0) == ("mpii" not in config)

"""Unit tests of the heatmap LightningModules (SimpleBaseline, Stacked Hourglass, CPM) at the task level.

* flip test: with a network whose output is exactly mirror-symmetric (its forward returns the codec's encoding of
  known keypoints for the image and of the mirrored keypoints for the flipped image), ``predict_keypoints`` with
  ``flip_test=True`` equals the direct prediction (and the known keypoints) within the codec's tolerance;
* the loss is exactly zero when every stack/stage outputs the codec's target, and equals the hand-computed
  weighted MSE otherwise (sum over stages or mean, as configured);
* shapes, strides and the CPM background channel.

All keypoints are in the **input frame** (0-based pixels of the network input, ``(W_in, H_in)`` width first).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lightning_pose.skeletons import get_keypoint_set

torch.set_num_threads(1)

W_IN, H_IN = 64, 96  # input frame (width, height) in pixels; multiples of 32 for every tiny network below


#: method -> (network spec as a config states it, task arguments): one HeatmapTask serves every heatmap network
TINY_NETWORKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "simple_baseline": (
        {
            "class_path": "lightning_pose.models.SimpleBaseline",
            "init_args": {"backbone": "lcnet_050", "deconv_channels": [16, 16, 16]},
        },
        {},
    ),
    "hourglass": (
        {
            "class_path": "lightning_pose.models.StackedHourglass",
            "init_args": {"num_stacks": 2, "channels": 16, "depth": 2, "stem_channels": 8},
        },
        {},
    ),
    "cpm": (
        {"class_path": "lightning_pose.models.ConvolutionalPoseMachine", "init_args": {"num_stages": 2, "channels": 8}},
        {},
    ),
    # the task's background flag reaches the network (it takes a `background` argument the spec leaves unset)
    "cpm_background": (
        {
            "class_path": "lightning_pose.models.ConvolutionalPoseMachine",
            "init_args": {"num_stages": 2, "channels": 8, "batch_norm": False, "center_map": True},
        },
        {"background": True},
    ),
}


def _tiny_task(method: str, **kwargs: Any) -> Any:
    from lightning_pose.tasks import HeatmapTask

    network, task_args = TINY_NETWORKS[method]
    return HeatmapTask(network=network, **{"keypoint_set": "coco", "input_size": (W_IN, H_IN), **task_args, **kwargs})


def _legacy_task(method: str, **kwargs: Any) -> Any:
    """The same tiny models through the historical task classes (thin subclasses of HeatmapTask)."""
    from lightning_pose.tasks import CPMTask, SimpleBaselineTask, StackedHourglassTask

    common = dict(keypoint_set="coco", input_size=(W_IN, H_IN))
    common.update(kwargs)
    legacy = {
        "simple_baseline": lambda: SimpleBaselineTask(backbone="lcnet_050", deconv_channels=(16, 16, 16), **common),
        "hourglass": lambda: StackedHourglassTask(num_stacks=2, channels=16, depth=2, stem_channels=8, **common),
        "cpm": lambda: CPMTask(num_stages=2, channels=8, **common),
        "cpm_background": lambda: CPMTask(
            num_stages=2, channels=8, background=True, batch_norm=False, center_map=True, **common
        ),
    }
    return legacy[method]()


METHODS = ["simple_baseline", "hourglass", "cpm", "cpm_background"]


def _known_keypoints(batch: int, num_keypoints: int, seed: int = 0) -> torch.Tensor:
    """``(B, K, 3)`` float64 keypoints well inside the input frame (x, y in input px, v = 2)."""
    g = torch.Generator().manual_seed(seed)
    margin = 10.0
    x = margin + torch.rand(batch, num_keypoints, generator=g, dtype=torch.float64) * (W_IN - 1 - 2 * margin)
    y = margin + torch.rand(batch, num_keypoints, generator=g, dtype=torch.float64) * (H_IN - 1 - 2 * margin)
    return torch.stack([x, y, torch.full_like(x, 2.0)], dim=-1)


def _mirror(keypoints: torch.Tensor, flip_indices: list[int], permute: bool = True) -> torch.Tensor:
    """Keypoints of the horizontally flipped input: ``x -> W_in - 1 - x`` and left/right channels swapped."""
    out = keypoints.clone()
    out[..., 0] = W_IN - 1 - keypoints[..., 0]
    return out[:, flip_indices] if permute else out


def _install_symmetric_network(
    task: Any, images: torch.Tensor, keypoints: torch.Tensor, mirrored: torch.Tensor, stages: int
) -> None:
    """Replace ``task.forward`` by a network that outputs the codec targets (exactly mirror-symmetric)."""
    direct = task.codec.encode(keypoints)["heatmaps"].float()
    flipped = task.codec.encode(mirrored)["heatmaps"].float()

    def forward(x: torch.Tensor) -> list[torch.Tensor]:
        if torch.equal(x, images):
            maps = direct
        elif torch.equal(x, images.flip(-1)):
            maps = flipped
        else:  # pragma: no cover - the task passed something else than the image or its flip
            raise AssertionError("forward called with an unexpected tensor")
        # earlier stages/stacks output garbage: only the last one may be decoded
        return [torch.rand_like(maps) for _ in range(stages - 1)] + [maps]

    task.forward = forward  # instance attribute shadows the method


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("encoding", ["unbiased_dark", "round_quarter"])
def test_flip_test_of_symmetric_network_equals_direct_prediction(method: str, encoding: str) -> None:
    kwargs = {"unbiased": True, "decode": "dark"} if encoding == "unbiased_dark" else {}
    task = _tiny_task(method, **kwargs).eval()
    kset = get_keypoint_set("coco")
    keypoints = _known_keypoints(3, kset.num_keypoints)
    mirrored = _mirror(keypoints, kset.flip_indices)
    images = torch.randn(3, 3, H_IN, W_IN)
    _install_symmetric_network(task, images, keypoints, mirrored, stages=2)

    direct, direct_scores = task.predict_keypoints(images, flip_test=False)
    merged, merged_scores = task.predict_keypoints(images, flip_test=True)
    assert direct.shape == merged.shape == (3, kset.num_keypoints, 2)
    assert merged_scores.shape == (3, kset.num_keypoints)
    stride = task.codec.stride[0]
    gt = keypoints[..., :2].float()
    if encoding == "unbiased_dark":
        # sub-pixel targets + DARK: both predictions recover the keypoints to a small fraction of a pixel
        tol = 0.05 * stride
        assert (direct - gt).abs().max() < tol
        assert (merged - direct).abs().max() < tol
    else:
        # round encoding: the direct prediction is the rounded grid position (error <= stride / 2 per axis);
        # the flip-merged one may move by at most a quarter heatmap pixel (the quarter offset)
        assert (direct - gt).abs().max() <= stride / 2 + 1e-4
        assert (merged - direct).abs().max() <= 0.25 * stride + 1e-4
        assert (merged - gt).abs().max() <= stride / 2 + 0.25 * stride + 1e-4
    # the merged peak is as strong as the direct one (the two maps coincide after flip-back)
    assert torch.allclose(merged_scores, direct_scores, atol=0.05)


def test_flip_test_detects_missing_channel_swap() -> None:
    """Negative control: a flipped output whose left/right channels were NOT swapped gives a wrong merge."""
    task = _tiny_task("simple_baseline", unbiased=True, decode="dark").eval()
    kset = get_keypoint_set("coco")
    keypoints = _known_keypoints(2, kset.num_keypoints, seed=1)
    wrong = _mirror(keypoints, kset.flip_indices, permute=False)
    images = torch.randn(2, 3, H_IN, W_IN)
    _install_symmetric_network(task, images, keypoints, wrong, stages=1)
    direct, _ = task.predict_keypoints(images, flip_test=False)
    merged, _ = task.predict_keypoints(images, flip_test=True)
    paired = [i for i, j in enumerate(kset.flip_indices) if i != j]
    assert (merged[:, paired] - direct[:, paired]).abs().max() > 2.0


@pytest.mark.parametrize("method", METHODS)
def test_loss_zero_on_targets_and_hand_computed_otherwise(method: str) -> None:
    task = _tiny_task(method, loss_aggregate="sum")
    kset = get_keypoint_set("coco")
    keypoints = _known_keypoints(2, kset.num_keypoints, seed=2).float()
    keypoints[0, 3, 2] = 0  # an unlabelled joint: weight 0
    _t = task.codec.encode(keypoints)
    target, weight = _t["heatmaps"], _t["weights"]
    batch = {"keypoints": keypoints}
    loss, parts = task.compute_loss([target.clone(), target.clone()], batch)
    assert loss.item() == 0.0 and parts["loss_last_stage"].item() == 0.0

    g = torch.Generator().manual_seed(3)
    outs = [torch.rand(target.shape, generator=g) for _ in range(2)]
    w = weight
    if task.background:
        w = torch.cat([w, torch.ones(w.shape[0], 1)], dim=1)
    per_stage = [(((o - target) ** 2) * w[:, :, None, None]).mean() for o in outs]
    loss, parts = task.compute_loss(outs, batch)
    assert loss.item() == pytest.approx(float(sum(per_stage)), rel=1e-5)
    assert parts["loss_last_stage"].item() == pytest.approx(float(per_stage[-1]), rel=1e-5)
    task_mean = _tiny_task(method, loss_aggregate="mean")
    loss_mean, _ = task_mean.compute_loss(outs, batch)
    assert loss_mean.item() == pytest.approx(float(sum(per_stage)) / 2, rel=1e-5)


@pytest.mark.parametrize(
    "method,stride,stages", [("simple_baseline", 4, 1), ("hourglass", 4, 2), ("cpm", 8, 2), ("cpm_background", 8, 2)]
)
def test_forward_shapes_and_decode(method: str, stride: int, stages: int) -> None:
    task = _tiny_task(method).eval()
    k = get_keypoint_set("coco").num_keypoints
    out = task(torch.randn(2, 3, H_IN, W_IN))
    assert len(out) == stages
    channels = k + 1 if task.background else k
    for o in out:
        assert o.shape == (2, channels, H_IN // stride, W_IN // stride)
    assert task.codec.heatmap_size == (W_IN // stride, H_IN // stride)
    coords, scores = task.predict_keypoints(torch.randn(2, 3, H_IN, W_IN), flip_test=True)
    assert coords.shape == (2, k, 2) and scores.shape == (2, k)
    assert torch.isfinite(coords).all()
    assert (coords[..., 0] >= 0).all() and (coords[..., 0] <= W_IN).all()
    assert (coords[..., 1] >= 0).all() and (coords[..., 1] <= H_IN).all()


def test_input_size_must_be_a_multiple_of_the_stride() -> None:
    with pytest.raises(ValueError, match="multiple of the network stride 8"):
        _tiny_task("cpm", input_size=(60, 96))


def test_hparams_record_method_and_network() -> None:
    task = _legacy_task("hourglass")
    assert task.hparams["method"] == "hourglass"
    assert task.hparams["num_stacks"] == 2 and task.hparams["stem_channels"] == 8
    assert task.hparams["num_keypoints"] == 17 and list(task.hparams["input_size"]) == [W_IN, H_IN]
    assert task.network.stem[0].out_channels == 8


@pytest.mark.parametrize("method", METHODS)
def test_legacy_task_classes_build_the_injected_network(method: str) -> None:
    """SimpleBaselineTask / StackedHourglassTask / CPMTask are HeatmapTask with a network spec: same layers, same
    initial weights (same seed), same outputs, same method name, network description and codec geometry."""
    from lightning_pose.tasks import HeatmapTask

    torch.manual_seed(0)
    legacy = _legacy_task(method).eval()
    torch.manual_seed(0)
    injected = _tiny_task(method).eval()
    assert isinstance(legacy, HeatmapTask) and type(injected) is HeatmapTask
    assert legacy.method_name == injected.method_name == method.replace("_background", "")
    assert legacy.hparams["method"] == injected.hparams["method"] == legacy.method_name
    assert legacy.network_name == injected.network_name == type(injected.network).__name__
    assert legacy.hparams["network"]["class_path"].rsplit(".", 1)[1] == legacy.network_name
    assert legacy.background == injected.background == (method == "cpm_background")
    assert legacy.codec.heatmap_size == injected.codec.heatmap_size
    a, b = legacy.state_dict(), injected.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    images = torch.randn(2, 3, H_IN, W_IN, generator=torch.Generator().manual_seed(4))
    for x, y in zip(legacy(images), injected(images)):
        assert torch.equal(x, y)
    assert not hasattr(legacy, "_net_args")


def test_backbone_and_network_name_are_public() -> None:
    task = _tiny_task("simple_baseline")
    assert task.backbone == "lcnet_050" and task.network_name == "SimpleBaseline"
    assert task.hparams["network"] == {
        "class_path": "lightning_pose.models.SimpleBaseline",
        "init_args": {"backbone": "lcnet_050", "deconv_channels": [16, 16, 16]},
    }
    assert _legacy_task("simple_baseline").backbone == "lcnet_050"
    assert _tiny_task("hourglass").backbone is None


def test_injection_errors_are_one_clear_line() -> None:
    from lightning_pose.errors import ConfigError
    from lightning_pose.tasks import CPMTask, HeatmapTask

    common = dict(keypoint_set="coco", input_size=(W_IN, H_IN))
    with pytest.raises(ConfigError, match=r"HeatmapTask: no network given; set model.init_args.network"):
        HeatmapTask(**common)
    cpm, _ = TINY_NETWORKS["cpm"]
    with_bg = {**cpm, "init_args": {**cpm["init_args"], "background": False}}
    with pytest.raises(
        ConfigError,
        match=r"background=True but network ConvolutionalPoseMachine has "
        r"background=False",
    ):
        HeatmapTask(network=with_bg, background=True, **common)
    with pytest.raises(ConfigError, match=r"network Conv2d has no integer 'stride' attribute"):
        HeatmapTask(
            network={"class_path": "torch.nn.Conv2d", "init_args": {"out_channels": 17, "kernel_size": 1}}, **common
        )
    # a thin class refuses a network that contradicts its own arguments
    other = {**cpm, "init_args": {**cpm["init_args"], "num_stages": 3}}
    with pytest.raises(
        ConfigError,
        match=r"CPMTask: network argument num_stages=3 contradicts the task's "
        r"num_stages=2",
    ):
        CPMTask(num_stages=2, channels=8, network=other, **common)
    with pytest.raises(ConfigError, match=r"CPMTask builds a ConvolutionalPoseMachine, not the given network"):
        CPMTask(network=TINY_NETWORKS["hourglass"][0], **common)


@pytest.mark.parametrize(
    "method,name",
    [
        ("simple_baseline", f"simple_baseline-demo-lcnet_050-{W_IN}x{H_IN}"),
        ("hourglass", f"hourglass-demo-{W_IN}x{H_IN}"),
        ("cpm_background", f"cpm-demo-{W_IN}x{H_IN}"),
    ],
)
def test_wandb_run_facts_are_the_same_for_injected_and_legacy_tasks(method: str, name: str) -> None:
    """W&B group/run name ``<method>-<dataset>[-<backbone>]-<W>x<H>`` from the public method_name/backbone."""
    from types import SimpleNamespace

    from lightning_pose.callbacks.wandb_callbacks import _run_facts, run_name

    dm = SimpleNamespace(dataset_name="demo")
    facts = [_run_facts(None, task, dm) for task in (_tiny_task(method), _legacy_task(method))]
    assert facts[0] == facts[1]
    assert facts[0]["method"] == method.replace("_background", "") and facts[0]["input_size"] == [W_IN, H_IN]
    assert run_name(facts[0]) == name

"""HybridPoseNet: output shapes at 256x192 / 256x256, exact head size, gradient flow into both branches, coords."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_pose.models.hybrid import HybridPoseNet
from lightning_pose.models.simple_baseline import SimpleBaseline


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _refine_params(k: int, deconv: int, skip: int, c: int, n_blocks: int) -> int:
    """Hand count of the refinement subnet: 1x1 input conv + BN, bottlenecks (1x1, 3x3, 3x3, 1x1 + 4 BN), 1x1 output."""
    mid = c // 2
    block = c * mid + 2 * mid + 2 * (9 * mid * mid + 2 * mid) + mid * c + 2 * c
    return (k + deconv + skip) * c + 2 * c + n_blocks * block + c * k + k


@pytest.mark.parametrize(("k", "size"), [(17, (256, 192)), (16, (256, 256))])
def test_hybrid_r50_shapes_and_parameter_count(k: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = HybridPoseNet(k, "resnet50").eval()
    h, w = size
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w))
    assert model.stride == 4
    assert out["det"].shape == out["reg"].shape == (1, k, h // 4, w // 4)
    assert out["coords"].shape == (1, k, 2)
    with torch.device("meta"):
        baseline = SimpleBaseline(k, "resnet50")  # same backbone + deconv head + 1x1 detection output
    expected = _count(baseline) + _refine_params(k, 256, 256, 128, 4)
    params = _count(model)
    print(f"HybridPoseNet R50 K={k}: {params / 1e6:.3f} M parameters (SimpleBaseline {_count(baseline) / 1e6:.3f} M)")
    assert params == expected


def test_gradients_reach_both_branches() -> None:
    torch.manual_seed(0)
    model = HybridPoseNet(3, "resnet18", refine_channels=16, dilations=(1, 2))
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    # a coordinate loss alone must train the regression subnet, the detection head (through sigmoid(det))
    # and the backbone
    out["coords"].sum().backward()
    for name, param in [
        ("reg_out", model.reg_out.weight),
        ("det_out", model.det_out.weight),
        ("deconv", model.deconv[0].weight),
        ("refine", model.refine[0].body[0].weight),
        ("backbone", next(model.backbone.parameters())),
    ]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    model.zero_grad()
    out = model(torch.randn(2, 3, 64, 64))
    # detection loss reaches the detector but not the regression subnet
    out["det"].pow(2).mean().backward()
    assert model.det_out.weight.grad.abs().sum() > 0
    assert model.reg_out.weight.grad is None or model.reg_out.weight.grad.abs().sum() == 0


def test_initial_detection_prior_and_fc_regressor() -> None:
    torch.manual_seed(0)
    model = HybridPoseNet(2, "resnet18", refine_channels=16, dilations=(1,), fc_regressor=True).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 48))
    assert out["coords"].shape == (1, 2, 2)
    assert (out["coords"] - 0.5).abs().max() < 0.05  # FC bias starts at the crop centre
    torch.testing.assert_close(out["det"].sigmoid().mean(), torch.tensor(0.01), atol=2e-3, rtol=0)


def test_soft_argmax_coords_follow_the_reg_peak() -> None:
    """Put a peak-1 Gaussian into ``reg`` via the output bias path and read the normalised coordinate."""
    model = HybridPoseNet(1, "resnet18", refine_channels=8, dilations=(1,)).eval()
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(12.0), indexing="ij")
    peak = torch.exp(-((xs - 7.3) ** 2 + (ys - 4.6) ** 2) / 8)  # heatmap px (x 7.3, y 4.6) at stride 4
    model.reg_out.register_forward_hook(lambda m, i, o: peak.expand_as(o))
    with torch.no_grad():
        coords = model(torch.randn(1, 3, 64, 48))["coords"][0, 0]
    # convention A: heatmap x_h -> input x = 4 x_h -> normalised 4 x_h / 48 = x_h / 12
    assert coords[0].item() == pytest.approx(7.3 / 12, abs=0.05 / 12)
    assert coords[1].item() == pytest.approx(4.6 / 16, abs=0.05 / 16)


def test_bad_inputs() -> None:
    model = HybridPoseNet(2, "resnet18", refine_channels=8, dilations=(1,))
    with pytest.raises(ValueError, match="multiple of stride"):
        model(torch.randn(1, 3, 66, 64))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="num_keypoints"):
        HybridPoseNet(0, "resnet18")
    assert math.isclose(model.det_out.bias[0].item(), math.log(0.01 / 0.99), rel_tol=1e-6)

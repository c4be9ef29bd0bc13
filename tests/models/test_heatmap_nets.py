"""Tests of the heatmap networks: published sizes, output geometry, wiring against hand-written forward passes,
gradient flow, seeded init, and the MAC counter of benchmarks/model_stats.py."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_pose.models import (
    ConvolutionalPoseMachine,
    Hourglass,
    PreActResidual,
    SimpleBaseline,
    StackedHourglass,
    create_backbone,
    gaussian_center_map,
)

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def small_hg(num_stacks: int = 2) -> StackedHourglass:
    return StackedHourglass(5, num_stacks=num_stacks, channels=32, stem_channels=16)


def small_cpm(**kwargs) -> ConvolutionalPoseMachine:
    kwargs.setdefault("channels", 8)
    kwargs.setdefault("trunk_channels", 8)
    return ConvolutionalPoseMachine(5, **kwargs)


def small_sb(**kwargs) -> SimpleBaseline:
    kwargs.setdefault("deconv_channels", (16, 16, 16))
    return SimpleBaseline(5, "resnet18", **kwargs)


@pytest.fixture(scope="module")
def model_stats():
    spec = importlib.util.spec_from_file_location("model_stats", ROOT / "benchmarks" / "model_stats.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


# --------------------------------------------------------------------------------------- published sizes


@pytest.mark.parametrize("stacks, ref_m", [(8, 25.43), (2, 6.57), (1, 3.43)])
def test_hourglass_published_parameter_count(stacks: int, ref_m: float) -> None:
    with torch.device("meta"):  # parameter shapes only: no memory, no init cost
        model = StackedHourglass(16, num_stacks=stacks, channels=256)
    assert n_params(model) / 1e6 == pytest.approx(ref_m, rel=0.005)


def test_cpm_published_parameter_counts() -> None:
    with torch.device("meta"):
        mmpose_style = ConvolutionalPoseMachine(16, 6)
        original = ConvolutionalPoseMachine(14, 6, background=True, center_map=True, batch_norm=False)
    assert n_params(mmpose_style) / 1e6 == pytest.approx(31.23, rel=0.005)
    assert original.out_channels == 15
    assert n_params(original) / 1e6 == pytest.approx(31.22, rel=0.005)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in original.modules())


def test_simple_baseline_r50_parameter_count() -> None:
    with torch.device("meta"):
        model = SimpleBaseline(17, "resnet50")
    assert model.stride == 4
    assert n_params(model) / 1e6 == pytest.approx(34.00, rel=0.005)


def test_residual_parameter_count_by_hand() -> None:
    # BN(4)=8; C1 4->4: 16+4; BN(4)=8; C3 4->4: 144+4; BN(4)=8; C1 4->8: 32+8; skip C1 4->8: 32+8
    assert n_params(PreActResidual(4, 8)) == 8 + 20 + 8 + 148 + 8 + 40 + 40
    # identity skip when widths match: BN(8)=16; C1 8->4: 36; BN 8; C3: 148; BN 8; C1 4->8: 40
    assert n_params(PreActResidual(8, 8)) == 16 + 36 + 8 + 148 + 8 + 40


# --------------------------------------------------------------------------------------- output geometry


@pytest.mark.parametrize("hw", [(256, 192), (256, 256), (368, 368)])
def test_output_sizes_are_input_over_stride(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, *hw)
    h, w = hw
    with torch.no_grad():
        hg = small_hg(2).eval()(x)
        cpm_model = small_cpm(num_stages=3, background=True, center_map=True)
        cpm = cpm_model.eval()(x)
        sb_model = small_sb()
        sb = sb_model.eval()(x)
    assert [tuple(o.shape) for o in hg] == [(1, 5, h // 4, w // 4)] * 2
    assert [tuple(o.shape) for o in cpm] == [(1, 6, h // 8, w // 8)] * 3
    assert sb_model.stride == 4
    assert [tuple(o.shape) for o in sb] == [(1, 5, h // 4, w // 4)]


@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_simple_baseline_deconv_kernels_double_size(kernel: int) -> None:
    model = SimpleBaseline(3, "resnet18", deconv_channels=(8, 8), deconv_kernel=kernel, final_kernel=3).eval()
    assert model.stride == 8
    with torch.no_grad():
        (out,) = model(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 3, 8, 12)


def test_simple_baseline_feature_index_uses_an_earlier_level_and_drops_later_stages() -> None:
    deep = SimpleBaseline(3, "resnet18", deconv_channels=(8, 8, 8))
    mid = SimpleBaseline(3, "resnet18", deconv_channels=(8, 8), feature_index=3)
    # layer3 of a ResNet-18: 256 channels at stride 16; two deconvolutions -> stride 4, same maps as deep's
    assert mid.backbone.channels[-1] == 256 and mid.backbone.reductions[-1] == 16
    assert mid.stride == deep.stride == 4
    # layer4 (4 x 3x3 convolutions of 512 channels, the 1x1 shortcut, 5 batch norms) is not built at all
    n_deep = sum(p.numel() for p in deep.backbone.parameters())
    n_mid = sum(p.numel() for p in mid.backbone.parameters())
    assert n_deep - n_mid == 512 * 256 * 9 + 512 * 512 * 9 * 3 + 512 * 256 + 5 * 2 * 512
    with torch.no_grad():
        (out,) = mid.eval()(torch.randn(2, 3, 128, 96))
    assert out.shape == (2, 3, 32, 24)


def test_simple_baseline_crops_top_left_when_backbone_rounds_up() -> None:
    torch.manual_seed(1)
    model = small_sb().eval()
    x = torch.randn(1, 3, 368, 200)
    with torch.no_grad():
        feats = model.backbone(x)[-1]
        full = model.final(model.deconv(feats))
        (out,) = model(x)
    assert feats.shape[-2:] == (12, 7)  # ceil(368/32), ceil(200/32)
    assert full.shape[-2:] == (96, 56)
    assert out.shape[-2:] == (92, 50)
    torch.testing.assert_close(out, full[..., :92, :50])


def test_create_backbone_geometry() -> None:
    backbone = create_backbone("resnet18", out_indices=(1, 2, 3, 4))
    assert backbone.channels == [64, 128, 256, 512]
    assert backbone.reductions == [4, 8, 16, 32]
    feats = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 16, 24), (1, 128, 8, 12), (1, 256, 4, 6), (1, 512, 2, 3)]
    last = create_backbone("resnet18")
    assert last.channels == [512] and last.reductions == [32]


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown timm backbone 'no_such_net'"):
        create_backbone("no_such_net")
    with pytest.raises(ValueError, match="features_only"):
        create_backbone("resnet18", features_only=False)
    with pytest.raises(ValueError, match="multiple of 4"):
        small_hg(1)(torch.zeros(1, 3, 66, 64))
    with pytest.raises(ValueError, match="at least 64"):
        small_hg(1)(torch.zeros(1, 3, 32, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        small_hg(1)(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="multiple of 8"):
        small_cpm()(torch.zeros(1, 3, 60, 64))
    with pytest.raises(ValueError, match="center_map=False"):
        small_cpm()(torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="center_map must have shape"):
        small_cpm(center_map=True)(torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="deconv_kernel"):
        SimpleBaseline(3, "resnet18", deconv_kernel=5)
    with pytest.raises(ValueError, match="multiple of its stride 4"):
        small_sb()(torch.zeros(1, 3, 66, 64))
    with pytest.raises(ValueError, match="even"):
        StackedHourglass(3, channels=33)


# --------------------------------------------------------------------------------------- wiring vs hand-written forward


def _bn_relu(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    y = (x - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] + bn.bias[None, :, None, None]
    return torch.clamp(y, min=0)


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def test_residual_is_pre_activation_bottleneck() -> None:
    torch.manual_seed(0)
    res = PreActResidual(6, 8).eval()
    _randomize_bn(res)
    x = torch.randn(2, 6, 5, 7)
    bn1, c1, bn2, c2, bn3, c3 = (res.branch[i] for i in (0, 2, 3, 5, 6, 8))
    y = F.conv2d(_bn_relu(x, bn1), c1.weight, c1.bias)
    y = F.conv2d(_bn_relu(y, bn2), c2.weight, c2.bias, padding=1)
    y = F.conv2d(_bn_relu(y, bn3), c3.weight, c3.bias)
    expected = y + F.conv2d(x, res.skip.weight, res.skip.bias)
    assert c1.out_channels == 4 and c2.kernel_size == (3, 3) and c3.out_channels == 8
    with torch.no_grad():
        torch.testing.assert_close(res(x), expected)


def test_hourglass_recursion_by_hand() -> None:
    torch.manual_seed(0)
    hg = Hourglass(2, 8).eval()
    _randomize_bn(hg)
    x = torch.randn(1, 8, 8, 12)

    def up(t: torch.Tensor) -> torch.Tensor:  # nearest x2 written without F.interpolate
        return t.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)

    def pool(t: torch.Tensor) -> torch.Tensor:  # 2x2 max written as a reshape
        b, c, h, w = t.shape
        return t.reshape(b, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))

    with torch.no_grad():
        inner = hg.low2
        low_inner = inner.low3(inner.low2(inner.low1(pool(hg.low1(pool(x))))))
        mid = inner.up1(hg.low1(pool(x))) + up(low_inner)
        expected = hg.up1(x) + up(hg.low3(mid))
        torch.testing.assert_close(hg(x), expected)
    assert isinstance(hg.low2, Hourglass) and not isinstance(inner.low2, Hourglass)


def test_stacked_hourglass_merge_by_hand() -> None:
    torch.manual_seed(0)
    model = small_hg(2).eval()
    _randomize_bn(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs = model(x)
        stem = model.stem(x)
        assert stem.shape == (1, 32, 16, 16)
        y0 = model.features[0](model.hourglasses[0](stem))
        p0 = model.heads[0](y0)
        x1 = stem + model.merge_features[0](y0) + model.merge_preds[0](p0)
        p1 = model.heads[1](model.features[1](model.hourglasses[1](x1)))
    torch.testing.assert_close(outs[0], p0)
    torch.testing.assert_close(outs[1], p1)
    assert len(model.merge_features) == len(model.merge_preds) == 1
    lin = model.features[0]
    assert [type(m) for m in lin][1:] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


def _kernel_sizes(module: nn.Module) -> list[int]:
    return [m.kernel_size[0] for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_cpm_layer_layout() -> None:
    model = ConvolutionalPoseMachine(16, 3)
    assert _kernel_sizes(model.stage1) == [9, 9, 9, 5, 9, 1, 1]
    assert _kernel_sizes(model.trunk) == [9, 9, 9]
    assert [_kernel_sizes(f) for f in model.stage_features] == [[5], [5]]
    assert [_kernel_sizes(s) for s in model.stages] == [[11, 11, 11, 1, 1]] * 2
    widths = [m.out_channels for m in model.stage1.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [128, 128, 128, 32, 512, 512, 16]
    first = model.stages[0][0][0]
    assert first.in_channels == 32 + 16 and first.bias is None  # BN variant: no conv bias
    assert model.stages[0][-1][0].bias is not None  # belief outputs keep their bias
    pools = [m for m in model.stage1.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride, p.padding) for p in pools] == [(3, 2, 1)] * 3
    original = ConvolutionalPoseMachine(14, 2, background=True, center_map=True, batch_norm=False)
    assert original.stages[0][0][0].in_channels == 32 + 15 + 1


def test_cpm_stage_wiring_by_hand() -> None:
    torch.manual_seed(0)
    model = small_cpm(num_stages=2, center_map=True, background=True, batch_norm=False).eval()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        outs = model(x)
        b1 = model.stage1(x)
        cmap = gaussian_center_map(1, 64, 48, 21.0)
        z = torch.cat([model.stage_features[0](model.trunk(x)), b1, F.avg_pool2d(cmap, 9, 8, 4)], dim=1)
        torch.testing.assert_close(outs[0], b1)
        torch.testing.assert_close(outs[1], model.stages[0](z))
        # an explicit centre map equal to the default one gives the same result; a different one does not
        torch.testing.assert_close(model(x, cmap)[1], outs[1])
        shifted = gaussian_center_map(1, 64, 48, 5.0)
        assert not torch.allclose(model(x, shifted)[1], outs[1])


def test_gaussian_center_map_values() -> None:
    cmap = gaussian_center_map(2, 5, 7, 2.0)
    assert cmap.shape == (2, 1, 5, 7)
    assert cmap[0, 0, 2, 3].item() == pytest.approx(1.0)  # centre (3, 2) in 0-based (x, y)
    assert cmap[1, 0, 0, 0].item() == pytest.approx(math.exp(-(9 + 4) / 8.0))
    even = gaussian_center_map(1, 4, 4, 1.0)  # centre (1.5, 1.5): the four middle pixels share the peak
    assert even[0, 0, 1, 1].item() == pytest.approx(math.exp(-0.25))
    torch.testing.assert_close(even, even.flip(-1))
    torch.testing.assert_close(even, even.flip(-2))


def test_pooled_center_map_matches_numpy_average_pool() -> None:
    h = w = 368
    cmap = gaussian_center_map(1, h, w, 21.0)
    model = small_cpm(center_map=True)
    pooled = model._pooled_center_map(torch.zeros(1, 3, h, w), None)[0, 0].numpy()
    assert pooled.shape == (46, 46)
    padded = np.pad(cmap[0, 0].numpy().astype(np.float64), 4)
    expected = np.array(
        [[padded[8 * i : 8 * i + 9, 8 * j : 8 * j + 9].sum() / 81.0 for j in range(46)] for i in range(46)]
    )
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-7)
    assert np.unravel_index(pooled.argmax(), pooled.shape) in {(22, 22), (22, 23), (23, 22), (23, 23)}


# --------------------------------------------------------------------------------------- training behaviour


@pytest.mark.parametrize("name", ["hg", "cpm", "sb"])
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = {
        "hg": lambda: small_hg(2),
        "cpm": lambda: small_cpm(num_stages=3, center_map=True, background=True),
        "sb": lambda: small_sb(),
    }[name]().train()
    outs = model(torch.randn(2, 3, 64, 64))
    loss = sum((o - 0.5).pow(2).mean() for o in outs)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        # timm ResNets zero-init the last BN of each residual branch, which blocks the gradient of the convs
        # before it at initialisation; everything else must receive a non-zero gradient
        behind_zero_bn = name == "sb" and ".layer" in pname and (".conv" in pname or ".bn1." in pname)
        if not behind_zero_bn:
            assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


def test_last_stack_loss_reaches_first_stack() -> None:
    torch.manual_seed(0)
    model = small_hg(2).train()
    outs = model(torch.randn(2, 3, 64, 64))  # batch 2: BN in train mode at the 1x1 hourglass bottom
    outs[-1].sum().backward()
    assert model.heads[0].weight.grad.abs().sum() > 0  # via merge_preds
    assert model.hourglasses[0].up1[0].branch[2].weight.grad.abs().sum() > 0  # via merge_features


@pytest.mark.parametrize("build", [lambda: small_hg(1), lambda: small_cpm(num_stages=2), lambda: small_sb()])
def test_seeded_init_is_deterministic(build) -> None:
    torch.manual_seed(123)
    a = build().state_dict()
    torch.manual_seed(123)
    b = build().state_dict()
    torch.manual_seed(124)
    c = build().state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_documented_initialisation() -> None:
    torch.manual_seed(0)
    sb = SimpleBaseline(17, "resnet18")
    deconvs = [m for m in sb.deconv.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 3 and all(d.bias is None and d.kernel_size == (4, 4) for d in deconvs)
    assert deconvs[0].weight.std().item() == pytest.approx(0.001, rel=0.02)
    assert sb.final.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.count_nonzero(sb.final.bias) == 0
    cpm = ConvolutionalPoseMachine(16, 2)
    w = cpm.stages[0][0][0].weight
    assert w.std().item() == pytest.approx(0.01, rel=0.02) and abs(w.mean().item()) < 1e-4
    hg = StackedHourglass(16, 1, channels=64)
    conv = hg.heads[0]  # PyTorch default: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1 / math.sqrt(64)
    assert conv.weight.abs().max().item() <= bound
    assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)


# --------------------------------------------------------------------------------------- MAC counter


def test_mac_counter_by_hand(model_stats) -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert model_stats.count_macs(conv, (1, 3, 8, 8), device="cpu") == 8 * 8 * 4 * 3 * 9
    deconv = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
    assert model_stats.count_macs(deconv, (1, 4, 5, 5), device="cpu") == 5 * 5 * 4 * 2 * 16
    seq = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    assert model_stats.count_macs(seq, (2, 3, 4, 4), device="cpu") == 2 * (16 * 2 * 3 + 32 * 5)
    assert model_stats.count_parameters(seq) == (3 * 2 + 2) + 4 + (32 * 5 + 5)


def test_hourglass_macs_match_reference(model_stats) -> None:
    with torch.device("meta"):
        model = StackedHourglass(16, 2)
    gmacs = model_stats.count_macs(model, (1, 3, 256, 256), device="meta") / 1e9
    assert gmacs == pytest.approx(8.3, rel=0.01)

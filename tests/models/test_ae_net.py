"""Associative-embedding networks: output layout, intermediate supervision, published size (meta device)."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.models.associative_embedding import AEOutput, HigherHRNetAENet, HourglassAENet


def test_hourglass_ae_outputs_every_stack() -> None:
    torch.manual_seed(0)
    net = HourglassAENet(17, tag_dim=2, num_stacks=2, channels=16, increase=8, depth=2, stem_channels=8)
    out = net(torch.randn(2, 3, 64, 48))
    assert len(out) == 2 and all(isinstance(o, AEOutput) for o in out)
    for o in out:
        assert o.heatmaps.shape == (2, 17, 16, 12)
        assert o.tags.shape == (2, 34, 16, 12)
    assert not torch.allclose(out[0].heatmaps, out[1].heatmaps)
    with pytest.raises(ValueError, match="multiple of 16"):
        net(torch.randn(1, 3, 60, 64))


def test_hourglass_ae_published_size() -> None:
    """4 stacks, 256 channels (+128 per level), K = 17, L = 1: 138.9 M parameters (docs/methods.md#ae-network)."""
    with torch.device("meta"):
        net = HourglassAENet(17)
    params = sum(p.numel() for p in net.parameters())
    assert params / 1e6 == pytest.approx(138.9, abs=0.1)
    assert sum(1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)) == 0  # original: conv -> ReLU


def test_higherhrnet_variant_two_resolutions() -> None:
    torch.manual_seed(0)
    net = HigherHRNetAENet(17, "resnet18", channels=16, num_blocks=1)
    out = net(torch.randn(1, 3, 64, 96))
    assert net.stride == 4
    assert out[0].heatmaps.shape == (1, 17, 16, 24) and out[0].tags.shape == (1, 17, 16, 24)
    assert out[1].heatmaps.shape == (1, 17, 32, 48) and out[1].tags is None
    single = HigherHRNetAENet(17, "resnet18", channels=16, deconv=False, tag_dim=2)
    assert len(single(torch.randn(1, 3, 64, 64))) == 1


def test_simple_baseline_ae_splits_heatmaps_and_tags() -> None:
    """One output at stride 4 (ResNet-18 cut at layer3, two deconvolutions): K heatmaps, then K x L tags."""
    from lightning_pose.models.associative_embedding import SimpleBaselineAENet

    torch.manual_seed(0)
    net = SimpleBaselineAENet(17, "resnet18", tag_dim=2, deconv_channels=(16, 16), feature_index=3).eval()
    assert net.stride == 4 and net.size_divisor == 16
    x = torch.randn(1, 3, 64, 96)
    out = net(x)
    assert len(out) == 1 and isinstance(out[0], AEOutput)
    assert out[0].heatmaps.shape == (1, 17, 16, 24) and out[0].tags.shape == (1, 34, 16, 24)
    # the split is the underlying SimpleBaseline's channels in order: heatmaps first, then tags
    whole = net.net(x)[0]
    assert torch.equal(out[0].heatmaps, whole[:, :17]) and torch.equal(out[0].tags, whole[:, 17:])
    assert not any(n.startswith("net.backbone.layer4") for n, _ in net.named_parameters())
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.randn(1, 3, 64, 88))

"""HeatmapCodec.encode against an independent per-joint loop implementation of the MSRA/HRNet targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_pose.codecs import HeatmapCodec


def reference_target(kp: np.ndarray, input_size, heatmap_size, sigma: float, unbiased: bool):
    """Loop reference: HRNet ``generate_target`` semantics (window [mu-3s, mu+3s], peak 1), float centre if unbiased."""
    (wi, hi), (wh, hh) = input_size, heatmap_size
    sx, sy = wi / wh, hi / hh
    k = kp.shape[0]
    maps = np.zeros((k, hh, wh))
    weight = np.zeros(k)
    for j in range(k):
        x, y, v = kp[j]
        if v <= 0:
            continue
        cx, cy = x / sx, y / sy
        if not unbiased:
            cx, cy = math.floor(cx + 0.5), math.floor(cy + 0.5)
        drawn = False
        for r in range(hh):
            for c in range(wh):
                if abs(c - cx) <= 3 * sigma and abs(r - cy) <= 3 * sigma:
                    maps[j, r, c] = math.exp(-((c - cx) ** 2 + (r - cy) ** 2) / (2 * sigma**2))
                    drawn = True
        weight[j] = 1.0 if drawn else 0.0
    return maps, weight


@pytest.mark.parametrize("unbiased", [False, True])
def test_encode_matches_loop_reference(unbiased: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    input_size, heatmap_size = (48, 40), (12, 10)
    kp = torch.empty(3, 9, 3, dtype=torch.float64)
    kp[..., 0] = torch.rand(3, 9, generator=gen, dtype=torch.float64) * 110 - 30  # partly outside the map
    kp[..., 1] = torch.rand(3, 9, generator=gen, dtype=torch.float64) * 90 - 25
    kp[..., 2] = torch.randint(0, 3, (3, 9), generator=gen).double()
    kp[0, 0] = torch.tensor([-20.0, 5.0, 2.0])  # mu_x = -5, window [-9.5, -0.5] misses the map -> weight 0
    kp[0, 1] = torch.tensor([-16.0, 5.0, 2.0])  # mu_x = -4: only column 0 of the window inside -> weight 1
    codec = HeatmapCodec(input_size, heatmap_size, sigma=1.5, unbiased=unbiased)
    _t = codec.encode(kp)
    maps, weight = _t["heatmaps"], _t["weights"]
    assert maps.shape == (3, 9, 10, 12) and weight.shape == (3, 9)
    assert maps.dtype == torch.float64 and weight.dtype == torch.float64
    for b in range(3):
        ref_maps, ref_w = reference_target(kp[b].numpy(), input_size, heatmap_size, 1.5, unbiased)
        np.testing.assert_allclose(maps[b].numpy(), ref_maps, atol=1e-12)
        np.testing.assert_array_equal(weight[b].numpy(), ref_w)
    if not unbiased:
        assert weight[0, 0] == 0 and weight[0, 1] == 1 and maps[0, 1, :, 0].max() > 0


def test_rounding_convention_and_hand_values() -> None:
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0)
    # x = 5.9 -> 1.475 -> peak column 1; x = 6.0 -> 1.5 -> column 2 (round half up); y = 9 -> 2.25 -> row 2
    kp = torch.tensor([[[5.9, 9.0, 2.0], [6.0, 9.0, 1.0]]])
    _t = codec.encode(kp)
    maps, weight = _t["heatmaps"], _t["weights"]
    assert weight.tolist() == [[1.0, 1.0]]
    assert tuple(divmod(int(maps[0, 0].argmax()), 48)) == (2, 1)
    assert tuple(divmod(int(maps[0, 1].argmax()), 48)) == (2, 2)
    m = maps[0, 1]
    assert m[2, 2] == 1.0
    assert m[2, 3].item() == pytest.approx(math.exp(-1 / 8), rel=1e-6)
    assert m[3, 3].item() == pytest.approx(math.exp(-2 / 8), rel=1e-6)
    assert m[2, 8].item() == pytest.approx(math.exp(-36 / 8), rel=1e-6)  # radius 3 sigma = 6 is inside
    assert m[2, 9] == 0.0 and m[9, 2] == 0.0  # radius 7 is outside
    assert int((m > 0).sum()) == 9 * 9  # columns 0..8 and rows 0..8 (the parts left of / above 0 are clipped)


def test_unbiased_centre_is_the_float_position() -> None:
    codec = HeatmapCodec((64, 64), (16, 16), sigma=2.0, unbiased=True)
    _t = codec.encode(torch.tensor([[[21.0, 30.0, 2.0]]]))  # -> (5.25, 7.5)
    maps, _ = _t["heatmaps"], _t["weights"]
    m = maps[0, 0]
    for r, c in [(7, 5), (8, 5), (7, 6), (3, 2)]:
        assert m[r, c].item() == pytest.approx(math.exp(-((c - 5.25) ** 2 + (r - 7.5) ** 2) / 8), rel=1e-6)


def test_weights_follow_visibility_and_map_overlap() -> None:
    codec = HeatmapCodec((192, 256), (48, 64), sigma=2.0)
    kp = torch.tensor(
        [[[50.0, 60.0, 0.0], [50.0, 60.0, 1.0], [50.0, 60.0, 2.0], [-40.0, 60.0, 2.0], [50.0, 290.0, 2.0]]]
    )
    _t = codec.encode(kp)
    maps, weight = _t["heatmaps"], _t["weights"]
    assert weight.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0]]
    assert maps[0, 0].abs().sum() == 0 and maps[0, 3].abs().sum() == 0 and maps[0, 4].abs().sum() == 0


def test_unlabelled_nan_is_ignored_but_labelled_nan_raises() -> None:
    codec = HeatmapCodec((192, 256), (48, 64))
    _t = codec.encode(torch.tensor([[[float("nan"), 3.0, 0.0], [10.0, 12.0, 2.0]]]))
    maps, weight = _t["heatmaps"], _t["weights"]
    assert torch.isfinite(maps).all() and weight.tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="keypoint 1 of sample 0 is labelled"):
        codec.encode(torch.tensor([[[1.0, 3.0, 2.0], [float("inf"), 12.0, 2.0]]]))
    with pytest.raises(ValueError, match=r"\(B, K, 3\)"):
        codec.encode(torch.zeros(4, 3))


def test_background_channel() -> None:
    codec = HeatmapCodec((64, 64), (16, 16), sigma=2.0, background=True)
    kp = torch.tensor([[[20.0, 20.0, 2.0], [26.0, 20.0, 2.0], [0.0, 0.0, 0.0]]])
    _t = codec.encode(kp)
    maps, weight = _t["heatmaps"], _t["weights"]
    assert maps.shape == (1, 4, 16, 16) and weight.shape == (1, 3)
    expected = (1.0 - maps[0, :3].max(dim=0).values).clamp(min=0)
    torch.testing.assert_close(maps[0, 3], expected)
    assert maps[0, 3, 5, 5] == 0.0 and maps[0, 3, 15, 15] == 1.0
    assert maps[0, 3, 5, 6].item() == pytest.approx(1 - math.exp(-1 / 8), rel=1e-5)  # joints at columns 5 and 7: G(1)


def test_batch_encoding_equals_per_sample_encoding() -> None:
    gen = torch.Generator().manual_seed(3)
    kp = torch.rand(5, 4, 3, generator=gen) * torch.tensor([192.0, 256.0, 3.0])
    kp[..., 2] = kp[..., 2].floor()
    codec = HeatmapCodec(unbiased=True)
    _t = codec.encode(kp)
    maps, weight = _t["heatmaps"], _t["weights"]
    for b in range(5):
        _t = codec.encode(kp[b : b + 1])
        m, w = _t["heatmaps"], _t["weights"]
        torch.testing.assert_close(maps[b : b + 1], m)
        torch.testing.assert_close(weight[b : b + 1], w)

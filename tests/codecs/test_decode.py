"""Heatmap decoding: scores, argmax / quarter offset hand cases, DARK on analytic maps, background handling."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_pose.codecs import (
    HeatmapCodec,
    dark_refine,
    gaussian_blur,
    heatmap_maximum,
    heatmap_scores,
    quarter_offset,
)


@pytest.mark.parametrize("mode", ["argmax", "quarter", "dark"])
def test_scores_equal_heatmap_maxima(mode: str) -> None:
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 5, 16, 12, generator=gen)
    maps[0, 0] = -maps[0, 0].abs() - 0.1  # all negative: score <= 0, coords (0, 0)
    codec = HeatmapCodec((48, 64), (12, 16), decode=mode)
    coords, scores = codec.decode(maps)
    torch.testing.assert_close(scores, maps.flatten(2).max(dim=-1).values)
    torch.testing.assert_close(heatmap_scores(maps), scores)
    assert coords.shape == (3, 5, 2)
    assert coords[0, 0].tolist() == [0.0, 0.0]


def test_argmax_and_quarter_hand_case() -> None:
    maps = torch.zeros(1, 2, 10, 12)
    maps[0, 0, 7, 10] = 1.0
    maps[0, 0, 7, 11] = 0.6  # right neighbour higher -> +0.25 in x
    maps[0, 0, 7, 9] = 0.4
    maps[0, 0, 6, 10] = 0.5  # upper neighbour higher -> -0.25 in y
    maps[0, 0, 8, 10] = 0.2
    maps[0, 1, 0, 11] = 2.0  # corner: no neighbours on two sides -> no offset
    maps[0, 1, 1, 11] = 1.0
    px, py, scores = heatmap_maximum(maps)
    assert px.tolist() == [[10, 11]] and py.tolist() == [[7, 0]] and scores.tolist() == [[1.0, 2.0]]
    x, y = quarter_offset(maps, px, py)
    assert x.tolist() == [[10.25, 11.0]] and y.tolist() == [[6.75, 0.0]]
    codec = HeatmapCodec((48, 40), (12, 10), decode="quarter")  # stride 4
    coords, _ = codec.decode(maps)
    assert coords.tolist() == [[[41.0, 27.0], [44.0, 0.0]]]


def test_quarter_offset_uses_column_one() -> None:
    """HRNet skips px == 1 (it tests 1 < px); both neighbours exist there, so we apply the offset."""
    maps = torch.zeros(1, 1, 5, 5)
    maps[0, 0, 2, 1], maps[0, 0, 2, 0], maps[0, 0, 2, 2] = 1.0, 0.7, 0.2
    x, _ = quarter_offset(maps, *heatmap_maximum(maps)[:2])
    assert x.item() == 0.75


def test_dark_recovers_an_anisotropic_correlated_gaussian() -> None:
    """log of any Gaussian is quadratic: the Newton step (with the cross term) is exact, also next to the border."""
    h, w = 20, 24
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    cov_inv = torch.linalg.inv(torch.tensor([[3.0, 1.2], [1.2, 2.0]], dtype=torch.float64))
    centres = [(7.3, 9.6), (0.2, 5.5), (23.4, 18.9), (12.0, 0.45)]
    maps = torch.empty(1, len(centres), h, w, dtype=torch.float64)
    for k, (cx, cy) in enumerate(centres):
        d = torch.stack([xs - cx, ys - cy], dim=-1)
        maps[0, k] = torch.exp(-0.5 * torch.einsum("hwi,ij,hwj->hw", d, cov_inv, d))
    px, py, _ = heatmap_maximum(maps)
    x, y = dark_refine(maps, px, py)
    expected = torch.tensor(centres, dtype=torch.float64)
    torch.testing.assert_close(torch.stack([x, y], -1)[0], expected, atol=1e-9, rtol=0)


def test_blur_border_extrapolation_removes_the_zero_padding_bias() -> None:
    codec = HeatmapCodec((64, 64), (16, 16), unbiased=True)
    kp = torch.tensor([[[0.0, 30.0, 2.0], [4.0, 30.0, 2.0], [63.0, 30.0, 2.0]]], dtype=torch.float64)
    _t = codec.encode(kp)
    maps, _ = _t["heatmaps"], _t["weights"]
    px, py, _ = heatmap_maximum(maps)
    u = kp[0, :, 0] / 4
    x_zero, _ = dark_refine(gaussian_blur(maps, 11, border="zero"), px, py)
    x_ext, _ = dark_refine(gaussian_blur(maps, 11), px, py)
    assert (x_zero[0] - u).abs().max() > 0.3  # reference DARK padding drags border peaks inwards
    assert (x_ext[0] - u).abs().max() < 0.02
    # the blur itself is a normalised Gaussian: interior mass is preserved
    interior = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    interior[0, 0, 15, 15] = 1.0
    blurred = gaussian_blur(interior, 11, border="zero")
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-12)
    sigma = 2.0  # OpenCV rule for ksize 11
    assert blurred[0, 0, 15, 16].item() / blurred[0, 0, 15, 15].item() == pytest.approx(
        math.exp(-1 / (2 * sigma**2)), rel=1e-9
    )


def test_background_codec_decodes_k_or_k_plus_one_channels() -> None:
    codec = HeatmapCodec((64, 64), (16, 16), background=True, num_keypoints=2)
    kp = torch.tensor([[[10.0, 20.0, 2.0], [40.0, 52.0, 2.0]]])
    _t = codec.encode(kp)
    maps, _ = _t["heatmaps"], _t["weights"]
    with_bg, s1 = codec.decode(maps)
    without_bg, s2 = codec.decode(maps[:, :2])
    torch.testing.assert_close(with_bg, without_bg)
    torch.testing.assert_close(s1, s2)
    torch.testing.assert_close(with_bg, torch.tensor([[[12.0, 20.0], [40.0, 52.0]]]))  # 2.5 -> 3 (round half up)
    with pytest.raises(ValueError, match="num_keypoints"):
        HeatmapCodec((64, 64), (16, 16), background=True).decode(maps)
    with pytest.raises(ValueError, match="expected 2 or 3"):
        codec.decode(torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="expects"):
        HeatmapCodec((64, 64), (16, 16)).decode(torch.zeros(1, 2, 8, 8))


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="decode"):
        HeatmapCodec(decode="soft")
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec(sigma=0.0)
    with pytest.raises(ValueError, match="blur_kernel"):
        HeatmapCodec(blur_kernel=10)
    with pytest.raises(ValueError, match="input_size"):
        HeatmapCodec(input_size=(192.5, 256))


def test_codec_stride_and_dtypes() -> None:
    codec = HeatmapCodec((190, 250), (48, 64))
    assert codec.stride == pytest.approx((190 / 48, 250 / 64))
    _t = codec.encode(torch.tensor([[[10, 20, 2]]]))  # integer keypoints -> float32 targets
    maps, weight = _t["heatmaps"], _t["weights"]
    assert maps.dtype == torch.float32 and weight.dtype == torch.float32
    coords, scores = codec.decode(maps.double())
    assert coords.dtype == torch.float64 and scores.dtype == torch.float64

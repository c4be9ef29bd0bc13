"""Encode -> decode round trips of HeatmapCodec, with the provable error bounds (heatmap px) per decoder.

Bounds (u = x / stride, heatmap px; W_h the heatmap width; the same holds per axis):

* unbiased + DARK: the log of the target is an exact quadratic and the blur keeps it Gaussian (border continued by
  log-quadratic extrapolation), so the error is tiny everywhere, including x = 0 and x = W_in - 1: assert <= 0.1.
* unbiased + quarter: the argmax p is the grid point nearest to u and the higher neighbour tells the side of u, so
  |u - (p +- 1/4)| <= 1/4 whenever p has both neighbours (0.5 <= u <= W_h - 1.5). At p = 0 or W_h - 1 no offset is
  applied, so the error is |u - p| <= 0.5 on the left and <= max(0.5, 1 - 1/s) on the right (in-image positions
  reach u = (W_in - 1)/s = W_h - 1/s, beyond the last column). 0.25 is NOT achievable at the borders.
* round + quarter: the rounded target is symmetric, the quarter offset never fires, decode = round(u): the error is
  exactly |u - round(u)| <= 0.5 for u <= W_h - 1 (tight: the max over random samples approaches 0.5), and
  u - (W_h - 1) <= 1 - 1/s beyond the last column. 0.25 px is only the *mean* error.
"""

from __future__ import annotations

import pytest
import torch

from lightning_pose.codecs import HeatmapCodec

SIZES = [
    ((192, 256), (48, 64)),  # 256x192 -> 64x48, stride 4
    ((256, 256), (64, 64)),  # stride 4
    ((368, 368), (46, 46)),  # CPM, stride 8
    ((190, 250), (48, 64)),  # non-integer strides 3.958 x 3.906
]


def random_keypoints(input_size, n: int = 1200, seed: int = 0) -> torch.Tensor:
    """(1, n, 3) float64 in-image keypoints, a third of them hugging the left/right/top/bottom borders."""
    gen = torch.Generator().manual_seed(seed)
    w, h = input_size
    x = torch.rand(n, generator=gen, dtype=torch.float64) * (w - 1)
    y = torch.rand(n, generator=gen, dtype=torch.float64) * (h - 1)
    m = n // 12
    edge = torch.rand(m, generator=gen, dtype=torch.float64) * 0.75
    x[:m], x[m : 2 * m] = edge, (w - 1) - edge
    y[2 * m : 3 * m], y[3 * m : 4 * m] = edge, (h - 1) - edge
    x[4 * m] = 0.0
    x[4 * m + 1] = w - 1.0
    y[4 * m + 2] = 0.0
    y[4 * m + 3] = h - 1.0
    return torch.stack([x, y, torch.full_like(x, 2.0)], dim=-1)[None]


def roundtrip_errors(codec: HeatmapCodec, kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _t = codec.encode(kp)
    maps, weight = _t["heatmaps"], _t["weights"]
    assert bool((weight == 1).all())
    coords, _ = codec.decode(maps)
    stride = torch.tensor(codec.stride, dtype=torch.float64)
    u = kp[0, :, :2] / stride
    return (coords[0].double() / stride - u).abs(), u


@pytest.mark.parametrize("input_size,heatmap_size", SIZES)
def test_dark_unbiased_roundtrip_within_0_1_px(input_size, heatmap_size) -> None:
    kp = random_keypoints(input_size)
    for blur in (11, 0):
        codec = HeatmapCodec(input_size, heatmap_size, unbiased=True, decode="dark", blur_kernel=blur)
        err, _ = roundtrip_errors(codec, kp)
        assert err.max() <= 0.1, (blur, err.max())
    err32, _ = roundtrip_errors(HeatmapCodec(input_size, heatmap_size, unbiased=True, decode="dark"), kp.float())
    assert err32.max() <= 0.1


@pytest.mark.parametrize("input_size,heatmap_size", SIZES)
def test_quarter_unbiased_roundtrip_bounds(input_size, heatmap_size) -> None:
    kp = random_keypoints(input_size, seed=1)
    err, u = roundtrip_errors(HeatmapCodec(input_size, heatmap_size, unbiased=True, decode="quarter"), kp)
    size = torch.tensor(heatmap_size, dtype=torch.float64)
    s = torch.tensor(input_size, dtype=torch.float64) / size
    both_neighbours = (u >= 0.5 + 1e-6) & (u <= size - 1.5 - 1e-6)
    assert err[both_neighbours].max() <= 0.25 + 1e-6
    assert err[both_neighbours].max() > 0.2  # the bound is tight
    left = u < 0.5
    torch.testing.assert_close(err[left], u[left])  # no offset at column/row 0: error = u
    assert (err <= torch.clamp(1 - 1 / s, min=0.5) + 1e-6).all()
    assert err.max() > 0.25  # 0.25 is not reachable at the borders


@pytest.mark.parametrize("input_size,heatmap_size", SIZES)
def test_quarter_round_encoding_error_is_the_rounding_error(input_size, heatmap_size) -> None:
    kp = random_keypoints(input_size, seed=2)
    err, u = roundtrip_errors(HeatmapCodec(input_size, heatmap_size, unbiased=False, decode="quarter"), kp)
    size = torch.tensor(heatmap_size, dtype=torch.float64)
    s = torch.tensor(input_size, dtype=torch.float64) / size
    covered = u <= size - 1
    torch.testing.assert_close(err[covered], (u - torch.floor(u + 0.5)).abs()[covered])
    assert err[covered].max() <= 0.5 and err[covered].max() > 0.45
    uniform = err[kp.shape[1] // 3 :]  # the uniformly drawn part (the first third hugs the borders)
    assert uniform.mean() == pytest.approx(0.25, abs=0.02)  # |U(-1/2, 1/2)| has mean 1/4
    beyond = ~covered
    assert beyond.any()
    torch.testing.assert_close(err[beyond], (u - (size - 1)).expand_as(u)[beyond])
    assert (err <= torch.clamp(1 - 1 / s, min=0.5) + 1e-9).all()


def test_argmax_decoder_returns_grid_points() -> None:
    codec = HeatmapCodec((192, 256), (48, 64), decode="argmax", unbiased=True)
    kp = torch.tensor([[[41.0, 70.0, 2.0], [42.5, 70.0, 2.0]]])  # u = 10.25 -> 10; 10.625 -> 11
    coords, _ = codec.decode(codec.encode(kp)["heatmaps"])
    torch.testing.assert_close(coords, torch.tensor([[[40.0, 68.0], [44.0, 68.0]]]))

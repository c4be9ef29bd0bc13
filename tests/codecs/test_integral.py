"""soft_argmax: exact grid recovery, Debias correction, sub-pixel Gaussian logits."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_pose.codecs import HeatmapCodec, RegressionCodec, heatmap_scores, soft_argmax


def test_one_hot_logits_recover_the_grid_location() -> None:
    h, w = 16, 12
    logits = torch.zeros(2, 3, h, w, dtype=torch.float64)
    locs = [[(0, 0), (11, 15), (5, 7)], [(3, 9), (10, 2), (6, 6)]]
    for b in range(2):
        for k, (i, j) in enumerate(locs[b]):
            logits[b, k, j, i] = 1e4
    coords, probs = soft_argmax(logits)
    expected = torch.tensor([[(i / w, j / h) for i, j in row] for row in locs], dtype=torch.float64)
    torch.testing.assert_close(coords, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(probs.sum(dim=(-2, -1)), torch.ones(2, 3, dtype=torch.float64))
    # large beta does the same with moderate logits
    coords_beta, _ = soft_argmax(logits / 1e4 * 5.0, beta=100.0)
    torch.testing.assert_close(coords_beta, expected, atol=1e-12, rtol=0)
    # normalised coords are the RegressionCodec frame: stride-4 heatmap column i -> input x = 4 i
    reg = RegressionCodec((4 * w, 4 * h))
    torch.testing.assert_close(reg.decode(coords)[0][0, 2], torch.tensor([20.0, 28.0], dtype=torch.float64))


def test_debias_removes_the_centre_bias_quantitatively() -> None:
    h, w, peak, beta = 32, 32, 4.0, 1.0
    i0, j0 = 3, 27
    logits = torch.zeros(1, 1, h, w, dtype=torch.float64)
    logits[0, 0, j0, i0] = peak
    plain, _ = soft_argmax(logits, beta=beta)
    # closed form of the plain expectation: peak weight e^{beta L}, every other pixel weight 1
    e = math.exp(beta * peak)
    n = h * w
    sum_x = h * sum(i / w for i in range(w))
    sum_y = w * sum(j / h for j in range(h))
    x_plain = (e * i0 / w + sum_x - i0 / w) / (e + n - 1)
    y_plain = (e * j0 / h + sum_y - j0 / h) / (e + n - 1)
    assert plain[0, 0].tolist() == pytest.approx([x_plain, y_plain], abs=1e-12)
    bias_plain = abs(plain[0, 0, 0].item() - i0 / w)
    assert bias_plain > 0.3  # pulled strongly to the centre at this finite beta
    debiased, _ = soft_argmax(logits, beta=beta, debias=True)
    torch.testing.assert_close(debiased[0, 0], torch.tensor([i0 / w, j0 / h], dtype=torch.float64), atol=1e-9, rtol=0)
    # with a larger peak the plain bias shrinks but stays, debias stays exact
    logits[0, 0, j0, i0] = 9.0
    plain9, _ = soft_argmax(logits)
    deb9, _ = soft_argmax(logits, debias=True)
    assert 1e-3 < abs(plain9[0, 0, 0].item() - i0 / w) < bias_plain
    assert abs(deb9[0, 0, 0].item() - i0 / w) < 1e-9


def test_debias_handles_huge_logits_without_overflow() -> None:
    logits = torch.zeros(1, 1, 8, 8)
    logits[0, 0, 2, 5] = 500.0
    coords, _ = soft_argmax(logits, beta=10.0, debias=True)
    assert torch.isfinite(coords).all()
    torch.testing.assert_close(coords[0, 0], torch.tensor([5 / 8, 2 / 8]))


def test_gaussian_logits_at_a_subpixel_location() -> None:
    h, w, sigma = 48, 64, 1.5
    u, v = 20.3, 13.7
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    logits = (-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma**2))[None, None]
    coords, probs = soft_argmax(logits)
    torch.testing.assert_close(coords[0, 0], torch.tensor([u / w, v / h], dtype=torch.float64), atol=1e-6, rtol=0)
    # the same location through HeatmapCodec's stride convention: input x = u * stride
    codec = HeatmapCodec((4 * w, 4 * h), (w, h), unbiased=True, decode="dark", blur_kernel=0)
    hm_coords, _ = codec.decode(torch.exp(logits))
    reg_coords, _ = RegressionCodec((4 * w, 4 * h)).decode(coords)
    torch.testing.assert_close(hm_coords[0, 0], reg_coords[0, 0], atol=1e-4, rtol=0)
    assert heatmap_scores(probs)[0, 0].item() == pytest.approx(probs.max().item())


def test_bad_beta_raises() -> None:
    with pytest.raises(ValueError, match="beta"):
        soft_argmax(torch.zeros(1, 1, 4, 4), beta=0.0)

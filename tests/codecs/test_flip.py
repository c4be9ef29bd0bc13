"""Flip test: heatmaps of the flipped image, flipped back, must decode where the direct heatmaps do.

Convention A predicts (docs/conventions.md#heatmap-frame): a plain W-flip leaves the flipped-back peak 1 - 1/s heatmap px left of the
direct one (0.75 px at stride 4, 0.875 at stride 8, 0 at stride 1); HRNet's integer 1-px shift leaves it 1/s px to
the right; the codec's "exact" shift of 1 - 1/s px removes the offset.
"""

from __future__ import annotations

import pytest
import torch

from lightning_pose.codecs import HeatmapCodec, flip_heatmaps, heatmap_flip_shift, shift_maps_x
from lightning_pose.skeletons import COCO, MPII

SIZES = [((192, 256), (48, 64)), ((256, 256), (64, 64)), ((368, 368), (46, 46)), ((190, 250), (48, 64))]


def keypoints_and_flipped(input_size, flip_indices, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random in-image keypoints (first rows hug the left/right borders) and the keypoints of the flipped image."""
    gen = torch.Generator().manual_seed(seed)
    w, h = input_size
    k = len(flip_indices)
    x = torch.rand(batch, k, generator=gen, dtype=torch.float64) * (w - 1)
    y = torch.rand(batch, k, generator=gen, dtype=torch.float64) * (h - 1)
    x[:4] = torch.rand(4, k, generator=gen, dtype=torch.float64) * 0.75
    x[4:8] = (w - 1) - torch.rand(4, k, generator=gen, dtype=torch.float64) * 0.75
    kp = torch.stack([x, y, torch.full_like(x, 2.0)], dim=-1)
    flipped = kp[:, flip_indices].clone()  # joint j of the flipped image is joint flip_indices[j] of the original
    flipped[..., 0] = (w - 1) - flipped[..., 0]
    return kp, flipped


@pytest.mark.parametrize("input_size,heatmap_size", SIZES)
def test_flip_back_dark_agrees_with_direct_decode(input_size, heatmap_size) -> None:
    fi = COCO.flip_indices
    kp, kp_flipped = keypoints_and_flipped(input_size, fi, batch=24, seed=0)
    codec = HeatmapCodec(input_size, heatmap_size, unbiased=True, decode="dark")
    s = codec.stride[0]
    _t = codec.encode(kp)
    direct_maps, _ = _t["heatmaps"], _t["weights"]
    _t = codec.encode(kp_flipped)
    flipped_maps, _ = _t["heatmaps"], _t["weights"]
    direct, _ = codec.decode(direct_maps)

    def back(shift: str) -> torch.Tensor:
        coords, _ = codec.decode(codec.flip_back(flipped_maps, fi, shift=shift))
        return coords

    exact = back("exact")
    dx = (exact - direct)[..., 0] / s
    assert dx.abs().max() <= 0.1  # within the DARK round-trip tolerance, borders included
    assert ((exact - kp[..., :2])[..., 0] / s).abs().max() <= 0.1
    torch.testing.assert_close(exact[..., 1], direct[..., 1])  # y is untouched by a horizontal flip
    # averaged flip test stays within tolerance too
    merged, _ = codec.decode(0.5 * (direct_maps + codec.flip_back(flipped_maps, fi)))
    assert ((merged - kp[..., :2])[..., 0] / s).abs().max() <= 0.1

    # without the shift: off by -(1 - 1/s) heatmap px everywhere, as docs/conventions.md#heatmap-frame predicts (0.75 px at stride 4)
    none = (back("none") - direct)[..., 0] / s
    torch.testing.assert_close(none, torch.full_like(none, -(1 - 1 / s)), atol=0.02, rtol=0)
    # HRNet's integer shift: +1/s heatmap px (one input px). Only checked where the DARK blur (radius 5) does not
    # reach column 0, which the integer shift fills by replicating column 1 (a plateau, not a Gaussian tail).
    pixel = (back("pixel") - direct)[..., 0] / s
    u = direct[..., 0] / s
    interior = (u > 7) & (u < heatmap_size[0] - 8)
    torch.testing.assert_close(pixel[interior], torch.full_like(pixel[interior], 1 / s), atol=0.02, rtol=0)


@pytest.mark.parametrize("input_size,heatmap_size", SIZES[:3])
def test_flip_back_quantised_decoders_mean_offsets(input_size, heatmap_size) -> None:
    """Round encoding + quarter decode: each flipped-back decode stays within the round-trip bound and the mean
    signed offset against the direct decode is -(1 - 1/s) (none), +1/s (pixel) or, for the exact shift
    delta = 1 - 1/s in (0.5, 1), 0.75 - delta: a symmetric peak moved by delta is read by argmax + quarter as
    moved by exactly 0.75 (argmax one column right, offset -1/4), i.e. 0 at stride 4 and -0.125 at stride 8
    (below the decoder's 1/4-px resolution)."""
    fi = MPII.flip_indices
    kp, kp_flipped = keypoints_and_flipped(input_size, fi, batch=120, seed=1)
    codec = HeatmapCodec(input_size, heatmap_size, unbiased=False, decode="quarter")
    s = codec.stride[0]
    direct, _ = codec.decode(codec.encode(kp)["heatmaps"])
    _t = codec.encode(kp_flipped)
    flipped_maps, _ = _t["heatmaps"], _t["weights"]
    u = kp[..., 0] / s
    interior = (u > 2) & (u < heatmap_size[0] - 3)
    expected = {"exact": 0.75 - (1 - 1 / s), "none": -(1 - 1 / s), "pixel": 1 / s}
    for shift, mean in expected.items():
        coords, _ = codec.decode(codec.flip_back(flipped_maps, fi, shift=shift))
        diff = ((coords - direct)[..., 0] / s)[interior]
        assert diff.mean().item() == pytest.approx(mean, abs=0.03), shift
        if shift == "exact":
            # rounding error (<= 0.5) plus the quarter decoder's reading of the shift (|0.75 - delta|)
            err = (coords[..., 0] / s - u).abs()
            quantisation = abs(0.75 - (1 - 1 / s))
            assert err[interior].max() <= 0.5 + quantisation + 1e-6
            assert err.max() <= max(0.5, 1 - 1 / s) + quantisation + 1e-6


def test_stride_one_needs_no_shift() -> None:
    assert heatmap_flip_shift(64, 64) == 0.0
    assert heatmap_flip_shift(256, 64) == pytest.approx(0.75)
    assert heatmap_flip_shift(368, 46) == pytest.approx(0.875)
    codec = HeatmapCodec((64, 64), (64, 64), unbiased=True, decode="dark")
    kp, kp_flipped = keypoints_and_flipped((64, 64), [1, 0], batch=10, seed=2)
    direct, _ = codec.decode(codec.encode(kp)["heatmaps"])
    back, _ = codec.decode(codec.flip_back(codec.encode(kp_flipped)["heatmaps"], [1, 0]))
    torch.testing.assert_close(back, direct, atol=1e-3, rtol=0)


def test_channels_are_permuted_with_flip_indices() -> None:
    maps = torch.zeros(1, 3, 5, 6)
    maps[0, 0, 2, 1] = 1.0  # channel 0 peak at column 1
    maps[0, 2, 3, 4] = 2.0
    out = flip_heatmaps(maps, [2, 1, 0], 0.0)
    assert out[0, 2, 2, 4] == 1.0  # channel 0 -> channel 2, column 1 -> 6 - 1 - 1 = 4
    assert out[0, 0, 3, 1] == 2.0
    assert out[0, 1].abs().sum() == 0
    with pytest.raises(ValueError, match="not a permutation"):
        flip_heatmaps(maps, [0, 0, 1], 0.0)
    with pytest.raises(ValueError, match="3 keypoints"):
        flip_heatmaps(maps, [1, 0], 0.0)


def test_background_channel_is_flipped_not_permuted() -> None:
    codec = HeatmapCodec((64, 64), (16, 16), background=True, num_keypoints=2)
    _t = codec.encode(torch.tensor([[[8.0, 20.0, 2.0], [40.0, 20.0, 2.0]]]))
    maps, _ = _t["heatmaps"], _t["weights"]
    out = codec.flip_back(maps, [1, 0], shift="none")
    torch.testing.assert_close(out[:, 2], maps[:, 2].flip(-1))
    torch.testing.assert_close(out[:, 0], maps[:, 1].flip(-1))
    with pytest.raises(ValueError, match="channels do not match"):
        HeatmapCodec((64, 64), (16, 16)).flip_back(maps, [1, 0])


def test_shift_maps_x_integer_and_fractional() -> None:
    maps = torch.arange(12.0).reshape(1, 2, 6) ** 2
    pixel = shift_maps_x(maps, 1.0, border="replicate")
    torch.testing.assert_close(pixel[..., 1:], maps[..., :-1])  # HRNet: out[..., 1:] = out[..., :-1]
    torch.testing.assert_close(pixel[..., 0], maps[..., 0])
    # cubic interpolation reproduces a quadratic exactly away from the border: f(w - 0.25)
    frac = shift_maps_x(maps, 0.25, interpolation="cubic")
    w = torch.arange(6.0)
    expected = torch.stack([(w - 0.25) ** 2, (w + 6 - 0.25) ** 2])[None]
    torch.testing.assert_close(frac[..., 2:5], expected[..., 2:5])
    lin = shift_maps_x(maps, 0.25, interpolation="linear", border="replicate")
    torch.testing.assert_close(lin[..., 1:], 0.75 * maps[..., 1:] + 0.25 * maps[..., :-1])

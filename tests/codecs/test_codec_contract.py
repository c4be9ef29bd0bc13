"""One template applied to every codec: the :class:`~lightning_pose.codecs.base.Codec` contract.

For each codec the table gives how to build it, a batch of input-frame keypoints (px) and the *ideal* network
outputs for its targets (what a perfect network predicts); the template then checks

* shapes: ``encode`` returns exactly ``target_keys``, batched, with ``(B, K)`` weights; ``decode`` returns
  ``coords (B, K, 2)`` (bottom-up ``(B, P, K, 2)``) and ``scores (B, K)`` (``(B, P, K)``);
* round trip: ``decode(ideal(encode(kp)))`` recovers the keypoints in input-frame px within the stated bound (the
  keypoints sit on the heatmap grid, ``x = i * stride``, where every decoder below is exact);
* errors: keypoints of the wrong shape, a labelled joint with a NaN coordinate and outputs of the wrong shape raise
  ``ValueError`` naming the codec method.

Sizes: input 64 x 48 px (W x H), heatmaps 16 x 12 (stride 4), K = 4 joints, B = 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from ae_helpers import ideal_tags
from torch import Tensor

from lightning_pose.codecs import Codec, DiskCodec, HeatmapCodec, HybridCodec, IntegralCodec, RegressionCodec
from lightning_pose.codecs.associative_embedding import AssociativeEmbeddingCodec

INPUT, HEATMAP, STRIDE, K, B = (64, 48), (16, 12), 4, 4, 2


def _grid_keypoints() -> Tensor:
    """``(B, K, 3)`` float64 keypoints on the heatmap grid (``x = 4 i``, ``y = 4 j``), all visible, away from the
    border, each joint at a different place."""
    cols = torch.tensor([[3, 7, 11, 5], [4, 9, 12, 6]], dtype=torch.float64)
    rows = torch.tensor([[2, 5, 8, 9], [3, 3, 7, 8]], dtype=torch.float64)
    return torch.stack([cols * STRIDE, rows * STRIDE, torch.full_like(cols, 2.0)], dim=-1)


def _one_hot_logits(kp: Tensor, height: float = 12.0) -> Tensor:
    """Logits 0 except ``height`` at each joint's heatmap pixel: the Debias soft-argmax is exact on them."""
    logits = torch.zeros(kp.shape[0], kp.shape[1], HEATMAP[1], HEATMAP[0], dtype=torch.float64)
    for b in range(kp.shape[0]):
        for k in range(kp.shape[1]):
            logits[b, k, int(kp[b, k, 1]) // STRIDE, int(kp[b, k, 0]) // STRIDE] = height
    return logits


@dataclass
class Case:
    build: Callable[[], Any]
    #: targets -> positional arguments of decode (the ideal network outputs)
    ideal: Callable[[Any, dict[str, Tensor], Tensor], tuple]
    #: round-trip bound in input px
    bound: float
    #: outputs of the wrong shape for decode
    bad_outputs: Callable[[], tuple]
    bottom_up: bool = False


def _hybrid_ideal(codec: HybridCodec, t: dict[str, Tensor], kp: Tensor) -> tuple:
    det = torch.where(t["disks"] > 0, 8.0, -8.0)  # logits of probability ~1 on the disk, ~0 elsewhere
    return ({"det": det, "reg": t["heatmaps"], "coords": t["coords"]},)


def _ae_ideal(codec: AssociativeEmbeddingCodec, t: dict[str, Tensor], kp: Tensor) -> tuple:
    return t["heatmaps"], ideal_tags(t["tag_index"], t["tag_valid"], K, codec.heatmap_size)


CASES = {
    "heatmap_quarter": Case(
        lambda: HeatmapCodec(INPUT, HEATMAP, sigma=2.0),
        lambda c, t, kp: (t["heatmaps"],),
        1e-5,
        lambda: (torch.zeros(B, K, 12),),
    ),
    "heatmap_dark_unbiased": Case(
        lambda: HeatmapCodec(INPUT, HEATMAP, sigma=2.0, unbiased=True, decode="dark"),
        lambda c, t, kp: (t["heatmaps"],),
        0.007 * STRIDE,
        lambda: (torch.zeros(B, K, 6, 8),),
    ),
    "heatmap_background": Case(
        lambda: HeatmapCodec(INPUT, HEATMAP, sigma=2.0, background=True, num_keypoints=K),
        lambda c, t, kp: (t["heatmaps"],),
        1e-5,
        lambda: (torch.zeros(B, K + 2, 12, 16),),
    ),
    "regression": Case(
        lambda: RegressionCodec(INPUT), lambda c, t, kp: (t["coords"],), 1e-9, lambda: (torch.zeros(B, K, 3),)
    ),
    "regression_rle": Case(
        lambda: RegressionCodec(INPUT),
        lambda c, t, kp: (t["coords"], torch.full_like(t["coords"], 0.25)),
        1e-9,
        lambda: (torch.zeros(B, K, 2), torch.zeros(B, K, 3)),
    ),
    "disk": Case(
        lambda: DiskCodec(INPUT, HEATMAP, radius=0.5),
        lambda c, t, kp: (t["disks"],),
        1e-5,
        lambda: (torch.zeros(B, K, 12),),
    ),
    "integral_debias": Case(
        lambda: IntegralCodec(INPUT, HEATMAP, beta=1.0, debias=True, heatmap_sigma=2.0),
        lambda c, t, kp: tuple(c.integrate(_one_hot_logits(kp))[key] for key in ("coords", "probs")),
        1e-6,
        lambda: (torch.zeros(B, K, 2), torch.zeros(B, K, 12)),
    ),
    "hybrid_fuse": Case(
        lambda: HybridCodec(INPUT, HEATMAP, sigma=2.0, disk_radius=0.5),
        _hybrid_ideal,
        1e-5,
        lambda: ({"det": torch.zeros(B, K, 12, 16), "reg": torch.zeros(B, K, 6, 8), "coords": torch.zeros(B, K, 2)},),
    ),
    "hybrid_detection": Case(
        lambda: HybridCodec(INPUT, HEATMAP, disk_radius=0.5, decode_mode="detection"),
        _hybrid_ideal,
        1e-5,
        lambda: ({"det": torch.zeros(B, K, 6, 8), "reg": torch.zeros(B, K, 12, 16), "coords": torch.zeros(B, K, 2)},),
    ),
    "associative_embedding": Case(
        lambda: AssociativeEmbeddingCodec(INPUT, HEATMAP, K, sigma=2.0, max_people=3),
        _ae_ideal,
        1e-5,
        lambda: (torch.zeros(B, K + 1, 12, 16), torch.zeros(B, K + 1, 12, 16)),
        bottom_up=True,
    ),
}


def _keypoints(case: Case) -> Tensor:
    kp = _grid_keypoints()
    return kp[:, None] if case.bottom_up else kp  # bottom-up: one person per image, (B, N=1, K, 3)


@pytest.mark.parametrize("name", sorted(CASES))
def test_codec_follows_the_contract_shapes(name: str) -> None:
    case = CASES[name]
    codec = case.build()
    assert isinstance(codec, Codec)
    assert tuple(codec.input_size) == INPUT
    targets = codec.encode(_keypoints(case))
    assert isinstance(targets, dict) and tuple(targets) == tuple(codec.target_keys), (tuple(targets), codec.target_keys)
    for key, value in targets.items():
        assert isinstance(value, Tensor) and value.shape[0] == B, key
        if key.endswith("weights") and key != "channel_weights":
            assert value.shape == (B, K) and set(value.unique().tolist()) <= {0.0, 1.0}, key
    coords, scores = codec.decode(*case.ideal(codec, targets, _keypoints(case)))
    lead = (B, codec.max_people) if case.bottom_up else (B,)
    assert coords.shape == (*lead, K, 2) and scores.shape == (*lead, K)
    assert coords.is_floating_point() and scores.is_floating_point()


@pytest.mark.parametrize("name", sorted(CASES))
def test_codec_round_trip_recovers_the_keypoints(name: str) -> None:
    case = CASES[name]
    codec = case.build()
    kp = _keypoints(case)
    targets = codec.encode(kp)
    coords, scores = codec.decode(*case.ideal(codec, targets, kp))
    if case.bottom_up:  # the one person found per image comes first; the other rows are empty
        assert torch.all(scores[:, 0] > 0.9) and torch.all(scores[:, 1:] == 0)
        coords, expected = coords[:, 0], kp[:, 0, :, :2]
    else:
        assert torch.all(scores > 0.7), scores
        expected = kp[..., :2]
    err = (coords.double() - expected).abs().max().item()
    assert err <= case.bound, f"{name}: round-trip error {err} px > {case.bound} px"


@pytest.mark.parametrize("name", sorted(CASES))
def test_codec_rejects_bad_input_with_one_clear_error(name: str) -> None:
    case = CASES[name]
    codec = case.build()
    with pytest.raises(ValueError, match=r"(?i)keypoints"):
        codec.encode(torch.zeros(4, 3))
    nan = _keypoints(case).clone()
    nan[(0,) * (nan.dim() - 2) + (1, 0)] = float("nan")  # joint 1 of sample 0 is labelled (v = 2)
    with pytest.raises(ValueError, match=r"non-finite"):
        codec.encode(nan)
    with pytest.raises(ValueError):
        codec.decode(*case.bad_outputs())


def test_unlabelled_and_outside_joints_get_weight_zero_in_every_top_down_codec() -> None:
    kp = _grid_keypoints()
    kp[0, 0, 2] = 0.0  # unlabelled
    kp[1, 2, :2] = torch.tensor([-40.0, 200.0], dtype=torch.float64)  # far outside the input and the maps
    for name, case in CASES.items():
        if case.bottom_up:
            continue
        targets = case.build().encode(kp)
        for key, value in targets.items():
            if key.endswith("weights") and key != "channel_weights":
                assert value[0, 0] == 0 and value[1, 2] == 0, (name, key)
                assert value[0, 1] == 1 and value[1, 0] == 1, (name, key)

"""DeepPose regressor and cascade stages: sizes, output frames, exact crop geometry, gradients, and a learning check."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.models.cascade import DeepPoseCascade, torso_pairs
from lightning_pose.models.deeppose import DeepPoseRegressor

# torchvision resnet50 has 25,557,032 parameters, 2,049,000 of them in its 1000-way fc layer.
R50_TRUNK = 25_557_032 - 2_049_000


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("k", "rle", "expected"),
    [
        (17, False, R50_TRUNK + 2048 * 34 + 34),  # docs/methods.md#regression-and-rle: 23.58 M
        (16, False, R50_TRUNK + 2048 * 32 + 32),  # 23.57 M
        (17, True, R50_TRUNK + 2048 * 68 + 68),  # 23.65 M (flow lives in the loss)
    ],
)
def test_deeppose_r50_parameter_count(k: int, rle: bool, expected: int) -> None:
    with torch.device("meta"):
        model = DeepPoseRegressor(k, "resnet50", rle=rle)
    assert _count(model) == expected
    assert round(expected / 1e6, 2) == {(17, False): 23.58, (16, False): 23.57, (17, True): 23.65}[(k, rle)]


def test_deeppose_outputs_and_hidden_layer() -> None:
    torch.manual_seed(0)
    model = DeepPoseRegressor(5, "resnet18", rle=True, hidden=32, dropout=0.1).eval()
    out = model(torch.randn(2, 3, 64, 48))
    assert set(out) == {"coords", "sigma"}
    assert out["coords"].shape == out["sigma"].shape == (2, 5, 2)
    assert ((out["sigma"] > 0) & (out["sigma"] < 1)).all()
    # fresh output layer: coordinates start near the crop centre (bias 0.5), sigma near 0.5
    assert (out["coords"] - 0.5).abs().max() < 0.05
    assert (out["sigma"] - 0.5).abs().max() < 0.05
    assert _count(model.neck) == 512 * 32 + 32 and _count(model.fc) == 32 * 20 + 20
    assert set(DeepPoseRegressor(3, "resnet18")(torch.randn(1, 3, 64, 64))) == {"coords"}


def test_deeppose_pool_grid_keeps_where_the_features_are() -> None:
    """``pool_grid`` (rows, cols) averages the last map over that many cells: the output layer sees ``C x rows x cols``
    features, and (1, 1) is global pooling, which cannot tell a feature on the left from one on the right."""
    torch.manual_seed(0)
    grid = DeepPoseRegressor(2, "resnet18", pool_grid=(4, 3)).eval()
    assert grid.fc.in_features == 512 * 12 and _count(grid.fc) == 512 * 12 * 4 + 4
    assert grid(torch.randn(2, 3, 128, 96))["coords"].shape == (2, 2, 2)
    feat = torch.zeros(1, 512, 4, 3)
    feat[0, 0, 1, 0] = 1.0
    mirrored = feat.flip(-1)
    flat = grid.pool(feat).flatten(1)
    assert flat.shape == (1, 512 * 12) and not torch.equal(flat, grid.pool(mirrored).flatten(1))
    glob = DeepPoseRegressor(2, "resnet18")
    assert glob.pool_grid == (1, 1) and torch.equal(glob.pool(feat).flatten(1), glob.pool(mirrored).flatten(1))
    with pytest.raises(ValueError, match="pool_grid"):
        DeepPoseRegressor(2, "resnet18", pool_grid=(0, 3))


def test_deeppose_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_keypoints"):
        DeepPoseRegressor(0, "resnet18")
    with pytest.raises(ValueError, match="dropout"):
        DeepPoseRegressor(2, "resnet18", dropout=1.0)
    with pytest.raises(ValueError, match="expected input"):
        DeepPoseRegressor(2, "resnet18")(torch.randn(3, 64, 64))


# ----------------------------------------------------------------------------------------------- cascade geometry
def _single_pixel(h: int, w: int, x: int, y: int, c: int = 1, ch: int = 0) -> torch.Tensor:
    img = torch.zeros(1, c, h, w)
    img[0, ch, y, x] = 1.0
    return img


def test_crop_centred_at_bright_pixel_has_it_at_its_centre_odd_size() -> None:
    # W_in = 40, H_in = 30; crop side L = 1 * 0.3 * 30 = 9 px with S = 9 samples -> one input px per crop px.
    casc = DeepPoseCascade(2, 1, crop_size=9, in_channels=1, fallback_fraction=0.3)
    img = _single_pixel(30, 40, x=17, y=11)
    coords = torch.tensor([[[17 / 40, 11 / 30], [3 / 40, 25 / 30]]])  # joint 0 on the bright pixel
    crops, side = casc.sample_crops(img, coords)
    assert crops.shape == (1, 2, 1, 9, 9) and side.item() == pytest.approx(9.0)
    expected = torch.zeros(9, 9)
    expected[4, 4] = 1.0
    torch.testing.assert_close(crops[0, 0, 0], expected)  # exactly one bright sample, at the centre
    assert crops[0, 1].abs().max() == 0  # the other joint's crop does not see it


def test_crop_offset_and_even_size() -> None:
    casc = DeepPoseCascade(1, 1, crop_size=9, in_channels=1, fallback_fraction=0.3)
    img = _single_pixel(30, 40, x=17, y=11)
    # centre the crop 2 px left and 1 px below the bright pixel: it appears 2 columns right and 1 row up of centre
    crops, _ = casc.sample_crops(img, torch.tensor([[[15 / 40, 12 / 30]]]))
    assert crops[0, 0, 0, 3, 6].item() == pytest.approx(1.0) and crops.sum().item() == pytest.approx(1.0)
    # even S = 8, side 8: the centre falls between the 4 middle samples, which split the pixel equally
    even = DeepPoseCascade(1, 1, crop_size=8, in_channels=1, fallback_fraction=8 / 30)
    crops, _ = even.sample_crops(img, torch.tensor([[[17 / 40, 11 / 30]]]))
    torch.testing.assert_close(crops[0, 0, 0, 3:5, 3:5], torch.full((2, 2), 0.25))
    assert crops.sum().item() == pytest.approx(1.0)


def test_feature_source_uses_the_same_input_frame_mapping() -> None:
    # stride-4 feature map 9 x 12 (input 36 x 48); convention A: feature pixel (row 3, col 5) sits at input
    # (x 20, y 12). Crop side 20 input px with S = 5 -> one feature px per crop px.
    feats = _single_pixel(9, 12, x=5, y=3, c=4, ch=2)
    casc = DeepPoseCascade(
        1, 1, crop_size=5, source="features", in_channels=4, feature_stride=4, fallback_fraction=20 / 36
    )
    crops, side = casc.sample_crops(feats, torch.tensor([[[20 / 48, 12 / 36]]]))
    assert side.item() == pytest.approx(20.0)
    expected = torch.zeros(5, 5)
    expected[2, 2] = 1.0
    torch.testing.assert_close(crops[0, 0, 2], expected)
    assert crops[0, 0, [0, 1, 3]].abs().max() == 0


def test_crop_side_from_torso_and_clamps() -> None:
    casc = DeepPoseCascade(4, 1, box_factor=1.5, torso_pairs=((0, 1), (2, 3)))
    w_in, h_in = 100, 200
    # pair (0,1): 30 px horizontal; pair (2,3): 50 px vertical -> mean diameter 40 -> side 60
    px = torch.tensor([[[10, 20], [40, 20], [50, 100], [50, 150]]], dtype=torch.float32)
    coords = px / torch.tensor([w_in, h_in])
    assert casc.crop_sides(coords, (w_in, h_in)).item() == pytest.approx(60.0, rel=1e-5)
    collapsed = torch.full((1, 4, 2), 0.5)
    assert casc.crop_sides(collapsed, (w_in, h_in)).item() == pytest.approx(0.05 * 100)  # lower clamp
    exploded = torch.tensor([[[-5.0, 0.0], [5.0, 0.0], [0.0, -5.0], [0.0, 5.0]]])
    assert casc.crop_sides(exploded, (w_in, h_in)).item() == pytest.approx(200.0)  # upper clamp


def test_displacement_is_converted_from_crop_units_to_normalised_input_units() -> None:
    casc = DeepPoseCascade(2, 2, crop_size=8, width=8, torso_pairs=((0, 1),))
    head = casc.stages[1].head
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.25, -0.5, 0.1, 0.2]))  # weights are zero: constant crop-unit output
    coords = torch.tensor([[[10 / 64, 8 / 32], [40 / 64, 24 / 32]]])  # torso = |(30, 16)| = 34 px
    delta = casc(torch.randn(1, 3, 32, 64), coords, stage=1)
    side = (30**2 + 16**2) ** 0.5
    expected = torch.tensor([[[0.25 * side / 64, -0.5 * side / 32], [0.1 * side / 64, 0.2 * side / 32]]])
    torch.testing.assert_close(delta, expected)
    assert casc(torch.randn(1, 3, 32, 64), coords, stage=0).abs().max() == 0  # fresh stage does not move joints
    with pytest.raises(ValueError, match="stage must be in"):
        casc(torch.randn(1, 3, 32, 64), coords, stage=2)


def test_cascade_is_differentiable_into_image_and_stage_weights() -> None:
    torch.manual_seed(0)
    casc = DeepPoseCascade(3, 1, crop_size=8, width=8)
    torch.nn.init.normal_(casc.stages[0].head.weight, std=0.1)
    image = torch.randn(2, 3, 32, 32, requires_grad=True)
    coords = (torch.rand(2, 3, 2) * 0.6 + 0.2).requires_grad_(True)
    casc(image, coords, 0).pow(2).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert casc.stages[0].features[0].weight.grad.abs().sum() > 0
    assert casc.stages[0].head.weight.grad.abs().sum() > 0
    assert coords.grad is None  # incoming estimates are detached (stages trained separately)


def test_jitter_statistics_and_residual_std() -> None:
    gt = torch.full((20000, 2, 2), 0.5)
    std = torch.tensor([[0.01, 0.02], [0.05, 0.0]])
    g = torch.Generator().manual_seed(0)
    jittered = DeepPoseCascade.jitter(gt, std, generator=g)
    torch.testing.assert_close((jittered - gt).std(dim=0), std, atol=1.5e-3, rtol=0.03)
    assert (jittered - gt).mean(dim=0).abs().max() < 1e-3
    again = DeepPoseCascade.jitter(gt, std, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, jittered)  # reproducible with a seeded generator
    fitted = DeepPoseCascade.estimate_residual_std(jittered, gt)
    torch.testing.assert_close(fitted, std, atol=1.5e-3, rtol=0.03)
    # hand case: residuals 3 and 4 (weight 1) and 100 (weight 0) -> RMS sqrt((9 + 16) / 2)
    pred = torch.tensor([[[3.0, 0.0]], [[4.0, 0.0]], [[100.0, 0.0]]])
    rms = DeepPoseCascade.estimate_residual_std(pred, torch.zeros(3, 1, 2), torch.tensor([[1.0], [1.0], [0.0]]))
    torch.testing.assert_close(rms, torch.tensor([[12.5**0.5, 0.0]]))
    with pytest.raises(ValueError, match="broadcast"):
        DeepPoseCascade.jitter(gt[:2], torch.ones(3, 2))


def test_running_residual_std_is_the_momentum_average_of_the_batch_rms() -> None:
    running = torch.tensor([[0.05, 0.05], [0.05, 0.05]])
    residual = torch.tensor([[[0.3, 0.0], [9.0, 9.0]], [[0.4, 0.1], [9.0, 9.0]]])  # joint 1 never labelled
    weight = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    rms = DeepPoseCascade.estimate_residual_std(residual, torch.zeros_like(residual), weight)
    DeepPoseCascade.update_residual_std(running, residual, weight, momentum=0.1)
    torch.testing.assert_close(running[0], 0.9 * 0.05 + 0.1 * rms[0])
    torch.testing.assert_close(running[0], torch.tensor([0.9 * 0.05 + 0.1 * 0.125**0.5, 0.9 * 0.05 + 0.1 * 0.005**0.5]))
    torch.testing.assert_close(running[1], torch.tensor([0.05, 0.05]))  # no labelled sample: unchanged


def test_training_losses_run_every_stage_on_simulated_estimates() -> None:
    torch.manual_seed(0)
    casc = DeepPoseCascade(3, num_stages=2, crop_size=8, width=4)
    image = torch.randn(2, 3, 32, 32)
    target = torch.rand(2, 3, 2) * 0.5 + 0.25
    weight = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    coords = target + 0.1
    std = torch.full((2, 3, 2), 0.05)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def stage_loss(pred: torch.Tensor, tgt: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        seen.append((pred.detach().clone(), w))
        return ((pred - tgt).abs().sum(-1) * w).sum() / w.sum()

    losses = casc.training_losses(image, coords, target, weight, std, stage_loss, min_std=0.01)
    assert len(losses) == 2 and all(loss.requires_grad and loss > 0 for loss in losses)
    # stage 1 saw the regressor's residual 0.1 on the labelled joints: std moved from 0.05 towards 0.1
    torch.testing.assert_close(std[0, :2], torch.full((2, 2), 0.9 * 0.05 + 0.1 * 0.1))
    # the unlabelled joint keeps the previous estimate (fresh stages predict zero displacement)
    torch.testing.assert_close(seen[0][0][0, 2], coords[0, 2])
    assert not torch.allclose(seen[0][0][1], target[1])  # labelled joints were jittered around the ground truth
    with pytest.raises(ValueError, match="residual_std"):
        casc.training_losses(image, coords, target, weight, torch.zeros(3, 3, 2), stage_loss)


def test_torso_pairs_from_keypoint_names() -> None:
    from lightning_pose.skeletons import get_keypoint_set

    coco = get_keypoint_set("coco").keypoints
    assert torso_pairs(coco) == (
        (coco.index("left_shoulder"), coco.index("right_hip")),
        (coco.index("right_shoulder"), coco.index("left_hip")),
    )
    assert torso_pairs(["a", "left_shoulder", "b"]) == ()


def _blob_images(coords_px: torch.Tensor, h: int, w: int, sigma: float = 1.5) -> torch.Tensor:
    """One Gaussian blob per joint, joint k drawn in channel k: (B, K, 2) px -> (B, K, h, w)."""
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    dx = xs[None, None] - coords_px[..., 0, None, None]
    dy = ys[None, None] - coords_px[..., 1, None, None]
    return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def test_stage_trained_on_synthetic_blobs_reduces_the_error_of_jittered_estimates() -> None:
    """A few hundred steps on jittered blob positions: the refined error must drop well below the jitter."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    h, w, k = 40, 48, 2
    scale = torch.tensor([w, h], dtype=torch.float32)
    casc = DeepPoseCascade(k, 1, crop_size=16, width=16, in_channels=k, fallback_fraction=0.5)  # side 20 px
    std = torch.full((k, 2), 2.5) / scale  # 2.5 px jitter
    opt = torch.optim.Adam(casc.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        px = torch.rand(n, k, 2, generator=gen) * (scale - 16) + 8
        gt = px / scale
        return _blob_images(px, h, w), gt, casc.jitter(gt, std, generator=gen)

    casc.train()
    for _ in range(250):
        img, gt, est = batch(16)
        loss = (casc(img, est, 0) - (gt - est)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    casc.eval()
    img, gt, est = batch(128)
    with torch.no_grad():
        refined = casc.refine(img, est)[-1]
    err_before = ((est - gt) * scale).norm(dim=-1).mean().item()
    err_after = ((refined - gt) * scale).norm(dim=-1).mean().item()
    assert err_before > 2.5
    print(f"cascade blob test: mean error {err_before:.2f} px -> {err_after:.2f} px")
    assert err_after < 0.3 * err_before, (err_before, err_after)

"""RegressionCodec: normalised targets, weights and coordinate flip-back."""

from __future__ import annotations

import pytest
import torch

from lightning_pose.codecs import RegressionCodec
from lightning_pose.skeletons import COCO


def test_encode_decode_identity() -> None:
    gen = torch.Generator().manual_seed(0)
    kp = torch.rand(4, 17, 3, generator=gen, dtype=torch.float64) * torch.tensor([191.0, 255.0, 2.0])
    codec = RegressionCodec((192, 256))
    _t = codec.encode(kp)
    targets, _ = _t["coords"], _t["weights"]
    torch.testing.assert_close(targets, kp[..., :2] / torch.tensor([192.0, 256.0], dtype=torch.float64))
    torch.testing.assert_close(codec.decode(targets)[0], kp[..., :2], atol=1e-6, rtol=0)
    _t = codec.encode(kp.float())
    t32, _ = _t["coords"], _t["weights"]
    assert t32.dtype == torch.float32
    torch.testing.assert_close(codec.decode(t32)[0].double(), kp[..., :2], atol=1e-4, rtol=0)


def test_weights_visibility_and_inside() -> None:
    codec = RegressionCodec((192, 256))
    kp = torch.tensor(
        [
            [
                [10.0, 10.0, 0.0],
                [10.0, 10.0, 1.0],
                [0.0, 0.0, 2.0],
                [191.0, 255.0, 2.0],
                [191.5, 10.0, 2.0],
                [10.0, -0.1, 2.0],
                [float("nan"), 3.0, 0.0],
            ]
        ]
    )
    _t = codec.encode(kp)
    targets, weights = _t["coords"], _t["weights"]
    assert weights.tolist() == [[0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]
    assert torch.isfinite(targets).all()
    with pytest.raises(ValueError, match="labelled"):
        codec.encode(torch.tensor([[[float("nan"), 3.0, 2.0]]]))


def test_flip_back_of_flipped_image_coords_equals_direct() -> None:
    gen = torch.Generator().manual_seed(1)
    w, h = 192, 256
    fi = COCO.flip_indices
    kp = torch.rand(3, 17, 3, generator=gen, dtype=torch.float64) * torch.tensor([w - 1.0, h - 1.0, 2.0])
    flipped = kp[:, fi].clone()
    flipped[..., 0] = (w - 1) - flipped[..., 0]
    codec = RegressionCodec((w, h))
    _t = codec.encode(kp)
    direct, _ = _t["coords"], _t["weights"]
    _t = codec.encode(flipped)
    from_flipped, _ = _t["coords"], _t["weights"]
    torch.testing.assert_close(codec.flip_back(from_flipped, fi), direct, atol=1e-12, rtol=0)
    # extra columns (e.g. RLE sigmas) are permuted, not negated
    sig = torch.rand(3, 17, 2, generator=gen, dtype=torch.float64)
    out = codec.flip_back(torch.cat([from_flipped, sig], -1), fi)
    torch.testing.assert_close(out[..., 2:], sig[:, fi])
    # hand case: x_in = 0 on a 192-wide input flips to 191 -> normalised 191/192
    one = codec.flip_back(torch.tensor([[[0.0, 0.5]]]), [0])
    assert one[0, 0, 0].item() == pytest.approx(191 / 192) and one[0, 0, 1].item() == 0.5

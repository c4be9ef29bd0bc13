"""DiskCodec: binary disks around the float heatmap position, weights from visibility."""

from __future__ import annotations

import torch

from lightning_pose.codecs import DiskCodec


def test_disk_hand_cases() -> None:
    codec = DiskCodec((64, 64), (16, 16), radius=1.5)  # stride 4
    kp = torch.tensor([[[20.0, 24.0, 2.0], [22.0, 24.0, 1.0]]])  # -> (5, 6) and (5.5, 6)
    _t = codec.encode(kp)
    disks, weights = _t["disks"], _t["weights"]
    assert disks.shape == (1, 2, 16, 16) and weights.tolist() == [[1.0, 1.0]]
    expected0 = torch.zeros(16, 16)
    expected0[5:8, 4:7] = 1.0  # integer centre, r = 1.5: the 3x3 block (corner distance sqrt(2) <= 1.5)
    torch.testing.assert_close(disks[0, 0], expected0)
    expected1 = torch.zeros(16, 16)
    expected1[6, 4:8] = 1.0  # (i - 5.5)^2 <= 2.25: i = 4..7 on the centre row
    expected1[5, 5:7] = 1.0  # rows 5 and 7: (i - 5.5)^2 <= 1.25 -> i = 5, 6
    expected1[7, 5:7] = 1.0
    torch.testing.assert_close(disks[0, 1], expected1)
    assert set(disks.unique().tolist()) == {0.0, 1.0}


def test_disk_weights_follow_visibility_and_overlap() -> None:
    codec = DiskCodec((64, 64), (16, 16), radius=2.0)
    kp = torch.tensor(
        [[[20.0, 24.0, 0.0], [20.0, 24.0, 1.0], [-7.0, 24.0, 2.0], [-9.0, 24.0, 2.0], [float("nan"), 0.0, 0.0]]]
    )
    _t = codec.encode(kp)
    disks, weights = _t["disks"], _t["weights"]
    # x = -7 -> -1.75: column 0 is within 2 px -> still a target; x = -9 -> -2.25: no pixel -> weight 0
    assert weights.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0]]
    assert disks[0, 0].sum() == 0 and disks[0, 3].sum() == 0 and disks[0, 4].sum() == 0
    assert disks[0, 2, 6, 0] == 1.0 and disks[0, 2, :, 1:].sum() == 0

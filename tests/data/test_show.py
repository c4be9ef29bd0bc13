"""`lightning-pose data show`: PNGs are written and keypoints are drawn in the side colours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lightning_pose.data.drawing import CENTER_COLOR, LEFT_COLOR, RIGHT_COLOR, keypoint_side
from lightning_pose.data.show import main
from lightning_pose.skeletons import COCO, MPII

COLORS = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "center": CENTER_COLOR}


def _isolated_keypoints(kp: np.ndarray, min_dist: float = 9.0) -> list[int]:
    """Indices of drawn keypoints with no other drawn keypoint within ``min_dist`` px."""
    shown = [i for i in range(len(kp)) if kp[i][2] > 0]
    out = []
    for i in shown:
        d = [np.hypot(kp[i][0] - kp[j][0], kp[i][1] - kp[j][1]) for j in shown if j != i]
        if all(x > min_dist for x in d):
            out.append(i)
    return out


def _check_colours(out: Path, kset, png_size: tuple[int, int]) -> int:
    listing = json.loads((out / "samples.json").read_text())
    checked = 0
    for entry in listing["samples"]:
        png = np.asarray(Image.open(out / entry["file"]).convert("RGB"))
        assert png.shape[:2] == png_size
        kp = np.asarray(entry["keypoints"], dtype=np.float64).reshape(-1, 3)  # (K, 3) or all persons (N*K, 3)
        for i in _isolated_keypoints(kp):
            x, y = int(round(kp[i][0])), int(round(kp[i][1]))
            j = i % kset.num_keypoints
            if 0 <= x < png.shape[1] and 0 <= y < png.shape[0]:
                assert tuple(png[y, x]) == COLORS[keypoint_side(kset, j)], (entry["file"], kset.keypoints[j])
                checked += 1
    return checked


def test_show_topdown_coco_writes_pngs_with_coloured_keypoints(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "show"
    code = main(
        [
            "coco",
            "--ann",
            str(shared_data / "coco" / "test_coco.json"),
            "--images",
            str(shared_data / "coco"),
            "--out",
            str(out),
            "-n",
            "3",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 3
    assert _check_colours(out, COCO, (512, 384)) >= 5
    listing = json.loads((out / "samples.json").read_text())
    assert len({e["sample_id"] for e in listing["samples"]}) == 3


def test_show_mpii_val_and_bottomup(shared_data: Path, tmp_path: Path) -> None:
    mp = shared_data / "mpii"
    assert (
        main(
            [
                "mpii",
                "--ann",
                str(mp / "test_mpii.json"),
                "--images",
                str(mp),
                "--out",
                str(tmp_path / "m"),
                "-n",
                "2",
                "--split",
                "val",
                "--zoom",
                "1",
            ]
        )
        == 0
    )
    assert _check_colours(tmp_path / "m", MPII, (256, 256)) >= 3
    assert (
        main(
            [
                "coco",
                "--ann",
                str(shared_data / "coco" / "test_coco.json"),
                "--images",
                str(shared_data / "coco"),
                "--out",
                str(tmp_path / "b"),
                "-n",
                "1",
                "--mode",
                "bottomup",
                "--input-size",
                "160",
                "128",
                "--zoom",
                "1",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "b").glob("*bottomup*.png"))) == 1
    assert _check_colours(tmp_path / "b", COCO, (128, 160)) >= 1


def test_show_usage_and_data_errors(shared_data: Path, tmp_path: Path, capsys) -> None:
    assert main(["coco", "--out", str(tmp_path)]) == 2
    assert "--ann and --images are required" in capsys.readouterr().err
    assert (
        main(["coco", "--ann", str(tmp_path / "missing.json"), "--images", str(tmp_path), "--out", str(tmp_path / "o")])
        == 1
    )
    assert "missing.json" in capsys.readouterr().err
    assert main(["nope", "--out", str(tmp_path)]) == 2

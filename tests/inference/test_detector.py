"""The torchvision person detector behind ``predict --detector``: random weights (no download), only the wiring."""

from __future__ import annotations

import json
import sys
import urllib.error
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ckpt_helpers import make_task, save_checkpoint  # noqa: E402

torch.set_num_threads(1)
NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


def _random_detector(**kwargs):
    from lightning_pose.inference.detector import build_detector

    torch.manual_seed(0)
    # two classes (background, person): the random head then proposes persons (with 91 it rarely does)
    return build_detector(NAME, "random", box_score_thresh=0.0, num_classes=2, box_detections_per_img=8, **kwargs)


def _images(shared_data: Path) -> list[np.ndarray]:
    paths = sorted((shared_data / "coco").glob("*.jpg"))[:2]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def test_person_boxes_are_xywh_persons_above_threshold(shared_data):
    from lightning_pose.inference.detector import PersonDetector

    model = _random_detector()
    images = _images(shared_data)
    with torch.inference_mode():
        raw = model([torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in images])
    boxes = PersonDetector(model, score_threshold=0.02)(images)
    for out, got in zip(raw, boxes):
        keep = (out["labels"] == 1) & (out["scores"] >= 0.02)
        xyxy = out["boxes"][keep].double().numpy()
        want = np.stack(
            [
                xyxy[:, 0],
                xyxy[:, 1],
                xyxy[:, 2] - xyxy[:, 0],
                xyxy[:, 3] - xyxy[:, 1],
                out["scores"][keep].double().numpy(),
            ],
            axis=1,
        )
        want = want[(want[:, 2] > 0) & (want[:, 3] > 0)]
        np.testing.assert_allclose(got, want.reshape(-1, 5))
    assert sum(len(b) for b in boxes) > 0  # the random network still proposes "persons"


def test_predict_uses_the_detector_boxes(shared_data, tmp_path):
    from lightning_pose.inference.cli import build_parser, run_predict
    from lightning_pose.inference.detector import PersonDetector

    ckpt = save_checkpoint(make_task("simple_baseline"), tmp_path / "sb.ckpt")
    detector = PersonDetector(_random_detector(), score_threshold=0.02)
    src = tmp_path / "imgs"
    src.mkdir()
    for i, im in enumerate(_images(shared_data)):
        cv2.imwrite(str(src / f"{i}.jpg"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    args = build_parser().parse_args(
        [
            "--ckpt_path",
            str(ckpt),
            "--source",
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--detector",
            NAME,
            "--no-nms",
            "--no-overlays",
        ]
    )
    run_predict(args, detector=detector)
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    images = [cv2.cvtColor(cv2.imread(str(src / im["file_name"])), cv2.COLOR_BGR2RGB) for im in doc["images"]]
    expected = detector(images)
    for im, boxes in zip(doc["images"], expected):
        got = np.array([a["bbox"] + [a["box_score"]] for a in doc["annotations"] if a["image_id"] == im["id"]])
        np.testing.assert_allclose(got.reshape(-1, 5), boxes)
    assert doc["info"]["boxes"] == "detector"


def test_local_weight_file(tmp_path, shared_data):
    from lightning_pose.inference.detector import PersonDetector, build_detector

    model = _random_detector()
    path = tmp_path / "det.pth"
    torch.save(model.state_dict(), path)
    loaded = build_detector(NAME, path, box_score_thresh=0.0, num_classes=2, box_detections_per_img=8)
    image = _images(shared_data)[:1]
    for a, b in zip(PersonDetector(model)(image), PersonDetector(loaded)(image)):
        np.testing.assert_array_equal(a, b)


def test_offline_without_weights_is_one_line(monkeypatch, tmp_path, shared_data, capsys):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    from lightning_pose.cli import main

    ckpt = save_checkpoint(make_task("simple_baseline"), tmp_path / "sb.ckpt")
    with pytest.raises(SystemExit) as info:
        main(
            [
                "predict",
                "--ckpt_path",
                str(ckpt),
                "--source",
                str(shared_data / "coco"),
                "--out",
                str(tmp_path / "o"),
                "--detector",
                NAME,
            ]
        )
    assert info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lightning-pose: error:")]
    assert len(err) == 1 and f"--detector {NAME}: its weights are not in the torch hub cache" in err[0]
    assert "--detector-weights FILE" in err[0]

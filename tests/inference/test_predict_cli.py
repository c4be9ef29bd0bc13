"""``lightning-pose predict --ckpt_path CKPT --source PATH``: sources, boxes, outputs, refusals and bad input.

The model is a tiny untrained SimpleBaseline checkpoint (its keypoints are arbitrary); the tests check the wiring:
which boxes are used, that every keypoint is mapped back to image pixels inside the crop, the files written and
the one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ckpt_helpers import make_task, save_checkpoint  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(make_task("simple_baseline"), tmp_path_factory.mktemp("ckpt") / "sb.ckpt")


@pytest.fixture(scope="module")
def coco(shared_data) -> dict:
    gt = json.loads((shared_data / "coco" / "test_coco.json").read_text())
    dets = json.loads((shared_data / "coco" / "test_coco_det_AP_H_56.json").read_text())
    return {
        "dir": shared_data / "coco",
        "images": {im["id"]: im for im in gt["images"]},
        "dets": dets,
        "det_file": shared_data / "coco" / "test_coco_det_AP_H_56.json",
    }


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    from lightning_pose.cli import main

    try:
        main(["predict", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("lightning-pose: error:")]


def test_folder_with_detection_file(ckpt, coco, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run(
        [
            "--ckpt_path",
            str(ckpt),
            "--source",
            str(coco["dir"]),
            "--out",
            str(out),
            "--boxes",
            str(coco["det_file"]),
            "--score-threshold",
            "0.5",
            "--no-nms",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    # every image listed with its file name and true size, ids from the COCO file names
    assert sorted(im["file_name"] for im in doc["images"]) == sorted(im["file_name"] for im in coco["images"].values())
    for im in doc["images"]:
        assert (im["width"], im["height"]) == (coco["images"][im["id"]]["width"], coco["images"][im["id"]]["height"])
    # without NMS: exactly the detections scoring >= 0.5, with their boxes
    want = sorted((d["image_id"], round(d["score"], 9)) for d in coco["dets"] if d["score"] >= 0.5)
    got = sorted((a["image_id"], round(a["box_score"], 9)) for a in doc["annotations"])
    assert got == want and len(got) > 0
    for a in doc["annotations"]:
        kp = np.asarray(a["keypoints"]).reshape(17, 3)
        x, y, w, h = a["bbox"]
        # keypoints lie in the padded (1.25) crop box around the person box (crop_to_image applied)
        cx, cy, side = x + w / 2, y + h / 2, 1.25 * max(w, h) / 2 + 1
        assert np.all(np.abs(kp[:, 0] - cx) <= side) and np.all(np.abs(kp[:, 1] - cy) <= side)
        assert a["category_id"] == 1 and 0 <= a["score"] <= 1
    assert doc["categories"][0]["keypoints"][0] == "nose"
    for im in doc["images"]:
        overlay = cv2.imread(str(out / "overlays" / f"{im['file_name']}.png"))
        assert overlay.shape[:2] == (im["height"], im["width"])
    assert f"{len(doc['images'])} image(s)/frame(s), {len(want)} people" in stdout


def test_oks_nms_and_threshold_reduce_people(ckpt, coco, tmp_path, capsys):
    args = [
        "--ckpt_path",
        str(ckpt),
        "--source",
        str(coco["dir"]),
        "--boxes",
        str(coco["det_file"]),
        "--score-threshold",
        "0",
        "--no-overlays",
    ]
    assert _run([*args, "--out", str(tmp_path / "a"), "--no-nms"], capsys)[0] == 0
    assert _run([*args, "--out", str(tmp_path / "b"), "--nms-threshold", "0.3"], capsys)[0] == 0
    all_people = json.loads((tmp_path / "a" / "predictions.json").read_text())["annotations"]
    kept = json.loads((tmp_path / "b" / "predictions.json").read_text())["annotations"]
    assert len(all_people) == len(coco["dets"])
    assert 0 < len(kept) < len(all_people)
    assert not (tmp_path / "a" / "overlays").exists()


def test_refuses_existing_outputs_unless_overwrite(ckpt, coco, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.json").write_text("mine\n")
    image = coco["dir"] / "000000000785.jpg"
    code, _, err = _run(["--ckpt_path", str(ckpt), "--source", str(image), "--out", str(out)], capsys)
    assert code == 2 and len(_error_lines(err)) == 1
    assert f"{out / 'predictions.json'}" in err and "--overwrite" in err
    assert (out / "predictions.json").read_text() == "mine\n"
    code, _, err = _run(["--ckpt_path", str(ckpt), "--source", str(image), "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "predictions.json").read_text())["images"][0]["file_name"] == "000000000785.jpg"


def test_never_overwrites_an_input(ckpt, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((40, 30, 3), 128, np.uint8))
    cv2.imwrite(str(src / "a.jpg"), np.full((40, 30, 3), 64, np.uint8))
    code, _, err = _run(["--ckpt_path", str(ckpt), "--source", str(src), "--out", str(src), "--overwrite"], capsys)
    assert code == 0, err  # the outputs are new files next to the inputs
    assert sorted(p.name for p in (src / "overlays").iterdir()) == ["a.jpg.png", "a.png.png"]
    assert cv2.imread(str(src / "a.png"))[0, 0, 0] == 128
    # an image file named like an output: refused even with --overwrite
    image = src / "predictions.json"
    cv2.imwrite(str(tmp_path / "x.png"), np.full((40, 30, 3), 9, np.uint8))
    image.write_bytes((tmp_path / "x.png").read_bytes())
    code, _, err = _run(["--ckpt_path", str(ckpt), "--source", str(image), "--out", str(src), "--overwrite"], capsys)
    assert code == 2 and "would overwrite the input file" in err and len(_error_lines(err)) == 1
    assert image.read_bytes() == (tmp_path / "x.png").read_bytes()


def test_unreadable_image_is_reported_and_counted(ckpt, coco, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    shutil.copy(coco["dir"] / "000000000785.jpg", src / "good.jpg")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    out = tmp_path / "out"
    code, stdout, err = _run(
        ["--ckpt_path", str(ckpt), "--source", str(src), "--out", str(out), "--boxes", "image"], capsys
    )
    assert code == 0, err
    assert "skipped broken.jpg" in err and "could not decode" in err
    assert "1 unreadable (skipped)" in stdout
    doc = json.loads((out / "predictions.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == ["good.jpg"]
    assert doc["info"]["skipped"] == ["broken.jpg"]
    assert len(doc["annotations"]) == 1
    assert doc["annotations"][0]["bbox"] == [0.0, 0.0, 640.0, 425.0]  # --boxes image: the whole image


def test_glob_and_boxes_by_file_name(ckpt, coco, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(
        json.dumps(
            [
                {"file_name": "000000040083.jpg", "bbox": [10, 20, 100, 150], "score": 0.9},
                {"file_name": "000000040083.jpg", "bbox": [200, 20, 80, 150], "score": 0.2},
            ]
        )
    )
    out = tmp_path / "out"
    code, _, err = _run(
        [
            "--ckpt_path",
            str(ckpt),
            "--source",
            str(coco["dir"] / "0000000400*.jpg"),
            "--out",
            str(out),
            "--boxes",
            str(boxes),
            "--score-threshold",
            "0.5",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == ["000000040083.jpg"]
    assert [a["bbox"] for a in doc["annotations"]] == [[10.0, 20.0, 100.0, 150.0]]


def test_bad_box_file_is_one_line(ckpt, coco, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": 785, "bbox": [10, 20, 0, 150], "score": 0.9}]))
    code, _, err = _run(
        ["--ckpt_path", str(ckpt), "--source", str(coco["dir"]), "--out", str(tmp_path / "o"), "--boxes", str(boxes)],
        capsys,
    )
    assert code == 2 and _error_lines(err) == [
        f"lightning-pose: error: --boxes {boxes}: detection 0: empty bbox (w=0, h=150)"
    ]


def test_missing_source_and_empty_checkpoint_are_one_line(ckpt, coco, tmp_path, capsys):
    code, _, err = _run(
        ["--ckpt_path", str(ckpt), "--source", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and _error_lines(err) == [
        f"lightning-pose: error: --source {tmp_path / 'nothing'}: no such file or folder"
    ]
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    code, _, err = _run(["--ckpt_path", str(empty), "--source", str(coco["dir"]), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and _error_lines(err) == [f"lightning-pose: error: checkpoint {empty}: file is empty (0 bytes)"]


def test_config_with_another_input_size_is_refused(ckpt, coco, tmp_path, capsys):
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "model:\n  class_path: lightning_pose.tasks.SimpleBaselineTask\n  init_args:\n"
        "    flip_test: false\ndata:\n  init_args:\n    input_size: [192, 256]\n"
    )
    code, _, err = _run(
        ["--ckpt_path", str(ckpt), "--source", str(coco["dir"]), "--out", str(tmp_path / "o"), "--config", str(config)],
        capsys,
    )
    assert code == 2 and "trained at input size 64x64 (W x H) but the model is configured for 192x256" in err


def test_video_source_writes_mp4_and_frames(ckpt, coco, tmp_path, capsys):
    frame = cv2.resize(cv2.imread(str(coco["dir"] / "000000000785.jpg")), (160, 120))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(3):
        writer.write(np.roll(frame, 10 * i, axis=1))
    writer.release()
    out = tmp_path / "out"
    code, _, err = _run(
        ["--ckpt_path", str(ckpt), "--source", str(video), "--out", str(out), "--boxes", "image"], capsys
    )
    assert code == 0, err
    doc = json.loads((out / "predictions.json").read_text())
    assert [im["frame_index"] for im in doc["images"]] == [0, 1, 2]
    assert [im["file_name"] for im in doc["images"]] == ["clip.mp4#000000", "clip.mp4#000001", "clip.mp4#000002"]
    assert len(doc["annotations"]) == 3 and {a["image_id"] for a in doc["annotations"]} == {0, 1, 2}
    cap = cv2.VideoCapture(str(out / "clip_pose.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 3


class _FakeBottomUp(torch.nn.Module):
    """Stands in for AssociativeEmbeddingTask: whole images in, people out, no boxes."""

    is_bottomup = True

    def __init__(self) -> None:
        super().__init__()
        from lightning_pose.skeletons import get_keypoint_set

        self.keypoint_set = get_keypoint_set("coco")
        self.input_size = (64, 64)
        self.calls: list[int] = []

    def infer_bottomup(self, images):
        self.calls.append(len(images))
        out = []
        for im in images:
            h, w = im.shape[:2]
            kp = np.zeros((2, 17, 3))
            kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = np.linspace(0, w - 1, 17), h / 2, 0.9
            kp[1, :, 0], kp[1, :, 1], kp[1, :, 2] = w / 3, np.linspace(0, h - 1, 17), 0.5
            out.append({"keypoints": kp, "scores": np.array([0.8, 0.4])})
        return out


def test_bottomup_model_gets_whole_images(coco, tmp_path):
    from lightning_pose.inference.cli import build_parser, run_predict

    task = _FakeBottomUp()
    args = build_parser().parse_args(
        [
            "--ckpt_path",
            "unused.ckpt",
            "--source",
            str(coco["dir"]),
            "--out",
            str(tmp_path / "o"),
            "--batch-size",
            "3",
            "--boxes",
            "image",
        ]
    )
    summary = run_predict(args, task=task)
    assert task.calls == [3, 1] and summary["people"] == 8
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    first = doc["annotations"][0]
    im = next(i for i in doc["images"] if i["id"] == first["image_id"])
    kp = np.asarray(first["keypoints"]).reshape(17, 3)
    assert kp[:, 0] == pytest.approx(np.linspace(0, im["width"] - 1, 17))
    assert first["score"] == pytest.approx(0.8)
    assert first["bbox"] == pytest.approx([0, im["height"] / 2, im["width"] - 1, 0])
    assert doc["info"]["boxes"] == "none"


def test_person_score_threshold_is_a_predictor_option():
    """The Python API drops people below ``person_score_threshold`` itself (the CLI's ``--score-threshold`` for a
    bottom-up model is this option); 0 keeps every grouped person, in the model's order."""
    from lightning_pose.inference.predictor import PosePredictor

    image = np.zeros((40, 60, 3), np.uint8)
    everyone = PosePredictor(_FakeBottomUp()).predict_batch([image])[0]
    assert everyone.scores.tolist() == [0.8, 0.4]
    kept = PosePredictor(_FakeBottomUp(), person_score_threshold=0.5).predict_batch([image, image])
    assert [p.scores.tolist() for p in kept] == [[0.8], [0.8]]
    np.testing.assert_array_equal(kept[0].keypoints, everyone.keypoints[:1])
    assert kept[0].boxes.shape == (1, 4) and kept[0].box_scores.tolist() == [1.0]
    assert len(PosePredictor(_FakeBottomUp(), person_score_threshold=0.9).predict_batch([image])[0]) == 0

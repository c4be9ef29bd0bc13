"""`lightning-pose data check`: clean samples give independently counted numbers; corruptions are reported."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from lightning_pose.data.check import main
from lightning_pose.skeletons import AIC, COCO, MPII


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _coco_counts(raw: dict, names: tuple[str, ...]) -> dict:
    per_joint = dict.fromkeys(names, 0)
    persons = kps = 0
    for a in raw["annotations"]:
        if a["category_id"] != 1 or a.get("iscrowd", 0):
            continue
        persons += 1
        v = a["keypoints"][2::3]
        kps += sum(1 for x in v if x > 0)
        for j, x in enumerate(v):
            per_joint[names[j]] += x > 0
    return {"images": len(raw["images"]), "persons": persons, "keypoints": kps, "keypoints_per_joint": per_joint}


def _check_json(tmp_path: Path, argv: list[str]) -> tuple[int, dict, str]:
    out_json = tmp_path / "report" / "check.json"
    code, out, err = _run(argv + ["--json", str(out_json), "--overwrite"])  # tests reuse the report file
    return code, json.loads(out_json.read_text()), out


def test_clean_coco(shared_data: Path, tmp_path: Path) -> None:
    ann = shared_data / "coco" / "test_coco.json"
    raw = json.loads(ann.read_text())
    code, rep, out = _check_json(tmp_path, ["coco", "--ann", str(ann), "--images", str(shared_data / "coco")])
    assert code == 0 and rep["problems"] == [] and "no problems" in out
    expected = _coco_counts(raw, COCO.keypoints)
    assert {k: rep[k] for k in expected} == expected
    assert expected["persons"] == 14 and expected["keypoints"] == 181


def test_clean_aic_both_formats(shared_data: Path, tmp_path: Path) -> None:
    ann = shared_data / "aic" / "test_aic.json"
    raw = json.loads(ann.read_text())
    code, rep, _ = _check_json(tmp_path, ["aic", "--ann", str(ann), "--images", str(shared_data / "aic")])
    expected = _coco_counts(raw, AIC.keypoints)
    assert code == 0 and {k: rep[k] for k in expected} == expected
    raw_ann = shared_data / "aic_raw" / "keypoint_annotations_sample.json"
    release = json.loads(raw_ann.read_text())
    code, rep2, _ = _check_json(tmp_path, ["aic-raw", "--ann", str(raw_ann), "--images", str(shared_data / "aic")])
    per_joint = dict.fromkeys(AIC.keypoints, 0)
    for e in release:
        for k in e["keypoint_annotations"].values():
            for j, v in enumerate(k[2::3]):
                per_joint[AIC.keypoints[j]] += v in (1, 2)
    assert code == 0 and rep2["problems"] == []
    assert rep2["images"] == len(release) == 3
    assert rep2["persons"] == sum(len(e["human_annotations"]) for e in release) == 9
    assert rep2["keypoints_per_joint"] == per_joint and rep2["keypoints"] == sum(per_joint.values())
    assert rep2["keypoints_per_joint"] == rep["keypoints_per_joint"]


def test_clean_mpii_with_headboxes(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "mpii"
    raw = json.loads((d / "test_mpii.json").read_text())
    code, rep, _ = _check_json(
        tmp_path,
        ["mpii", "--ann", str(d / "test_mpii.json"), "--images", str(d), "--headboxes", str(d / "mpii_gt_val.mat")],
    )
    labelled = np.array([[v == 1 and xy != [-1.0, -1.0] for v, xy in zip(e["joints_vis"], e["joints"])] for e in raw])
    assert code == 0 and rep["problems"] == []
    assert rep["images"] == len({e["image"] for e in raw}) == 5
    assert rep["persons"] == len(raw) and rep["head_boxes"] == 5
    assert rep["keypoints"] == int(labelled.sum()) == 76
    assert rep["keypoints_per_joint"] == {n: int(c) for n, c in zip(MPII.keypoints, labelled.sum(0))}


def test_corrupted_coco_copy(shared_data: Path, tmp_path: Path) -> None:
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for f in (shared_data / "coco").glob("*.jpg"):
        shutil.copyfile(f, img_dir / f.name)
    raw = json.loads((shared_data / "coco" / "test_coco.json").read_text())
    d = copy.deepcopy(raw)
    # images: 0 -> 785, 1 -> 40083 (anns 1..3), 2 -> 196141 (anns 4..8), 3 -> 197388 (anns 9..13)
    data = (img_dir / "000000040083.jpg").read_bytes()
    (img_dir / "000000040083.jpg").write_bytes(data[: len(data) * 2 // 3])  # truncated JPEG
    extra = [
        dict(d["images"][0], id=id_, file_name=name)
        for id_, name in [
            (9001, "gone.jpg"),
            (9002, "../images/000000000785.jpg"),
            (9003, str(img_dir / "000000000785.jpg")),
        ]
    ]
    d["images"].extend(extra)
    d["annotations"][4]["keypoints"] = d["annotations"][4]["keypoints"][:-3]  # 460541: wrong count
    d["annotations"][5]["bbox"][1] = float("nan")  # 488308: NaN
    d["annotations"][9]["bbox"][3] = 0  # 437295: empty box
    ann = tmp_path / "corrupt.json"
    ann.write_text(json.dumps(d))
    code, rep, out = _check_json(tmp_path, ["coco", "--ann", str(ann), "--images", str(img_dir)])
    assert code == 1
    got = sorted((p["kind"], p["record"]) for p in rep["problems"])
    assert got == sorted(
        [
            ("unreadable_image", "image 40083 (000000040083.jpg)"),
            ("missing_image", "image 9001 (gone.jpg)"),
            ("path_escape", "image 9002 (../images/000000000785.jpg)"),
            ("path_escape", f"image 9003 ({img_dir / '000000000785.jpg'})"),
            ("keypoint_count", "annotation 460541 (image 196141)"),
            ("non_finite", "annotation 488308 (image 196141)"),
            ("empty_box", "annotation 437295 (image 197388)"),
        ]
    )
    by_kind = {p["kind"]: p for p in rep["problems"]}
    assert by_kind["keypoint_count"]["file"] == str(ann)
    assert by_kind["missing_image"]["file"] == str(img_dir / "gone.jpg")
    for p in rep["problems"]:
        assert p["record"] in out and p["kind"] in out
    # counts of what training keeps: 3 good images, 14 - 3 (image 40083) - 3 bad annotations
    assert rep["images"] == 3 and rep["persons"] == 8
    good = {k: v for k, v in raw.items()}
    good["annotations"] = [a for i, a in enumerate(raw["annotations"]) if i not in (1, 2, 3, 4, 5, 9)]
    good["images"] = [im for im in raw["images"] if im["id"] != 40083]
    assert rep["keypoints"] == _coco_counts(good, COCO.keypoints)["keypoints"]


def test_usage_and_unreadable_files(shared_data: Path, tmp_path: Path) -> None:
    assert _run(["coco", "--ann", str(tmp_path / "none.json"), "--images", str(tmp_path)])[0] == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    code, _, err = _run(["coco", "--ann", str(bad), "--images", str(tmp_path)])
    assert code == 2 and "malformed JSON" in err and str(bad) in err
    assert _run(["coco", "--images", str(tmp_path)])[0] == 2
    assert _run(["yolo", "--ann", str(bad), "--images", str(tmp_path)])[0] == 2
    ann = str(shared_data / "coco" / "test_coco.json")
    assert _run(["coco", "--ann", ann, "--images", str(tmp_path), "--headboxes", ann])[0] == 2
    # the AIC file read as COCO: wrong keypoint count for the whole file
    code, _, err = _run(["coco", "--ann", str(shared_data / "aic" / "test_aic.json"), "--images", str(tmp_path)])
    assert code == 2 and "14 keypoints" in err
    code, out, _ = _run(
        [
            "coco",
            "--ann",
            str(shared_data / "aic" / "test_aic.json"),
            "--images",
            str(shared_data / "aic"),
            "--keypoint-set",
            "aic",
        ]
    )
    assert code == 0


def test_torch_free() -> None:
    code = (
        "import sys, lightning_pose.data.check, lightning_pose.data.readers; "
        "sys.exit(int(any(m in sys.modules for m in ('torch', 'lightning', 'cv2'))))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0

"""`lightning-pose evaluate` on bad inputs: one clear line naming the file and problem, exit 2, no traceback;
warnings (one line each) where a number comes out but may mislead; strict JSON output."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.cli import main as cli_main


def _evaluate(argv, capsys):
    """Run ``lightning-pose evaluate ...`` through the top-level CLI; returns (exit code, stdout, stderr)."""
    try:
        cli_main(["evaluate", *[str(a) for a in argv]])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _coco_gt(shared: Path) -> dict:
    return json.loads((shared / "coco" / "test_coco.json").read_text())


def _coco_results_from_gt(gt: dict) -> list[dict]:
    res = []
    for a in gt["annotations"]:
        if a.get("iscrowd") or not a.get("num_keypoints"):
            continue
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        kp[:, 2] = 1.0
        res.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": 0.9})
    return res


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _mpii_mat_gt(path: Path, n: int) -> np.ndarray:
    """A ``gt_valid.mat``-layout GT with ``n`` persons, all joints annotated, head size 0.6*sqrt(2)*50 px."""
    import scipy.io

    joints = np.random.default_rng(3).uniform(20, 300, size=(n, 16, 2))
    scipy.io.savemat(
        str(path),
        {
            "dataset_joints": np.array([[np.array(["j"])] * 16], dtype=object),
            "jnt_missing": np.zeros((16, n)),
            "pos_gt_src": np.transpose(joints, (1, 2, 0)),
            "headboxes_src": np.stack([np.zeros((2, n)), np.full((2, n), 50.0)]),
        },
    )
    return joints


# ------------------------------------------------------------------------------------------ the table
# Each builder gets (shared data, tmp folder) and returns (argv after `evaluate`, expected substrings of stderr).


def _coco_case(mutate_results=None, mutate_gt=None):
    def build(shared, tmp):
        gt = _coco_gt(shared)
        res = _coco_results_from_gt(gt)
        gt_path = shared / "coco" / "test_coco.json"
        if mutate_gt is not None:
            gt = copy.deepcopy(gt)
            mutate_gt(gt)
            gt_path = _write(tmp / "gt_bad.json", gt)
        if mutate_results is not None:
            mutate_results(res)
        return ["coco", "--gt", gt_path, "--pred", _write(tmp / "preds.json", res)]

    return build


def _set(obj, key, value):
    obj[key] = value


def _string_keypoints(res):
    for r in res:
        r["keypoints"] = [str(v) for v in r["keypoints"]]


def _bool_keypoints(res):
    for r in res:
        r["keypoints"] = [True] * len(r["keypoints"])


def _gt_string_keypoints(gt):
    for a in gt["annotations"]:
        a["keypoints"] = [str(v) for v in a["keypoints"]]


def _all_crowd(gt):
    for a in gt["annotations"]:
        a["iscrowd"] = 1


def _other_category(res):
    for r in res:
        r["category_id"] = 2


def _nested(shared, tmp):
    p = tmp / "preds.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    return ["coco", "--gt", shared / "coco" / "test_coco.json", "--pred", p]


def _mpii_garbage(which, content: bytes):
    def build(shared, tmp):
        d = shared / "mpii"
        gt, pred, heads = d / "mpii_gt_val.mat", tmp / "pred.json", None
        pred.write_text(json.dumps(np.zeros((5, 16, 2)).tolist()))
        bad = tmp / "bad.mat"
        bad.write_bytes(content)
        if which == "gt":
            gt = bad
        elif which == "pred":
            pred = bad
        else:
            gt, heads = d / "test_mpii.json", bad
        argv = ["mpii", "--gt", gt, "--pred", pred]
        return argv + (["--headboxes", heads] if heads is not None else [])

    return build


def _mpii_h5_group(shared, tmp):
    import h5py

    p = tmp / "pred.h5"
    with h5py.File(p, "w") as f:
        f.create_group("preds").create_dataset("x", data=np.zeros(3))
    return ["mpii", "--gt", shared / "mpii" / "mpii_gt_val.mat", "--pred", p]


def _mpii_ambiguous(shared, tmp):
    joints = _mpii_mat_gt(tmp / "gt2.mat", 2)
    p = tmp / "pred.mat"
    import scipy.io

    scipy.io.savemat(str(p), {"preds": np.transpose(joints, (2, 1, 0))})  # (2, 16, N=2)
    return ["mpii", "--gt", tmp / "gt2.mat", "--pred", p]


def _mpii_string_preds(shared, tmp):
    raw = json.loads((shared / "mpii" / "test_mpii.json").read_text())
    preds = [[[str(x), str(y)] for x, y in p["joints"]] for p in raw]
    return ["mpii", "--gt", shared / "mpii" / "mpii_gt_val.mat", "--pred", _write(tmp / "pred.json", preds)]


def _aic_preds(shared):
    raw = json.loads((shared / "aic_raw" / "keypoint_annotations_sample.json").read_text())
    return [{"image_id": e["image_id"], "keypoint_annotations": copy.deepcopy(e["keypoint_annotations"])} for e in raw]


def _aic_image_id_list(shared, tmp):
    preds = _aic_preds(shared)
    preds[0]["image_id"] = [preds[0]["image_id"]]
    return [
        "aic",
        "--gt",
        shared / "aic_raw" / "keypoint_annotations_sample.json",
        "--pred",
        _write(tmp / "preds.json", preds),
    ]


def _aic_string_gt(shared, tmp):
    raw = json.loads((shared / "aic_raw" / "keypoint_annotations_sample.json").read_text())
    name = next(iter(raw[0]["keypoint_annotations"]))
    raw[0]["keypoint_annotations"][name] = [str(v) for v in raw[0]["keypoint_annotations"][name]]
    return ["aic", "--gt", _write(tmp / "gt_bad.json", raw), "--pred", _write(tmp / "preds.json", _aic_preds(shared))]


def _aic_all_unknown(shared, tmp):
    preds = [{"image_id": "deadbeef", "keypoint_annotations": {"human1": [0.0] * 42}}]
    return [
        "aic",
        "--gt",
        shared / "aic_raw" / "keypoint_annotations_sample.json",
        "--pred",
        _write(tmp / "preds.json", preds),
    ]


BAD_INPUTS = {
    "coco preds keypoints as strings": (
        _coco_case(_string_keypoints),
        ["preds.json", "result 0", "keypoints", "string"],
    ),
    "coco preds keypoints as booleans": (
        _coco_case(_bool_keypoints),
        ["preds.json", "result 0", "keypoints", "boolean"],
    ),
    "coco preds score as string": (
        _coco_case(lambda res: _set(res[0], "score", "0.9")),
        ["preds.json", "result 0", "score", "string"],
    ),
    "coco gt keypoints as strings": (
        _coco_case(mutate_gt=_gt_string_keypoints),
        ["gt_bad.json", "keypoints", "string"],
    ),
    "coco preds image_id as list": (
        _coco_case(lambda res: _set(res[0], "image_id", [785])),
        ["preds.json", "result 0", "image_id", "list"],
    ),
    "coco gt image_id as list": (
        _coco_case(mutate_gt=lambda gt: _set(gt["annotations"][0], "image_id", [785])),
        ["gt_bad.json", "image_id", "list"],
    ),
    "coco preds unknown image id": (
        _coco_case(lambda res: _set(res[0], "image_id", 999)),
        ["preds.json", "unknown image id 999"],
    ),
    "coco preds all of another category": (_coco_case(_other_category), ["preds.json", "category_id", "2"]),
    "coco gt all crowd": (_coco_case(mutate_gt=_all_crowd), ["gt_bad.json", "crowd"]),
    "coco preds deeply nested json": (_nested, ["preds.json", "nested"]),
    "mpii gt garbage .mat": (_mpii_garbage("gt", b"this is not a mat file at all" * 10), ["bad.mat", ".mat"]),
    "mpii gt empty .mat": (_mpii_garbage("gt", b""), ["bad.mat", "empty"]),
    "mpii preds garbage .mat": (_mpii_garbage("pred", b"\x00\x01garbage" * 50), ["bad.mat", ".mat"]),
    "mpii preds empty .mat": (_mpii_garbage("pred", b""), ["bad.mat", "empty"]),
    "mpii headboxes garbage .mat": (_mpii_garbage("heads", b"garbage" * 40), ["bad.mat", ".mat"]),
    "mpii preds h5 group": (_mpii_h5_group, ["pred.h5", "preds", "group"]),
    "mpii preds ambiguous 2x16x2": (_mpii_ambiguous, ["pred.mat", "ambiguous", "--preds-layout"]),
    "mpii preds as strings": (_mpii_string_preds, ["pred.json", "string"]),
    "aic preds image_id as list": (_aic_image_id_list, ["preds.json", "image_id"]),
    "aic gt keypoints as strings": (_aic_string_gt, ["gt_bad.json", "string"]),
    "aic preds only unknown images": (_aic_all_unknown, ["preds.json", "deadbeef"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_exit_2(case, shared_data, tmp_path, capsys):
    build, expected = BAD_INPUTS[case]
    argv = build(shared_data, tmp_path)
    code, out, err = _evaluate(argv, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    first = err.strip().splitlines()[0]
    for s in expected:
        assert s in first, f"{s!r} not in {first!r}"
    # evaluate has neither skip_invalid nor data check, and prediction files are not annotations
    assert "skip_invalid" not in err and "data check" not in err
    if "--pred" in argv and "preds" in first.split(":")[0]:
        assert "annotations" not in first


# ------------------------------------------------------------------------------------------ warnings


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_empty_predictions_warn(shared_data, tmp_path, capsys):
    pred = _write(tmp_path / "preds.json", [])
    out_json = tmp_path / "ap.json"
    code, _, err = _evaluate(
        ["coco", "--gt", shared_data / "coco" / "test_coco.json", "--pred", pred, "--json", out_json], capsys
    )
    assert code == 0, err
    assert json.loads(out_json.read_text())["AP"] == 0.0
    (w,) = _warnings(err)
    assert "preds.json" in w and "no predictions" in w


def test_duplicated_and_foreign_category_predictions_warn(shared_data, tmp_path, capsys):
    gt = _coco_gt(shared_data)
    res = _coco_results_from_gt(gt)
    clean = _evaluate(
        [
            "coco",
            "--gt",
            shared_data / "coco" / "test_coco.json",
            "--pred",
            _write(tmp_path / "clean.json", res),
            "--json",
            tmp_path / "clean_ap.json",
        ],
        capsys,
    )
    assert clean[0] == 0 and not _warnings(clean[2])
    extra = copy.deepcopy(res[:2]) + [dict(res[0], category_id=3)]
    code, _, err = _evaluate(
        [
            "coco",
            "--gt",
            shared_data / "coco" / "test_coco.json",
            "--pred",
            _write(tmp_path / "preds.json", res + extra),
            "--json",
            tmp_path / "ap.json",
        ],
        capsys,
    )
    assert code == 0, err
    ws = _warnings(err)
    assert len(ws) == 2, ws
    assert any("2 duplicated" in w and "preds.json" in w for w in ws)
    assert any("1 prediction(s)" in w and "category_id 3" in w for w in ws)
    # duplicates are false positives: AP drops below the clean run's 1.0
    assert json.loads((tmp_path / "clean_ap.json").read_text())["AP"] == 1.0
    assert json.loads((tmp_path / "ap.json").read_text())["AP"] < 1.0


def test_aic_official_ignores_predictions_for_unknown_images(shared_data, tmp_path, capsys):
    # like the challenge's keypoint_predictions_example.json: predictions for images not in the annotations
    preds = _aic_preds(shared_data)
    for k in range(3):
        preds.append({"image_id": f"{k:040x}", "keypoint_annotations": {"human1": [1.0] * 42}})
    gt = shared_data / "aic_raw" / "keypoint_annotations_sample.json"
    pred = _write(tmp_path / "keypoint_predictions_example.json", preds)
    code, out, err = _evaluate(["aic", "--gt", gt, "--pred", pred, "--json", tmp_path / "s.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text()) == {"score": 1.0}
    assert "3 predicted image(s) not in the GT were ignored" in err
    # the COCO-style protocol keeps refusing unknown images, as pycocotools does
    code, _, err = _evaluate(
        ["aic", "--gt", shared_data / "aic" / "test_aic.json", "--pred", pred, "--protocol", "coco"], capsys
    )
    assert code == 2 and "keypoint_predictions_example.json" in err


def test_mpii_ambiguous_layout_resolved_by_option(shared_data, tmp_path, capsys):
    argv = _mpii_ambiguous(shared_data, tmp_path)
    code, _, err = _evaluate(argv + ["--preds-layout", "2x16xN", "--json", tmp_path / "o.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["Mean"] == 100.0
    # a (2, 16, 5) array is not ambiguous against the 5-person shared GT
    raw = json.loads((shared_data / "mpii" / "test_mpii.json").read_text())
    import scipy.io

    scipy.io.savemat(
        str(tmp_path / "p5.mat"), {"preds": np.transpose(np.asarray([p["joints"] for p in raw]), (2, 1, 0))}
    )
    code, _, err = _evaluate(
        [
            "mpii",
            "--gt",
            shared_data / "mpii" / "mpii_gt_val.mat",
            "--pred",
            tmp_path / "p5.mat",
            "--json",
            tmp_path / "o5.json",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads((tmp_path / "o5.json").read_text())["Mean"] == 100.0


def test_nan_scores_written_as_null(shared_data, tmp_path, capsys):
    # no annotated ankles in the GT -> the Ankle PCKh is undefined (NaN) -> null in the json, with a note
    raw = json.loads((shared_data / "mpii" / "test_mpii.json").read_text())
    for p in raw:
        p["joints_vis"][0] = p["joints_vis"][5] = 0
    gt = _write(tmp_path / "gt.json", raw)
    pred = _write(tmp_path / "pred.json", [p["joints"] for p in raw])
    out_json = tmp_path / "o.json"
    code, out, err = _evaluate(
        [
            "mpii",
            "--gt",
            gt,
            "--headboxes",
            shared_data / "mpii" / "mpii_gt_val.mat",
            "--pred",
            pred,
            "--json",
            out_json,
        ],
        capsys,
    )
    assert code == 0, err
    text = out_json.read_text()
    assert "NaN" not in text
    scores = json.loads(text)
    assert scores["Ankle"] is None and scores["Mean"] == 100.0
    assert "Ankle" in err and "null" in err

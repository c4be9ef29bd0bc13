"""`lightning-pose evaluate`: end-to-end on generated files and the shared samples, error exits, import cost."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.evaluation.cli import COCO_KEYS, main
from lightning_pose.evaluation.formats import write_mpii_preds

PROJECT_ROOT = Path(__file__).resolve().parents[2]

MPII_KEYS = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "UBody", "Mean", "Mean@0.1", "AUC"]


def _run(argv, capsys):
    argv = [str(a) for a in argv]
    if "--json" in argv:  # these tests reuse one output file (refusing an existing one is in tests/test_outputs.py)
        argv.append("--overwrite")
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _jittered_coco_results(gt, seed=0):
    rng = np.random.default_rng(seed)
    res = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, 4, size=(len(kp), 2))
        kp[:, 2] = rng.uniform(0.1, 1, size=len(kp))
        res.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kp.reshape(-1).tolist(),
                "score": float(rng.uniform(0.3, 1)),
            }
        )
    return res


def _pycocotools_stats(gt_path, results, sigmas=None):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        dt = coco.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_coco_shared_sample_matches_pycocotools(shared_data, tmp_path, capsys):
    gt_path = shared_data / "coco" / "test_coco.json"
    gt = json.loads(gt_path.read_text())
    res = _jittered_coco_results(gt)
    pred = tmp_path / "results.json"
    pred.write_text(json.dumps(res))
    out_json = tmp_path / "scores.json"
    rc, out, err = _run(["coco", "--gt", gt_path, "--pred", pred, "--json", out_json], capsys)
    assert rc == 0, err
    scores = json.loads(out_json.read_text())
    assert list(scores) == list(COCO_KEYS)
    np.testing.assert_allclose([scores[k] for k in COCO_KEYS], _pycocotools_stats(gt_path, res), atol=1e-10)
    assert "AP50" in out
    # perfect predictions (GT as results) -> AP 1.0
    perfect = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if not a["iscrowd"] and a["num_keypoints"] > 0
    ]
    pred.write_text(json.dumps(perfect))
    rc, _, err = _run(["coco", "--gt", gt_path, "--pred", pred, "--json", out_json, "--sigmas", "coco"], capsys)
    assert rc == 0, err
    assert json.loads(out_json.read_text())["AP"] == 1.0


def test_coco_custom_sigmas_and_bbox053(shared_data, tmp_path, capsys):
    gt_path = shared_data / "coco" / "test_coco.json"
    gt = json.loads(gt_path.read_text())
    res = _jittered_coco_results(gt, seed=2)
    pred = tmp_path / "results.json"
    pred.write_text(json.dumps(res))
    sig = [0.05] * 17
    out_json = tmp_path / "s.json"
    rc, _, err = _run(
        ["coco", "--gt", gt_path, "--pred", pred, "--json", out_json, "--sigmas", ",".join(map(str, sig))], capsys
    )
    assert rc == 0, err
    np.testing.assert_allclose(
        [json.loads(out_json.read_text())[k] for k in COCO_KEYS],
        _pycocotools_stats(gt_path, res, sigmas=sig),
        atol=1e-10,
    )
    rc, _, err = _run(["coco", "--gt", gt_path, "--pred", pred, "--sigmas", "0.1", "0.2"], capsys)
    assert rc == 2 and "2 sigmas given but the GT has 17" in err
    rc, _, err = _run(["coco", "--gt", gt_path, "--pred", pred, "--area-mode", "bbox053", "--json", out_json], capsys)
    assert rc == 0, err


def test_coco_error_cases_exit_2(shared_data, tmp_path, capsys):
    gt_path = shared_data / "coco" / "test_coco.json"
    gt = json.loads(gt_path.read_text())
    pred = tmp_path / "results.json"
    pred.write_text(json.dumps([{"image_id": 999, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]))
    rc, _, err = _run(["coco", "--gt", gt_path, "--pred", pred], capsys)
    assert rc == 2 and "results.json" in err and "unknown image id 999" in err
    pred.write_text(json.dumps([{"image_id": 785, "category_id": 1, "keypoints": [0.0] * 48, "score": 1.0}]))
    rc, _, err = _run(["coco", "--gt", gt_path, "--pred", pred], capsys)
    assert rc == 2 and "results.json" in err and "expected 51" in err
    bad_gt = tmp_path / "gt_nan.json"
    gt["annotations"][0]["keypoints"][0] = float("nan")
    bad_gt.write_text(json.dumps(gt))
    rc, _, err = _run(["coco", "--gt", bad_gt, "--pred", pred], capsys)
    assert rc == 2 and "gt_nan.json" in err and "NaN" in err
    rc, _, err = _run(["coco", "--gt", tmp_path / "missing.json", "--pred", pred], capsys)
    assert rc == 2 and "missing.json" in err and "not found" in err


def test_mpii_shared_sample_end_to_end(shared_data, tmp_path, capsys):
    d = shared_data / "mpii"
    raw = json.loads((d / "test_mpii.json").read_text())
    joints1 = np.asarray([p["joints"] for p in raw], dtype=float)  # 1-based
    pred = tmp_path / "pred.mat"
    write_mpii_preds(pred, joints1)
    out_json = tmp_path / "pckh.json"
    rc, out, err = _run(
        [
            "mpii",
            "--gt",
            d / "test_mpii.json",
            "--headboxes",
            d / "mpii_gt_val.mat",
            "--pred",
            pred,
            "--json",
            out_json,
        ],
        capsys,
    )
    assert rc == 0, err
    scores = json.loads(out_json.read_text())
    assert list(scores) == MPII_KEYS and all(v == 100.0 for v in scores.values())
    # 0-based file + --zero-based-preds with a 30 px shift: 52 of 66 joints (see test_pckh_mpii)
    pred0 = tmp_path / "pred0.h5"
    write_mpii_preds(pred0, joints1 - 1.0 + np.array([30.0, 0.0]), one_based=False)
    rc, _, err = _run(
        [
            "mpii",
            "--gt",
            d / "test_mpii.json",
            "--headboxes",
            d / "mpii_gt_val.mat",
            "--pred",
            pred0,
            "--zero-based-preds",
            "--json",
            out_json,
        ],
        capsys,
    )
    assert rc == 0, err
    assert json.loads(out_json.read_text())["Mean"] == pytest.approx(100 * 52 / 66, abs=1e-12)


def test_mpii_generated_mat_gt(tmp_path, capsys):
    import scipy.io

    rng = np.random.default_rng(1)
    n = 6
    gt1 = rng.uniform(10, 300, size=(n, 16, 2))
    hb = np.stack([np.zeros((2, n)), np.full((2, n), 50.0)])  # head size 0.6*sqrt(5000) = 42.43
    scipy.io.savemat(
        str(tmp_path / "gt.mat"),
        {
            "dataset_joints": np.array([[np.array(["j"])] * 16], dtype=object),
            "jnt_missing": np.zeros((16, n)),
            "pos_gt_src": np.transpose(gt1, (1, 2, 0)),
            "headboxes_src": hb,
        },
    )
    pred = gt1.copy()
    pred[:3, :, 0] += 25.0  # 25/42.43 = 0.589 > 0.5: half the persons wrong everywhere
    (tmp_path / "pred.json").write_text(json.dumps(pred.tolist()))
    out_json = tmp_path / "o.json"
    rc, _, err = _run(
        ["mpii", "--gt", tmp_path / "gt.mat", "--pred", tmp_path / "pred.json", "--json", out_json], capsys
    )
    assert rc == 0, err
    s = json.loads(out_json.read_text())
    assert s["Mean"] == pytest.approx(50.0) and s["Head"] == pytest.approx(50.0)


def test_mpii_error_cases_exit_2(shared_data, tmp_path, capsys):
    d = shared_data / "mpii"
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(np.zeros((4, 16, 2)).tolist()))
    rc, _, err = _run(["mpii", "--gt", d / "mpii_gt_val.mat", "--pred", pred], capsys)
    assert rc == 2 and "pred.json" in err and "4 persons predicted but the GT has 5" in err
    rc, _, err = _run(["mpii", "--gt", d / "test_mpii.json", "--pred", pred], capsys)
    assert rc == 2 and "test_mpii.json" in err and "--headboxes" in err
    pred.write_text(json.dumps(np.zeros((5, 15, 2)).tolist()))
    rc, _, err = _run(["mpii", "--gt", d / "mpii_gt_val.mat", "--pred", pred], capsys)
    assert rc == 2 and "pred.json" in err and "shape (5, 15, 2)" in err


def _aic_release_preds_from_gt(raw, jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for e in raw:
        anns = {}
        for name, kp in e["keypoint_annotations"].items():
            a = np.asarray(kp, dtype=float).reshape(14, 3)
            a[:, :2] += rng.normal(0, jitter, size=(14, 2))
            a[:, 2] = 1.0
            anns[name] = a.reshape(-1).tolist()
        out.append({"image_id": e["image_id"], "keypoint_annotations": anns})
    return out


def test_aic_official_and_coco_protocols(shared_data, tmp_path, capsys):
    gt_release = shared_data / "aic_raw" / "keypoint_annotations_sample.json"
    gt_coco = shared_data / "aic" / "test_aic.json"
    raw = json.loads(gt_release.read_text())
    pred = tmp_path / "aic_pred.json"
    pred.write_text(json.dumps(_aic_release_preds_from_gt(raw)))
    out_json = tmp_path / "o.json"
    rc, _, err = _run(["aic", "--gt", gt_release, "--pred", pred, "--json", out_json], capsys)
    assert rc == 0, err
    assert json.loads(out_json.read_text()) == {"score": 1.0}
    # the COCO-style GT gives the same official score (converted back to release format)
    rc, _, err = _run(["aic", "--gt", gt_coco, "--pred", pred, "--json", out_json], capsys)
    assert rc == 0, err
    assert json.loads(out_json.read_text())["score"] == pytest.approx(1.0, abs=1e-12)
    # COCO protocol: GT as predictions -> AP 1; keys are the 10 COCO stats
    rc, _, err = _run(["aic", "--gt", gt_coco, "--pred", pred, "--protocol", "coco", "--json", out_json], capsys)
    assert rc == 0, err
    s = json.loads(out_json.read_text())
    assert list(s) == list(COCO_KEYS) and s["AP"] == 1.0


def _aic_coco_protocol_run(shared_data, tmp_path, capsys):
    """`evaluate aic --protocol coco` on jittered copies of the shared AIC sample; (gt path, gt, results, json)."""
    gt_coco = shared_data / "aic" / "test_aic.json"
    gt = json.loads(gt_coco.read_text())
    rng = np.random.default_rng(5)
    res = []
    for a in gt["annotations"]:
        kp = np.asarray(a["keypoints"], dtype=float).reshape(14, 3)
        kp[:, :2] += rng.normal(0, 3, size=(14, 2))
        kp[:, 2] = rng.uniform(0.2, 1, 14)
        res.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kp.reshape(-1).tolist(),
                "score": float(rng.uniform(0.2, 1)),
            }
        )
    pred = tmp_path / "res.json"
    pred.write_text(json.dumps(res))
    out_json = tmp_path / "o.json"
    rc, _, err = _run(["aic", "--gt", gt_coco, "--pred", pred, "--protocol", "coco", "--json", out_json], capsys)
    assert rc == 0, err
    return gt_coco, gt, res, out_json


def test_aic_coco_protocol_matches_pycocotools_with_xtcocotools_rules(shared_data, tmp_path, capsys):
    """pycocotools on the GT rewritten to xtcocotools' use_area=False rule (area = 0.53 * w * h, recounted
    num_keypoints): runs where xtcocotools cannot be imported."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from lightning_pose.skeletons import AIC

    gt_coco, gt, res, out_json = _aic_coco_protocol_run(shared_data, tmp_path, capsys)
    ref_gt = copy.deepcopy(gt)
    for a in ref_gt["annotations"]:
        a.setdefault("iscrowd", 0)
        a["area"] = a["bbox"][2] * a["bbox"][3] * 0.53
        a["num_keypoints"] = int(np.count_nonzero(np.asarray(a["keypoints"], float)[2::3] > 0))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = ref_gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(res)), "keypoints")
        ev.params.kpt_oks_sigmas = AIC.sigmas_array()
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    got = [json.loads(out_json.read_text())[k] for k in COCO_KEYS]
    np.testing.assert_allclose(got, ev.stats, atol=1e-10)
    assert 0 < got[0] < 1


def test_aic_coco_protocol_matches_xtcocotools(shared_data, tmp_path, capsys):
    from reference_tools import xtcocotools_modules

    xc, xe = xtcocotools_modules()
    COCO, COCOeval = xc.COCO, xe.COCOeval

    import contextlib
    import io

    from lightning_pose.skeletons import AIC

    gt_coco, gt, res, out_json = _aic_coco_protocol_run(shared_data, tmp_path, capsys)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_coco))
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(res)), "keypoints", AIC.sigmas_array(), use_area=False)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    np.testing.assert_allclose([json.loads(out_json.read_text())[k] for k in COCO_KEYS], ev.stats, atol=1e-10)


def test_aic_error_unknown_image(shared_data, tmp_path, capsys):
    gt_release = shared_data / "aic_raw" / "keypoint_annotations_sample.json"
    pred = tmp_path / "aic_pred.json"
    pred.write_text(json.dumps([{"image_id": "deadbeef", "keypoint_annotations": {"human1": [0.0] * 42}}]))
    rc, _, err = _run(["aic", "--gt", gt_release, "--pred", pred], capsys)
    assert rc == 2 and "aic_pred.json" in err and "deadbeef" in err


def test_cli_module_does_not_import_torch():
    code = (
        "import sys, lightning_pose.evaluation.cli as c, lightning_pose.evaluation.formats, "
        "lightning_pose.evaluation.pckh, lightning_pose.evaluation.pck; "
        "bad = [m for m in ('torch', 'lightning', 'torchmetrics') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_python_dash_m_runs(shared_data, tmp_path):
    d = shared_data / "mpii"
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([p["joints"] for p in json.loads((d / "test_mpii.json").read_text())]))
    cmd = [sys.executable, "-m", "lightning_pose.evaluation.cli", "mpii"]
    r = subprocess.run(
        cmd + ["--gt", str(d / "test_mpii.json"), "--headboxes", str(d / "mpii_gt_val.mat"), "--pred", str(pred)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "Mean@0.1" in r.stdout
    r = subprocess.run(
        cmd + ["--gt", str(tmp_path / "x.mat"), "--pred", str(pred)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "x.mat" in r.stderr

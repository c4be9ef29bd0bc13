"""Real offline W&B runs of `lightning-pose fit`/`validate`: what lands in the run file is what dashboards show."""

from __future__ import annotations

import json

import pytest
from wandb_records import run_files, wait_complete


def _runs(offline_runs) -> dict[str, dict]:
    """job key -> summarized run: 'simple_baseline/fit', 'deeppose/fit', 'simple_baseline/validate'."""
    out = {}
    for path in run_files(offline_runs.save_dir):
        s = wait_complete(path)
        out[f"{s['config']['method']}/{s['run']['job_type']}"] = s
    return out


@pytest.fixture(scope="module")
def runs(offline_runs):
    return _runs(offline_runs)


def test_runs_are_grouped_tagged_and_named_after_their_settings(runs):
    assert set(runs) == {"simple_baseline/fit", "deeppose/fit", "simple_baseline/validate"}
    sb = runs["simple_baseline/fit"]
    assert sb["run"]["project"] == "lp-tests" and sb["run"]["group"] == "simple_baseline"
    assert {"demo", "resnet18"} <= set(sb["run"]["tags"])
    assert sb["run"]["name"] == "simple_baseline-demo-resnet18-64x64"
    assert runs["deeppose/fit"]["run"]["name"] == "deeppose-demo-resnet18-64x64"
    # every job type carries the comparison keys, validate included
    for s in runs.values():
        cfg = s["config"]
        assert cfg["dataset"] == "demo" and cfg["backbone"] == "resnet18" and cfg["input_size"] == [64, 64]
        assert cfg["params"] > 1e6 and cfg["gflops"] > 0


def test_config_is_compact_with_real_class_names(runs):
    cfg = runs["simple_baseline/fit"]["config"]
    assert cfg["optimizer"] == "Adam" and cfg["lr"] == pytest.approx(0.001)
    assert cfg["num_keypoints"] == 17 and cfg["sigma"] == pytest.approx(2.0)
    # the full resolved CLI config is there once; hyper-parameters are not duplicated flat at the root
    assert cfg["cli"]["model"]["class_path"].endswith("SimpleBaselineTask")
    assert cfg["cli"]["data"]["init_args"]["num_train"] == 12
    for dup in ("deconv_channels", "num_train", "optimizer_config", "pck_thresholds", "hparams", "_instantiator"):
        assert dup not in cfg
    assert len([k for k in cfg if k not in ("cli", "_wandb")]) <= 20


def test_summary_holds_last_and_best_values_plainly_named(runs):
    s = runs["simple_baseline/fit"]
    pck = [row["val/PCK@0.2"] for row in s["history"] if "val/PCK@0.2" in row]
    assert len(pck) == 2 and all(0.0 <= v <= 1.0 for v in pck)
    summary = s["summary"]
    assert summary["val/PCK@0.2"] == pytest.approx(pck[-1])  # last epoch, a plain number
    ap = [row["val/AP"] for row in s["history"] if "val/AP" in row]  # the demo's headline metric
    assert len(ap) == 2 and all(0.0 <= v <= 1.0 for v in ap)
    assert summary["best/val/AP"] == pytest.approx(max(ap))  # best epoch
    assert summary["best/metric"] == "val/AP"
    assert summary["best/epoch"] == int(max(range(2), key=lambda i: ap[i]))
    assert summary["cost/params"] == s["config"]["params"] and summary["cost/images_per_s"] > 0
    assert summary["time/fit_s"] > 0


def test_per_joint_results_are_one_table_with_a_bar_chart(runs):
    s = runs["simple_baseline/fit"]
    keys = set().union(*(row.keys() for row in s["history"]))
    assert "val/PCK@0.2" in keys and not any(k.endswith("/left_wrist") for k in keys)  # no per-joint scalars
    table_ref = s["summary"]["val/per_joint"]
    assert table_ref["_type"] == "table-file" and table_ref["nrows"] == 17
    table = json.loads((s["file"].run_dir / "files" / table_ref["path"]).read_text())
    assert table["columns"] == ["joint", "PCK@0.05", "PCK@0.1", "PCK@0.2"]
    assert [row[0] for row in table["data"]][:3] == ["nose", "left_eye", "right_eye"]
    assert all(0.0 <= v <= 1.0 for row in table["data"] for v in row[1:] if v is not None)
    panels = s["config"]["_wandb"]["visualize"]
    assert panels["val/per_joint_PCK@0.2"]["panel_config"]["panelDefId"] == "wandb/bar/v0"
    assert panels["val/pck_curve_plot"]["panel_config"]["panelDefId"] == "wandb/line/v0"
    curve = json.loads((s["file"].run_dir / "files" / s["summary"]["val/pck_curve"]["path"]).read_text())
    thresholds = [row[1] for row in curve["data"]]
    assert thresholds == [0.05, 0.1, 0.2]
    values = [row[2] for row in curve["data"]]
    assert values == sorted(values)  # PCK cannot decrease with the threshold
    assert values[-1] == pytest.approx(s["summary"]["val/PCK@0.2"])


def test_images_crops_full_images_worst_cases_and_model_artifact(runs):
    s = runs["simple_baseline/fit"]
    rows = {k: row[k] for row in s["history"] for k in ("val/examples", "val/full_images", "val/worst") if k in row}
    assert rows["val/examples"]["count"] == 8 and rows["val/examples"]["_type"] == "images/separated"
    assert rows["val/full_images"]["count"] == 8 and rows["val/full_images"]["height"] == 128  # the whole image
    assert rows["val/worst"]["count"] == 4
    assert any(a["type"] == "model" and "latest" in a["aliases"] for a in s["artifacts"])

"""`lightning-pose dashboard --dry-run`: the W&B workspace spec, built offline with wandb-workspaces."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("wandb_workspaces")

from lightning_pose.cli import main  # noqa: E402


def _spec(tmp_path, *extra):
    out = tmp_path / "workspace.json"
    main(["dashboard", "--project", "my-team/pose", "--dry-run", str(out), *extra])  # success: no SystemExit
    return json.loads(out.read_text())


def test_workspace_groups_by_method_with_the_comparison_panels(tmp_path):
    spec = _spec(tmp_path)
    assert spec["entity"] == "my-team" and spec["project"] == "pose" and spec["displayName"] == "Method comparison"
    runset = spec["spec"]["section"]["runSets"][0]
    assert runset["grouping"] == [{"section": "config", "name": "method.value"}]
    sections = {s["name"]: s["panels"] for s in spec["spec"]["section"]["panelBankConfig"]["sections"]}
    assert {
        "demo: headline metrics",
        "coco: headline metrics",
        "mpii: headline metrics",
        "aic: headline metrics",
        "Accuracy vs cost",
        "Per joint",
        "Sweeps",
        "Validation images",
    } <= set(sections)
    mpii = sections["mpii: headline metrics"]
    assert [p["config"]["metrics"] for p in mpii if p["viewType"] == "Run History Line Plot"] == [
        ["val/PCKh@0.5"],
        ["val/PCKh@0.1"],
    ]
    assert [p["config"]["metrics"] for p in mpii if p["viewType"] == "Bar Chart"] == [["best/val/PCKh@0.5"]]
    scatter = [
        {k: p["config"][k] for k in ("xAxis", "yAxis")}
        for p in sections["Accuracy vs cost"]
        if p["viewType"] == "Scatter Plot"
    ]
    assert len(scatter) == 8  # 4 datasets x (GFLOPs, images/s)
    assert {"xAxis": "config:gflops.value", "yAxis": "summary:best/val/AP"} in scatter
    assert {"xAxis": "summary:cost/images_per_s", "yAxis": "summary:best/val/PCK@0.2"} in scatter
    per_joint = json.dumps(sections["Per joint"])
    assert "val/per_joint_PCK@0.2_table" in per_joint and "wandb/bar/v0" in per_joint
    (pc,) = sections["Sweeps"]
    accessors = [c["accessor"] for c in pc["config"]["columns"]]
    assert "config:lr.value" in accessors and "summary:best/val/AP" in accessors
    media = [p["config"]["mediaKeys"] for p in sections["Validation images"]]
    assert media == [["val/examples"], ["val/full_images"], ["val/worst"]]


def test_dataset_selection_and_bad_project(tmp_path, capsys):
    spec = _spec(tmp_path, "--datasets", "mpii")
    names = [s["name"] for s in spec["spec"]["section"]["panelBankConfig"]["sections"]]
    assert "mpii: headline metrics" in names and "coco: headline metrics" not in names
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", "--project", "pose-only", "--dry-run", str(tmp_path / "x.json")])
    assert exc.value.code == 2 and "expected ENTITY/PROJECT" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()

"""Outputs never destroy inputs and are written atomically: ``lightning_pose.outputs`` and every command using it
(``evaluate --json``, ``data check --json``, ``data show --out``, ``export_dir``, ``--results``)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from lightning_pose import outputs
from lightning_pose.cli import main as cli_main
from lightning_pose.errors import OutputPathError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny_demo.yaml"


def _run(argv, capsys):
    """``lightning-pose ...`` in-process; returns (exit code, stdout, stderr)."""
    try:
        cli_main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _no_temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def _disk_full(monkeypatch):
    """Make the flush of every atomic write fail, as a full disk would (after part of the data was written)."""

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", fail)


# ------------------------------------------------------------------------------------------ the module


def test_atomic_write_replaces_and_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    outputs.atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    outputs.atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    # a writer that dies half-way: the previous file is intact and no temporary file is left
    with pytest.raises(RuntimeError, match="killed"):
        with outputs.atomic_path(target) as tmp:
            tmp.write_text('{"a": 3, "trunc')
            raise RuntimeError("killed mid-write")
    _disk_full(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        outputs.atomic_write_json(target, {"a": 4})
    assert json.loads(target.read_text()) == {"a": 2}
    assert _no_temps(tmp_path) == []
    # strict JSON: NaN is refused instead of written as a bare NaN
    with pytest.raises(ValueError):
        outputs.dumps_json_strict({"x": float("nan")})


def test_input_guard_sees_through_spellings_and_symlinks(tmp_path, monkeypatch):
    data = tmp_path / "gt.json"
    data.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(data)
    monkeypatch.chdir(tmp_path)
    for same in (data, Path("gt.json"), Path("./sub/../gt.json"), link):
        with pytest.raises(OutputPathError, match=r"--json .* is the input --gt"):
            outputs.refuse_input_overlap(same, [("--gt", data)], option="--json")
    with pytest.raises(OutputPathError, match="is the input --images"):
        outputs.refuse_input_overlap(tmp_path, [("--images", str(tmp_path) + "/")], option="--out")
    outputs.refuse_input_overlap(tmp_path / "other.json", [("--gt", data), ("--pred", None)])


def test_unwritable_folder_and_existing_files(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="a_file.*not a folder"):
        outputs.prepare_output_dir(blocker / "sub")
    existing = tmp_path / "mine.json"
    existing.write_text("keep")
    with pytest.raises(OutputPathError, match="mine.json already exists.*--overwrite"):
        outputs.check_output_file(existing, option="--json")
    outputs.check_output_file(existing, option="--json", overwrite=True)
    with pytest.raises(OutputPathError, match="is a folder"):
        outputs.check_output_file(tmp_path, option="--json", overwrite=True)


def test_tool_files_replace_only_their_own_files(tmp_path):
    owned = outputs.ToolFiles(tmp_path)
    (tmp_path / "a.png").write_bytes(b"ours")
    owned.record("a.png")
    (tmp_path / "b.png").write_bytes(b"user")
    again = outputs.ToolFiles(tmp_path)  # a later run reads the manifest
    again.claim(["a.png", "new.png"])
    with pytest.raises(OutputPathError, match="b.png already exists and was not written by lightning-pose"):
        again.claim(["a.png", "b.png"])
    again.claim(["b.png"], overwrite=True)
    # a file of ours that the user changed since counts as the user's
    (tmp_path / "a.png").write_bytes(b"edited by the user")
    with pytest.raises(OutputPathError, match="a.png"):
        outputs.ToolFiles(tmp_path).claim(["a.png"])


def test_write_tool_file_for_commands_without_a_flag(tmp_path):
    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"\x80weights" * 100)
    with pytest.raises(OutputPathError, match="--results .*best.ckpt is the input --ckpt_path"):
        outputs.write_tool_file(
            ckpt, lambda p: outputs.atomic_write_json(p, {}), inputs=[("--ckpt_path", ckpt)], option="--results"
        )
    assert ckpt.read_bytes() == b"\x80weights" * 100
    res = tmp_path / "metrics.json"
    for value in (1.0, 2.0):  # our own file is replaced on the next run
        outputs.write_tool_file(
            res, lambda p, value=value: outputs.atomic_write_json(p, {"v": value}), option="--results"
        )
    assert json.loads(res.read_text()) == {"v": 2.0}
    user = tmp_path / "notes.json"
    user.write_text("mine")
    with pytest.raises(OutputPathError, match="notes.json already exists and was not written by lightning-pose"):
        outputs.write_tool_file(user, lambda p: outputs.atomic_write_json(p, {}), option="--results")
    assert user.read_text() == "mine"
    found = dict(
        outputs.paths_in_config({"data": {"root": str(tmp_path), "ann": str(ckpt), "missing": "nope.json", "size": 3}})
    )
    assert found == {"data.root": str(tmp_path), "data.ann": str(ckpt)}


# ------------------------------------------------------------------------------------------ evaluate --json


@pytest.fixture
def coco_pair(shared_data, tmp_path):
    """Copies of the shared COCO GT and GT-derived results (root may write anywhere, so copies are compared)."""
    gt = tmp_path / "gt.json"
    shutil.copy(shared_data / "coco" / "test_coco.json", gt)
    anns = json.loads(gt.read_text())["annotations"]
    res = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in anns
        if not a["iscrowd"] and a["num_keypoints"] > 0
    ]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(res))
    return gt, pred


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_evaluate_json_onto_an_input_is_refused(coco_pair, which, capsys):
    gt, pred = coco_pair
    target = gt if which == "gt" else pred
    before = target.read_bytes()
    code, _, err = _run(["evaluate", "coco", "--gt", gt, "--pred", pred, "--json", target, "--overwrite"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"is the input --{which}" in err and "Traceback" not in err
    assert target.read_bytes() == before


def test_evaluate_json_existing_interrupted_and_unwritable(coco_pair, tmp_path, capsys, monkeypatch):
    gt, pred = coco_pair
    out = tmp_path / "ap.json"
    out.write_text("previous good report\n")
    code, _, err = _run(["evaluate", "coco", "--gt", gt, "--pred", pred, "--json", out], capsys)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert out.read_text() == "previous good report\n"
    code, _, err = _run(["evaluate", "coco", "--gt", gt, "--pred", pred, "--json", out, "--overwrite"], capsys)
    assert code == 0, err
    good = out.read_text()
    assert json.loads(good)["AP"] == 1.0
    with monkeypatch.context() as m:
        _disk_full(m)
        code, _, err = _run(["evaluate", "coco", "--gt", gt, "--pred", pred, "--json", out, "--overwrite"], capsys)
    assert code == 2 and "cannot write" in err and "No space" in err
    assert out.read_text() == good and _no_temps(tmp_path) == []
    # an unwritable output folder fails before the evaluation runs
    import lightning_pose.evaluation.cli as ev

    calls = []
    monkeypatch.setattr(ev, "_evaluate_coco", lambda args: calls.append(args) or {})
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    code, _, err = _run(["evaluate", "coco", "--gt", gt, "--pred", pred, "--json", blocker / "ap.json"], capsys)
    assert code == 2 and "not_a_folder" in err and calls == []


# ------------------------------------------------------------------------------------------ data check --json


def test_data_check_json_guard(shared_data, tmp_path, capsys, monkeypatch):
    ann = tmp_path / "ann.json"
    shutil.copy(shared_data / "coco" / "test_coco.json", ann)
    images = shared_data / "coco"
    before = ann.read_bytes()
    base = ["data", "check", "coco", "--ann", ann, "--images", images]
    code, _, err = _run(base + ["--json", ann, "--overwrite"], capsys)
    assert code == 2 and "is the input --ann" in err and ann.read_bytes() == before
    code, _, err = _run(base + ["--json", images], capsys)
    assert code == 2 and "is the input --images" in err
    out = tmp_path / "report.json"
    out.write_text("old")
    code, _, err = _run(base + ["--json", out], capsys)
    assert code == 2 and "already exists" in err and out.read_text() == "old"
    code, _, err = _run(base + ["--json", out, "--overwrite"], capsys)
    assert code in (0, 1), err
    good = out.read_text()
    assert json.loads(good)["format"] == "coco"
    with monkeypatch.context() as m:
        _disk_full(m)
        code, _, err = _run(base + ["--json", out, "--overwrite"], capsys)
    assert code == 2 and "cannot write" in err
    assert out.read_text() == good and _no_temps(tmp_path) == []
    import lightning_pose.data.check as check

    monkeypatch.setattr(check, "run_check", lambda *a, **k: pytest.fail("the dataset was read before the check"))
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    code, _, err = _run(base + ["--json", blocker / "r.json"], capsys)
    assert code == 2 and "blocker" in err


# ------------------------------------------------------------------------------------------ data show --out


def test_data_show_out_guard(shared_data, tmp_path, capsys, monkeypatch):
    ann = shared_data / "coco" / "test_coco.json"
    images = shared_data / "coco"
    listing = sorted(os.listdir(images))
    base = [
        "data",
        "show",
        "coco",
        "--ann",
        ann,
        "--images",
        images,
        "-n",
        "1",
        "--zoom",
        "1",
        "--input-size",
        "48",
        "64",
    ]
    code, _, err = _run(base + ["--out", images], capsys)
    assert code == 2 and "is the input --images" in err and sorted(os.listdir(images)) == listing
    code, _, err = _run(base + ["--out", ann], capsys)
    assert code == 2 and "is the input --ann" in err
    first = tmp_path / "first"
    code, _, err = _run(base + ["--out", first], capsys)
    assert code == 0, err
    (png,) = [p.name for p in first.glob("*.png")]
    code, _, err = _run(base + ["--out", first], capsys)  # our own files: replaced without a flag
    assert code == 0, err
    user = tmp_path / "user"
    user.mkdir()
    (user / png).write_bytes(b"a user's picture")
    code, _, err = _run(base + ["--out", user], capsys)
    assert code == 2 and png in err and "--overwrite" in err
    assert (user / png).read_bytes() == b"a user's picture"
    code, _, err = _run(base + ["--out", user, "--overwrite"], capsys)
    assert code == 0, err
    assert (user / png).read_bytes()[:4] == b"\x89PNG" and _no_temps(user) == []
    import lightning_pose.data.show as show

    monkeypatch.setattr(show, "_read", lambda args: pytest.fail("the dataset was read before the check"))
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    code, _, err = _run(base + ["--out", blocker / "previews"], capsys)
    assert code == 2 and "blocker" in err


# ------------------------------------------------------------------------------------------ export_dir


class _GT:
    def ground_truth(self, split):
        return {"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1, "keypoints": ["a"]}]}


def _Results(results):
    """A real COCOKeypointAP (its own export methods) on the GT of ``_GT`` whose results are fixed."""
    from lightning_pose.metrics import COCOKeypointAP

    class _Fixed(COCOKeypointAP):
        def results(self):
            return results

    return _Fixed(_GT().ground_truth("val"), sigmas=[0.1])


def test_export_dir_replaces_its_own_files_only(tmp_path, monkeypatch):
    from lightning_pose.metrics.export import check_export_dir, export_metric_predictions

    metrics = {"coco_ap": _Results([{"image_id": 1, "category_id": 1, "keypoints": [1.0, 2.0, 0.5], "score": 0.5}])}
    out = tmp_path / "export"
    check_export_dir(metrics, "val", out)
    written = export_metric_predictions(metrics, "val", out)
    assert [p.name for p in written] == ["val_coco_results.json", "val_coco_gt.json"]
    metrics["coco_ap"] = _Results([])
    export_metric_predictions(metrics, "val", out)  # the next epoch replaces our files
    assert json.loads((out / "val_coco_results.json").read_text()) == []
    # a user's file of the same name is never replaced, and the early check says so before any work
    user = tmp_path / "user"
    user.mkdir()
    (user / "val_coco_gt.json").write_text("the user's ground truth")
    with pytest.raises(OutputPathError, match="val_coco_gt.json already exists and was not written"):
        check_export_dir(metrics, "val", user)
    with pytest.raises(OutputPathError):
        export_metric_predictions(metrics, "val", user)
    assert (user / "val_coco_gt.json").read_text() == "the user's ground truth"
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(OutputPathError, match="export_dir .*blocker"):
        check_export_dir(metrics, "val", blocker / "export")
    # an interrupted export keeps the previous files
    good = (out / "val_coco_results.json").read_text()
    metrics["coco_ap"] = _Results([{"image_id": 1, "category_id": 1, "keypoints": [9.0, 9.0, 1.0], "score": 1.0}])
    _disk_full(monkeypatch)
    with pytest.raises(OSError):
        export_metric_predictions(metrics, "val", out)
    assert (out / "val_coco_results.json").read_text() == good and _no_temps(out) == []


# ------------------------------------------------------------------------------------------ demo data


def test_killed_demo_generation_leaves_no_trusted_cache(tmp_path, monkeypatch):
    from lightning_pose.data.demo import writer

    real = writer.render_scene
    calls = []

    def dies_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a kill in the middle of the generation
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "render_scene", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        writer.ensure_demo_dataset(tmp_path, num_train=4, num_val=1, image_size=(64, 64), max_people=1)
    assert list(tmp_path.iterdir()) == []  # neither a final folder nor a temporary one
    monkeypatch.setattr(writer, "render_scene", real)
    root = writer.ensure_demo_dataset(tmp_path, num_train=4, num_val=1, image_size=(64, 64), max_people=1)
    assert writer.is_complete_demo_dataset(root) and len(list((root / "train").glob("*.jpg"))) == 4
    assert _no_temps(root / "train") == [] and _no_temps(root / "annotations") == []


# ------------------------------------------------------------------------------------------ --results


@pytest.fixture
def in_tmp(tmp_path, monkeypatch, demo_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    return tmp_path


@pytest.mark.slow
def test_validate_results_never_replaces_the_checkpoint_or_config(in_tmp, capsys):
    code, _, err = _run(
        [
            "fit",
            "--config",
            TINY,
            "--trainer.logger=false",
            "--trainer.max_steps=1",
            "--trainer.limit_val_batches=0",
            "--trainer.num_sanity_val_steps=0",
        ],
        capsys,
    )
    assert code == 0, err
    (ckpt,) = sorted(in_tmp.rglob("*.ckpt"))[-1:]
    before = ckpt.read_bytes()
    code, _, err = _run(
        [
            "validate",
            "--config",
            TINY,
            "--trainer.logger=false",
            f"--ckpt_path={ckpt}",
            "--trainer.limit_val_batches=0.25",
            f"--results={ckpt}",
        ],
        capsys,
    )
    assert code == 2 and "is the input --ckpt_path" in err and "Traceback" not in err
    assert ckpt.read_bytes() == before
    config = in_tmp / "my.yaml"
    shutil.copy(TINY, config)
    config_bytes = config.read_bytes()
    code, _, err = _run(["predict", "--config", config, "--trainer.logger=false", f"--results={config}"], capsys)
    assert code == 2 and "is the input --config" in err and config.read_bytes() == config_bytes


def test_validate_refuses_a_bad_results_path_before_the_run(in_tmp, capsys, monkeypatch):
    """--results onto the config, or onto a user's file, is refused before any validation step runs."""
    from lightning_pose.tasks.base import PoseTask

    steps = []
    monkeypatch.setattr(PoseTask, "validation_step", lambda self, *a, **k: steps.append(1))
    config = in_tmp / "my.yaml"
    shutil.copy(TINY, config)
    config_bytes = config.read_bytes()
    code, _, err = _run(["validate", "--config", config, "--trainer.logger=false", f"--results={config}"], capsys)
    assert code == 2 and "is the input --config" in err and "Traceback" not in err
    assert config.read_bytes() == config_bytes and steps == []
    mine = in_tmp / "notes.json"
    mine.write_text('{"mine": 1}')
    code, _, err = _run(["validate", "--config", TINY, "--trainer.logger=false", f"--results={mine}"], capsys)
    assert code == 2 and "--results" in err and mine.read_text() == '{"mine": 1}' and steps == []

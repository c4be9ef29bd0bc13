"""`lightning-pose compare` on real offline runs written by tiny fits (and a --results file)."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from wandb_records import run_files, wait_complete

from lightning_pose.cli import main
from lightning_pose.compare.runs import load_runs


@pytest.fixture(scope="module")
def finished(offline_runs):
    for path in run_files(offline_runs.save_dir):
        assert wait_complete(path)["exit"], path
    return offline_runs


def test_runs_are_read_from_offline_folders_and_results(finished):
    records = load_runs([finished.save_dir, finished.results])
    by_key = {(r.method, r.job_type): r for r in records if r.method != "?"}
    assert set(by_key) == {("simple_baseline", "fit"), ("deeppose", "fit"), ("simple_baseline", "validate")}
    sb = by_key[("simple_baseline", "fit")]
    summary = wait_complete(run_files(finished.save_dir)[0])  # any run: check the reader against the raw file
    assert summary["exit"]
    assert sb.dataset == "demo" and sb.backbone == "resnet18" and sb.input_size == "64x64" and sb.seed == 0
    assert (
        0.0 <= sb.metrics["val/PCK@0.2"] <= 1.0 and sb.best["val/PCK@0.2"] >= sb.metrics["val/PCK@0.2"] - 1e-6
    )  # last: float32 as logged; best: exact float64
    assert sb.params > 1e6 and sb.gflops > 0 and sb.images_per_s > 0 and sb.fit_s > 0
    assert len(sb.curve) == 2 and [row["epoch"] for row in sb.curve] == [0.0, 1.0]
    assert set(sb.per_joint) == {"PCK@0.05", "PCK@0.1", "PCK@0.2"} and len(sb.per_joint["PCK@0.2"]) == 17
    from_json = [r for r in records if r.source == str(finished.results)][0]
    validate = by_key[("simple_baseline", "validate")]
    # the results file and the W&B run of the same validate job agree (float32 in W&B)
    assert from_json.metrics["val/PCK@0.2"] == pytest.approx(validate.metrics["val/PCK@0.2"], abs=1e-6)
    assert from_json.per_joint["PCK@0.2"]["nose"] == pytest.approx(validate.per_joint["PCK@0.2"]["nose"], abs=1e-6)


def test_compare_command_writes_tables_and_plots(finished, tmp_path):
    out = tmp_path / "cmp"
    main(["compare", str(finished.save_dir), "--out", str(out), "--by", "run"])  # success: no SystemExit
    md = (out / "comparison.md").read_text()
    assert "## demo" in md and "simple_baseline-demo-resnet18-64x64" in md and "deeppose-demo-resnet18-64x64" in md
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert len(rows) == 3
    records = {(r.name, r.job_type): r for r in load_runs([finished.save_dir])}
    for row in rows:
        rec = next(
            r
            for (name, _job), r in records.items()
            if name == row["run"] and f"{r.metrics.get('val/PCK@0.2')!r}" == row["PCK@0.2"]
        )
        assert float(row["params_M"]) == pytest.approx(rec.params / 1e6)
    for name in ("accuracy_vs_gflops", "per_joint", "pck_curves", "learning_curves"):
        with Image.open(out / f"{name}.png") as im:
            assert im.width > 200 and im.height > 200


def test_compare_by_method_averages_runs(finished, tmp_path):
    from lightning_pose.compare.cli import compare

    written = compare([str(finished.save_dir)], tmp_path / "m", by="method", plots=False)
    rows = list(csv.DictReader(written["csv"].open()))
    methods = {(r["method"], r["split"]): r for r in rows}
    # the simple_baseline fit and validate runs are both "val" rows of the same method: 2 runs, mean ± std
    sb = methods[("simple_baseline", "val")]
    assert sb["runs"] == "2" and sb["PCK@0.2_std"] != ""
    recs = [r for r in load_runs([finished.save_dir]) if r.method == "simple_baseline"]
    assert float(sb["PCK@0.2"]) == pytest.approx(sum(r.metrics["val/PCK@0.2"] for r in recs) / 2)
    assert methods[("deeppose", "val")]["runs"] == "1"


def test_compare_rejects_bad_inputs_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train/loss": 1.0}))
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(bad), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "no val/ or test/ metrics" in err[0]
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_compare_does_not_import_torch(finished, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from lightning_pose.compare.cli import main; "
        f"rc = main([{str(finished.save_dir)!r}, '--out', {str(tmp_path / 'c')!r}]); "
        "assert rc == 0; assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "c" / "comparison.md").is_file()

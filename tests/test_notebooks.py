"""The notebooks run top to bottom in a real Jupyter kernel (nbclient), in smoke mode (tiny data, a few steps).

Each notebook runs with its tmp folder as working directory and every writable location pointed inside it (temp
files, W&B and Jupyter folders, matplotlib cache), and must leave nothing behind elsewhere: no `lp-notebook-*`
folders in the system temp directory, no new files next to the notebooks.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: what each notebook leaves in its work folder
RESULT = {
    "compare_methods.ipynb": "compare-work/notebook_result.json",
    "walkthrough.ipynb": "walkthrough-work/notebook_result.json",
}


def test_every_notebook_is_stored_with_outputs():
    assert {p.name for p in NOTEBOOKS} == set(RESULT)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("outputs") for c in code[1:]), f"{path.name}: store it executed (with outputs)"
        errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: stored outputs contain an error"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_a_kernel_and_writes_only_to_its_folder(path, monkeypatch, tmp_path):
    work = tmp_path / "cwd"
    work.mkdir()
    for var, sub in (
        ("TMPDIR", "tmp"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
        ("WANDB_DATA_DIR", "wandb-data"),
        ("WANDB_ARTIFACT_DIR", "wandb-artifacts"),
        ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
        ("IPYTHONDIR", "ipython"),
        ("MPLCONFIGDIR", "mpl"),
    ):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("LP_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("LP_REPO_ROOT", str(ROOT))
    monkeypatch.setenv("WANDB_MODE", "offline")
    pythonpath = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), pythonpath) if p))
    system_tmp = Path(tempfile.gettempdir())
    leftovers_before = set(system_tmp.glob("lp-notebook-*"))
    beside_before = set((ROOT / "notebooks").iterdir())

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()

    result = json.loads((work / RESULT[path.name]).read_text())
    if path.name == "compare_methods.ipynb":
        assert result["table_rows"] == len(result["methods"]) == 2
        assert result["predictions"] > 0 and "accuracy_vs_gflops.png" in result["plots"]
    else:
        assert 0.0 <= result["AP"] <= 1.0 and 0.0 <= result["PCK@0.2"] <= 1.0 and result["predicted"] > 0
    assert set(system_tmp.glob("lp-notebook-*")) == leftovers_before
    assert set((ROOT / "notebooks").iterdir()) == beside_before
    assert sorted(p.name for p in work.iterdir()) == [RESULT[path.name].split("/")[0]]

"""Configs and sweeps ship in the package: ``--config quickstart`` (a name) resolves to the packaged file, a path
still works, and a built wheel installed in a fresh venv runs ``--config quickstart --print_config`` from a folder
outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]


def test_names_resolve_to_packaged_configs(tmp_path, monkeypatch):
    from lightning_pose.config_paths import packaged_configs, resolve_config, resolve_config_args, sweep_path

    monkeypatch.chdir(tmp_path)  # not the repository root: a relative configs/... path does not exist here
    assert resolve_config("quickstart").read_text() == (PROJECT / "configs" / "quickstart.yaml").read_text()
    for name in ("hourglass/mpii", "hourglass/mpii.yaml", "configs/hourglass/mpii.yaml"):
        assert resolve_config(name).resolve() == (PROJECT / "configs" / "hourglass" / "mpii.yaml").resolve()
    assert "quickstart" in packaged_configs() and "deeppose/mpii_cascade" in packaged_configs()
    assert sweep_path("quickstart_lr").name == "quickstart_lr.yaml"
    own = tmp_path / "quickstart"  # an existing file wins over the packaged name
    own.write_text("seed_everything: 3\n")
    assert resolve_config("quickstart").resolve() == own
    assert (
        resolve_config_args(["fit", "--config=hourglass/mpii", "--trainer.max_epochs", "1"])[1]
        == f"--config={resolve_config('hourglass/mpii')}"
    )


def test_unknown_config_name_is_one_line(tmp_path, monkeypatch, capsys):
    from lightning_pose.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", "hourglas/mpii", "--print_config"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err
        == [
            line
            for line in err
            if line.startswith("lightning-pose: error: --config hourglas/mpii: no such file, and no packaged config")
        ]
        and len(err) == 1
    )


def _copy_project(dst: Path) -> Path:
    """The files a build needs (symlinks kept: lightning_pose/configs -> ../configs)."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, dst / name)
    for name in ("lightning_pose", "configs", "sweeps"):
        shutil.copytree(
            PROJECT / name, dst / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return dst


@pytest.mark.slow
def test_wheel_ships_configs_and_runs_from_anywhere(tmp_path):
    pytest.importorskip("build")
    src = _copy_project(tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(dist),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    wheel = next(dist.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in (PROJECT / "configs").rglob("*.yaml"):
        assert f"lightning_pose/configs/{config.relative_to(PROJECT / 'configs').as_posix()}" in names
    for sweep in (PROJECT / "sweeps").rglob("*.yaml"):
        assert f"lightning_pose/sweeps/{sweep.relative_to(PROJECT / 'sweeps').as_posix()}" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # pip of the base interpreter, targeting the venv; --ignore-installed leaves the base's editable copy alone
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import lightning_pose; print(lightning_pose.__file__)"],
        cwd=elsewhere,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to(env_dir.resolve()), where
    out = subprocess.run(
        [str(env_dir / "bin" / "lightning-pose"), "fit", "--config", "quickstart", "--print_config"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    cfg = yaml.safe_load(out.stdout)
    assert cfg["model"]["class_path"] == "lightning_pose.tasks.HeatmapTask"
    assert cfg["model"]["init_args"]["network"]["init_args"]["backbone"] == "resnet18"

"""Test helpers over the package's W&B run-file reader (:mod:`lightning_pose.compare.wandb_file`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lightning_pose.compare.wandb_file import read_run_file


def summarize(path: Path) -> dict[str, Any]:
    """run (name, group, job_type, tags, project), config, history rows, summary, artifacts, exit seen."""
    run = read_run_file(path)
    return {
        "run": {
            "name": run.name,
            "group": run.group,
            "job_type": run.job_type,
            "tags": run.tags,
            "project": run.project,
            "id": run.run_id,
        },
        "config": run.config,
        "history": run.history,
        "summary": run.summary,
        "exit": run.finished,
        "artifacts": run.artifacts,
        "file": run,
    }


def run_files(save_dir: Path) -> list[Path]:
    """The run files under ``<save_dir>/wandb``."""
    return sorted((Path(save_dir) / "wandb").rglob("run-*.wandb"))


def find_run_file(wandb_dir: Path) -> Path:
    files = sorted(Path(wandb_dir).rglob("run-*.wandb"))
    if len(files) != 1:
        raise AssertionError(f"expected one offline run file under {wandb_dir}, found {files}")
    return files[0]


def wait_complete(path: Path, timeout: float = 20.0) -> dict[str, Any]:
    """Poll until the run file holds its exit record (wandb.finish may return before the flush)."""
    deadline = time.time() + timeout
    while True:
        try:
            summary = summarize(path)
        except Exception:  # partially written chunk
            summary = {"exit": False}
        if summary.get("exit") or time.time() > deadline:
            return summary
        time.sleep(0.25)

"""Shared fixtures. The real dataset samples live in ../shared/data next to the project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# Tests never talk to a W&B server; individual tests opt in to offline mode.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (COCO, MPII, AIC samples); fails loudly when it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}: the project must sit next to shared/")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def demo_cache(tmp_path_factory) -> Path:
    """A session-wide demo-data cache (LIGHTNING_POSE_CACHE), so tests never touch the user's ~/.cache."""
    path = tmp_path_factory.mktemp("demo_cache")
    old = os.environ.get("LIGHTNING_POSE_CACHE")
    os.environ["LIGHTNING_POSE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LIGHTNING_POSE_CACHE", None)
    else:
        os.environ["LIGHTNING_POSE_CACHE"] = old

"""Shared fixtures. The real dataset samples live in ../shared/data next to the project root."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# Tests never talk to a W&B server; individual tests opt in to offline mode.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

# Tests write nothing outside temporary folders. Everything the libraries would put in the user's home or in the
# shared temp directory goes to one folder for this test session, removed at the end (subprocesses inherit it):
# W&B's artifact staging (~/.local/share/wandb), cache (~/.cache/wandb) and settings (~/.config/wandb),
# matplotlib's font cache, and every tempfile.mkdtemp() (notebooks, CLI runs).
_USER_TEMP = Path(tempfile.gettempdir())
SESSION_TMP = Path(tempfile.mkdtemp(prefix="lp-tests-"))
for _var, _sub in (
    ("WANDB_DATA_DIR", "wandb-data"),
    ("WANDB_CACHE_DIR", "wandb-cache"),
    ("WANDB_CONFIG_DIR", "wandb-config"),
    ("WANDB_ARTIFACT_DIR", "wandb-artifacts"),
    ("MPLCONFIGDIR", "matplotlib"),
    ("TMPDIR", "tmp"),
):
    (SESSION_TMP / _sub).mkdir()
    os.environ[_var] = str(SESSION_TMP / _sub)
tempfile.tempdir = None  # re-read TMPDIR
# the demo-data cache too (the session fixture below replaces it with a pytest tmp folder once tests run)
os.environ["LIGHTNING_POSE_CACHE"] = str(SESSION_TMP / "demo-cache")

_HOME = Path.home()
# Places a test run must leave as it found them (checked at the end of the session).
_WATCHED = [
    _HOME / ".local" / "share" / "wandb",
    _HOME / ".cache" / "wandb",
    _HOME / ".config" / "wandb",
    _HOME / ".cache" / "lightning_pose",
    PROJECT_ROOT / "runs",
    PROJECT_ROOT / "wandb",
    PROJECT_ROOT / "lightning_logs",
    PROJECT_ROOT / "checkpoints",
]


def _snapshot() -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under the watched places, and the user temp dir's lp-* entries."""
    state: dict[str, tuple[int, int]] = {}
    for root in _WATCHED:
        if root.is_file():
            st = root.stat()
            state[str(root)] = (st.st_size, st.st_mtime_ns)
        elif root.is_dir():
            for f in root.rglob("*"):
                try:
                    st = f.lstat()
                except OSError:
                    continue
                state[str(f)] = (st.st_size, st.st_mtime_ns)
    for f in _USER_TEMP.glob("lp-*"):
        if f != SESSION_TMP:
            state[str(f)] = (0, f.lstat().st_mtime_ns)
    return state


_BEFORE = _snapshot()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a test wrote outside temporary folders; remove this session's temp folder."""
    changed = sorted(k for k, v in _snapshot().items() if _BEFORE.get(k) != v)
    shutil.rmtree(SESSION_TMP, ignore_errors=True)
    if changed:
        shown = "\n  ".join(changed[:20])
        more = f"\n  ... and {len(changed) - 20} more" if len(changed) > 20 else ""
        session.config.get_terminal_writer().line(
            f"\nERROR: the tests wrote {len(changed)} file(s) outside temporary folders:\n  {shown}{more}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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

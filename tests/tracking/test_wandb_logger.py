"""W&B mode resolution: offline unless an account is configured, env wins, forced modes respected."""

from __future__ import annotations

import pytest

from lightning_pose.callbacks.wandb_logger import resolve_wandb_mode, wandb_credentials_configured


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    return tmp_path


def test_no_account_means_offline(clean_env):
    assert not wandb_credentials_configured()
    assert resolve_wandb_mode("auto") == "offline"


def test_api_key_means_online(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"


def test_netrc_entry_means_online(clean_env):
    (clean_env / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    (clean_env / "netrc").chmod(0o600)
    assert wandb_credentials_configured()
    assert resolve_wandb_mode("auto") == "online"


def test_netrc_for_other_host_is_not_an_account(clean_env):
    (clean_env / "netrc").write_text("machine example.org\n  login user\n  password pw\n")
    (clean_env / "netrc").chmod(0o600)
    assert resolve_wandb_mode("auto") == "offline"


def test_env_mode_wins_and_dryrun_is_offline(clean_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert resolve_wandb_mode("auto") == "offline"


def test_forced_modes_and_bad_mode(clean_env):
    assert resolve_wandb_mode("online") == "online"
    assert resolve_wandb_mode("disabled") == "disabled"
    with pytest.raises(ValueError, match="auto, online, offline or disabled"):
        resolve_wandb_mode("sometimes")

"""Which W&B mode a run uses, decided without torch, Lightning or the network (``compare``/``dashboard`` use it).

``auto`` means ``WANDB_MODE`` when set, else ``online`` when an API key is configured, else ``offline``.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["wandb_credentials_configured", "resolve_wandb_mode"]


def wandb_credentials_configured() -> bool:
    """Whether an API key for the W&B server is available (env var or ~/.netrc), without contacting the server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if not path.is_file():
        return False
    try:
        return netrc.netrc(str(path)).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` -> ``WANDB_MODE`` if set, else ``online`` with credentials, else ``offline``."""
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"W&B mode must be auto, online, offline or disabled, got {mode!r}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env:
        return "offline" if env == "dryrun" else env
    return "online" if wandb_credentials_configured() else "offline"

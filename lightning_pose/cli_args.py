"""Command-line checks applied before LightningCLI parses (torch-free).

* ``None`` from a W&B sweep: the agent writes a Python ``None`` value as ``--key=None``, which jsonargparse does not
  read as null; it is rewritten to ``--key=null``.
* Order of ``--config`` and overrides: LightningCLI applies arguments left to right, so an override placed **before**
  ``--config FILE`` is silently replaced by the file's value. When the file sets a key overridden before it, the run
  would not be the one asked for: that is refused (:class:`ArgOrderError`). An earlier override the file does not
  touch still works, with a warning.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning_pose.errors import ConfigError

__all__ = ["prepare_cli_args", "ArgOrderError", "override_key"]

_CONFIG_FLAGS = ("--config", "-c")
#: options that are not config overrides
_NOT_OVERRIDES = ("--print_config", "--help", "-h", "--results")


class ArgOrderError(ConfigError):
    """An override comes before a ``--config`` file that sets the same key."""


def override_key(token: str) -> str | None:
    """``--model.init_args.lr=0.1`` -> ``model.init_args.lr``; None for non-overrides (``--config``, values)."""
    if not token.startswith("--"):
        return None
    name = token[2:].split("=", 1)[0]
    if not name or f"--{name}" in _CONFIG_FLAGS + _NOT_OVERRIDES:
        return None
    return name.rstrip("+")


def _flat_keys(node: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.add(key)
            out |= _flat_keys(v, key)
    return out


def _config_paths(args: list[str]) -> list[tuple[int, str]]:
    found = []
    for i, tok in enumerate(args):
        if tok in _CONFIG_FLAGS and i + 1 < len(args):
            found.append((i, args[i + 1]))
        elif tok.startswith("--config="):
            found.append((i, tok.split("=", 1)[1]))
    return found


def _file_keys(path: str) -> set[str]:
    from lightning_pose.config_paths import load_config

    try:
        data = load_config(Path(path))  # with the keys of its `__base__:` files
    except (OSError, ConfigError):
        return set()  # LightningCLI (or the `__base__` expansion) reports unreadable files itself
    return _flat_keys(data)


def prepare_cli_args(args: list[str]) -> list[str]:
    """Rewrite ``None`` values to ``null`` and check the order of overrides and ``--config`` (see module doc)."""
    out = []
    for i, tok in enumerate(args):
        if tok.startswith("--") and tok.endswith("=None") and "=" in tok:
            tok = tok[: -len("None")] + "null"
        elif tok == "None" and i > 0 and override_key(args[i - 1]) is not None and "=" not in args[i - 1]:
            tok = "null"
        out.append(tok)
    configs = _config_paths(out)
    if not configs:
        return out
    subcommand_end = 1 if out and not out[0].startswith("-") else 0
    for pos, path in configs:
        earlier = [(j, override_key(t)) for j, t in enumerate(out[subcommand_end:pos], subcommand_end)]
        earlier = [(j, k) for j, k in earlier if k]
        if not earlier:
            continue
        keys = _file_keys(path)
        clash = [k for _j, k in earlier if k in keys]
        if clash:
            raise ArgOrderError(
                f"{path}: --config comes after --{clash[0]}, and the file sets {clash[0]}: the file would silently "
                f"replace the override. Put --config first (e.g. `lightning-pose fit --config {path} --{clash[0]}=...`"
                "; in a W&B sweep: `command: [..., fit, --config, FILE, ${args}]`)"
            )
        names = ", ".join(f"--{k}" for _j, k in earlier)
        print(
            f"lightning-pose: warning: {names} given before --config {path}: options apply left to right, put "
            "--config first (the file does not set them, so they still apply)",
            file=sys.stderr,
        )
    return out

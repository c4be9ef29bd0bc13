"""Configs and sweeps shipped with the package, so ``--config quickstart`` works from any folder.

The repository keeps them at its root (``configs/``, ``sweeps/``); ``lightning_pose/configs`` and
``lightning_pose/sweeps`` are symlinks to those folders and the wheel build copies their YAML files into the package.
A ``--config`` value is used as given when it names an existing file; otherwise it is looked up among the packaged
configs by name: ``quickstart``, ``hourglass/mpii``, ``hourglass/mpii.yaml`` or ``configs/hourglass/mpii.yaml``.
Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lightning_pose.errors import ConfigError

__all__ = ["packaged_dir", "packaged_configs", "resolve_config", "resolve_config_args", "sweep_path"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_dir(kind: str = "configs") -> Path:
    """The folder of the packaged ``configs`` or ``sweeps`` (inside the installed package, or the checkout root)."""
    for candidate in (_PACKAGE_DIR / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"the packaged {kind}/ folder is missing from {_PACKAGE_DIR}; reinstall lightning-human-pose")


def packaged_configs() -> list[str]:
    """Names of the packaged configs (``quickstart``, ``hourglass/mpii``, ...), sorted."""
    root = packaged_dir("configs")
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def _lookup(name: str, kind: str) -> Path | None:
    root = packaged_dir(kind)
    text = name.replace("\\", "/").strip("/")
    if text.startswith(f"{kind}/"):
        text = text[len(kind) + 1:]
    for candidate in (text, f"{text}.yaml", f"{text}.yml"):
        path = root / candidate
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            return path
    return None


def resolve_config(value: str | Path) -> Path:
    """An existing file as given, else the packaged config of that name; one clear error line otherwise."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    found = _lookup(str(value), "configs")
    if found is not None:
        return found
    names = packaged_configs()
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise ConfigError(f"--config {value}: no such file, and no packaged config of that name (packaged: {shown})")


def sweep_path(name: str) -> Path:
    """The packaged sweep definition ``name`` (e.g. ``quickstart_lr``), for ``wandb sweep``."""
    found = _lookup(name, "sweeps")
    if found is None:
        raise ConfigError(f"sweep {name}: no packaged sweep of that name (in {packaged_dir('sweeps')})")
    return found


def resolve_config_args(argv: Sequence[str]) -> list[str]:
    """``argv`` with every ``--config NAME`` / ``--config=NAME`` value replaced by the file it resolves to
    (values that are existing files, or that look like inline YAML/JSON, are left unchanged)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--config" and i + 1 < len(out):
            out[i + 1] = _resolve_value(out[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + _resolve_value(arg[len("--config="):])
    return out


def _resolve_value(value: str) -> str:
    if not value or value.lstrip()[:1] in "{[" or "\n" in value or ": " in value:
        return value  # jsonargparse also accepts an inline config string
    return str(resolve_config(value))

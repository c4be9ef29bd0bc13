"""``lightning-pose --version``: the package version and those of the libraries that shape results."""

from __future__ import annotations

from importlib import metadata

__all__ = ["version_line"]

_DIST = "lightning-human-pose"
_LIBS = ("torch", "lightning", "wandb")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def version_line() -> str:
    """``lightning-pose 0.1.0 (torch 2.x, lightning 2.x, wandb 0.x)`` without importing those libraries."""
    own = _version(_DIST) or "unknown"
    libs = [f"{name} {v}" for name in _LIBS if (v := _version(name))]
    return f"lightning-pose {own}" + (f" ({', '.join(libs)})" if libs else "")

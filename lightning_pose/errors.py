"""User-facing error types (torch-free, the lowest layer: ``data``, ``evaluation`` and the CLI all import it).

A :class:`PoseUserError` is a problem with what the user gave us (a file, a record, a config value, an option),
never a bug. The ``lightning-pose`` command prints its message as ``lightning-pose: error: <message>`` and exits
with status 2 instead of showing a traceback, so the message must name the file (or option), the record and the
problem by itself.
"""

from __future__ import annotations

__all__ = ["PoseUserError", "ConfigError", "CheckpointError", "OutputPathError"]


class PoseUserError(Exception):
    """Bad user input; the message alone must tell what and where (file, record or option, problem)."""


class ConfigError(PoseUserError, ValueError):
    """An option or config value that cannot work (e.g. ``batch_size: 0``, an input size the network cannot take)."""


class CheckpointError(PoseUserError, ValueError):
    """A checkpoint that cannot be read or does not fit the configured model (names the checkpoint file)."""


class OutputPathError(PoseUserError, ValueError):
    """An output path that would overwrite an input or a user's file, or that cannot be written."""

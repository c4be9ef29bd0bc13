"""User-facing error types (torch-free, the lowest layer: ``data``, ``evaluation`` and the CLI all import it).

A :class:`PoseUserError` is a problem with what the user gave us (a file, a record, a config value, an option),
never a bug. The ``lightning-pose`` command prints its message as ``lightning-pose: error: <message>`` and exits
with status 2 instead of showing a traceback, so the message must name the file (or option), the record and the
problem by itself.

:class:`DataProblem` / :class:`DatasetError` (bad annotation, prediction or image files) live here too, below both
``data/`` and ``evaluation/``; ``lightning_pose.data.records`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoseUserError", "ConfigError", "CheckpointError", "OutputPathError", "DataProblem", "DatasetError"]


class PoseUserError(Exception):
    """Bad user input; the message alone must tell what and where (file, record or option, problem)."""


class ConfigError(PoseUserError, ValueError):
    """An option or config value that cannot work (e.g. ``batch_size: 0``, an input size the network cannot take)."""


class CheckpointError(PoseUserError, ValueError):
    """A checkpoint that cannot be read or does not fit the configured model (names the checkpoint file)."""


class OutputPathError(PoseUserError, ValueError):
    """An output path that would overwrite an input or a user's file, or that cannot be written."""


@dataclass
class DataProblem:
    """One problem found in an annotation file (used by ``lightning-pose data check`` and skip-with-report).

    Attributes:
        file: the annotation (or image) file the problem is in.
        record: which record: e.g. ``"image 785"``, ``"annotation 442619"``, ``"person 3 (image 005808361.jpg)"``.
        problem: what is wrong, in words a user can act on.
        kind: a short machine-readable category (``missing_image``, ``unreadable_image``, ``size_mismatch``,
            ``keypoint_count``, ``non_finite``, ``empty_box``, ``path_escape``, ``unknown_image``, ``bad_value``,
            ``duplicate_id``).
    """

    file: str
    record: str
    problem: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}: {self.record}: {self.problem}"

    def to_dict(self) -> dict:
        return {"file": self.file, "record": self.record, "problem": self.problem, "kind": self.kind}


class DatasetError(PoseUserError, ValueError):
    """Raised for bad annotation input; the message names the file, the record and the problem."""

    def __init__(self, problems: list[DataProblem] | DataProblem | str, *, hint: bool = True):
        if isinstance(problems, str):
            self.problems: list[DataProblem] = []
            super().__init__(problems)
            return
        if isinstance(problems, DataProblem):
            problems = [problems]
        self.problems = list(problems)
        # the first line alone names the file, the record and the problem; further problems follow, one per line
        tail = (
            "run `lightning-pose data check` for the full report, or set skip_invalid: true to drop such records"
            if hint
            else ""
        )
        if len(self.problems) == 1:
            super().__init__(f"{self.problems[0]}" + (f" ({tail})" if tail else ""))
            return
        what = "the dataset" if hint else "the input"
        rest = "".join(f"\n{p}" for p in self.problems[1:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(
            f"{len(self.problems)} problems in {what}, the first: {self.problems[0]}{rest}{more}"
            + (f"\n({tail})" if tail else "")
        )

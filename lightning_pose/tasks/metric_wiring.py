"""Wiring of a task's evaluation: which splits a trainer stage evaluates, where their metrics come from.

The metrics of a split are what the datamodule declares (``metric_specs``, built by
:func:`lightning_pose.metrics.registry.build_metrics`), or what the user set with ``task.set_metrics(split, ...)``.
Evaluating without either (``trainer.validate(model, dataloaders=...)``) is refused with one
:class:`~lightning_pose.errors.ConfigError` line instead of logging only the loss.
"""

from __future__ import annotations

from typing import Any, Iterable

from lightning_pose.errors import ConfigError

__all__ = ["splits_for_stage", "metric_datamodule", "no_metrics_error"]

_SPLITS = {"fit": ("val",), "validate": ("val",), "test": ("test",), "predict": ()}
_CALL = {"val": "trainer.validate / trainer.fit with val_dataloaders", "test": "trainer.test"}


def splits_for_stage(stage: str) -> tuple[str, ...]:
    """The splits a Lightning stage (``fit``, ``validate``, ``test``, ``predict``) evaluates."""
    return _SPLITS.get(stage, ())


def no_metrics_error(task: Any, split: str) -> ConfigError:
    """The one-line error for evaluating ``split`` with neither a datamodule nor metrics set on the task."""
    return ConfigError(
        f"{type(task).__name__}: {_CALL.get(split, split)} without a datamodule: the {split!r} metrics come from the "
        "datamodule (its metric_specs), so only the loss would be logged; pass datamodule=... (e.g. COCODataModule) "
        f"or set them with task.set_metrics({split!r}, {{name: metric}})"
    )


def metric_datamodule(task: Any, stage: str, evaluated: Iterable[str] = ()) -> Any:
    """The trainer's datamodule for building the metrics of ``stage`` (``None`` when there is none and nothing is
    to be built).

    Raises:
        ConfigError: ``validate``/``test`` without a datamodule, for a split whose metrics were not set
            explicitly (``evaluated`` lists the splits that already have metrics).
    """
    trainer = getattr(task, "_trainer", None)
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    if dm is None and stage in ("validate", "test"):
        missing = [s for s in splits_for_stage(stage) if s not in set(evaluated)]
        if missing:
            raise no_metrics_error(task, missing[0])
    return dm

"""The pre-injection network keyword arguments of the regression, hybrid and bottom-up tasks, mapped onto a network
spec (see :mod:`lightning_pose.tasks.network`).

``DeepPoseTask(backbone="resnet18", hidden=256)`` (older configs, checkpoints and user code) is the same as
``DeepPoseTask(network={"class_path": "lightning_pose.models.DeepPoseRegressor", "init_args": {"backbone":
"resnet18", "hidden": 256}})``. A task takes one form or the other: the old arguments default to ``None`` (not
given) and giving them together with ``network`` is refused with one line. The task's hyper-parameters store only
the spec (the old arguments are dropped from them), so a checkpoint reloads from its ``network`` alone.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from lightning_pose.errors import ConfigError
from lightning_pose.tasks.network import NetworkSpec, describe_network

__all__ = ["network_from_legacy_args", "drop_legacy_hparams", "override_network_args"]


def network_from_legacy_args(
    task: str,
    network: NetworkSpec | None,
    class_path: str,
    legacy: Mapping[str, Any],
    renames: Mapping[str, str] | None = None,
) -> NetworkSpec:
    """The network spec of a task.

    Args:
        task: task class name (for the error message).
        network: the injected spec, or ``None``.
        class_path: the network class the old arguments build.
        legacy: old argument name -> value as passed (``None`` = not given).
        renames: old argument name -> the network's argument name where they differ.

    Returns:
        ``network`` when given, else ``{"class_path": class_path, "init_args": {...given old arguments...}}`` (the
        network's own defaults apply to the others).

    ``pretrained=False`` is the exception: with ``network`` it switches the network's ``pretrained`` off (checkpoint
    loading passes it so that nothing is downloaded).

    Raises:
        ConfigError: both ``network`` and old arguments given.
    """
    given = {k: v for k, v in legacy.items() if v is not None}
    if network is not None and given.get("pretrained") is False:
        # "no ImageNet download" (what checkpoint loading passes): applies to the injected network as well
        del given["pretrained"]
        if "pretrained" in describe_network(network)["init_args"]:
            network = override_network_args(network, pretrained=False)
    if network is not None:
        if given:
            raise ConfigError(
                f"{task}: give the network either as model.init_args.network or with the old "
                f"arguments {sorted(given)}, not both"
            )
        return network
    renames = renames or {}
    init_args = {renames.get(k, k): (list(v) if isinstance(v, tuple) else v) for k, v in given.items()}
    return {"class_path": class_path, "init_args": init_args}


def drop_legacy_hparams(module: Any, names: Any) -> None:
    """Remove the old network arguments from a LightningModule's saved hyper-parameters (the ``network`` spec
    carries them), in both ``hparams`` and the logged ``hparams_initial``."""
    for store in (getattr(module, "_hparams", None), getattr(module, "_hparams_initial", None)):
        if store is not None:
            for name in names:
                store.pop(name, None)


def override_network_args(spec: NetworkSpec, **overrides: Any) -> NetworkSpec:
    """``spec`` with task-owned network arguments forced to ``overrides`` (e.g. DeepPose's ``rle``, set by the
    task's loss; AE's ``tag_dim``). jsonargparse fills every network argument with its default, so these must
    override the spec rather than only fill gaps (:func:`~lightning_pose.tasks.network.build_network`'s extras)."""
    if isinstance(spec, Mapping):
        return {**spec, "init_args": {**dict(spec.get("init_args") or {}), **overrides}}
    return functools.partial(spec, **overrides)

"""Networks given to a task by the config: one contract for every method.

A task receives its network as a *factory* called with the keypoint count (the only thing the task knows that the
config does not): ``network(num_keypoints) -> nn.Module``. In YAML this is jsonargparse's dependency injection::

    model:
      class_path: lightning_pose.tasks.HeatmapTask
      init_args:
        network:
          class_path: lightning_pose.models.SimpleBaseline   # any nn.Module whose first argument is num_keypoints
          init_args: {backbone: resnet50, deconv_channels: [256, 256, 256]}

From Python any of these work: a class (``SimpleBaseline``), a ``functools.partial`` of one, a mapping
``{"class_path": ..., "init_args": {...}}`` (what a checkpoint stores), or any callable ``num_keypoints -> Module``.

The task stores :func:`describe_network` of the factory in its hyper-parameters, so ``load_from_checkpoint``
rebuilds the same network from the checkpoint alone (a lambda cannot be rebuilt; loading such a checkpoint fails
with one clear line).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Union

from torch import nn

from lightning_pose.errors import ConfigError

__all__ = ["NetworkFactory", "NetworkSpec", "build_network", "describe_network", "network_int", "network_name"]

#: ``num_keypoints -> nn.Module`` (jsonargparse turns a ``class_path``/``init_args`` block into one)
NetworkFactory = Callable[[int], nn.Module]
#: a factory, or the mapping :func:`describe_network` returns (as stored in checkpoints)
NetworkSpec = Union[NetworkFactory, Mapping[str, Any]]


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _unwrap(factory: Any) -> tuple[Any, dict[str, Any]]:
    """The class (or function) behind a factory and its bound keyword arguments."""
    kwargs: dict[str, Any] = {}
    target = factory
    while isinstance(target, functools.partial):
        kwargs = {**target.keywords, **kwargs}
        # jsonargparse wraps the class: partial(call_without_instantiate_context, instantiator, cls, **init_args)
        inner = next((a for a in target.args if isinstance(a, type)), None)
        target = inner if inner is not None else target.func
    return target, kwargs


def describe_network(spec: NetworkSpec) -> dict[str, Any]:
    """``{"class_path": "pkg.mod.Class", "init_args": {...}}`` of a network factory (plain types only).

    ``rebuildable`` is ``False`` when the factory cannot be re-imported by its path (a lambda or a local function).
    """
    if isinstance(spec, Mapping):
        if "class_path" not in spec:
            raise ConfigError(f"network: a mapping needs a 'class_path' (got keys {sorted(spec)})")
        return {"class_path": str(spec["class_path"]), "init_args": _plain(dict(spec.get("init_args") or {}))}
    if not callable(spec):
        raise ConfigError(f"network: expected a class_path/init_args block or a callable, got {spec!r}")
    target, kwargs = _unwrap(spec)
    qualname = getattr(target, "__qualname__", type(target).__name__)
    out: dict[str, Any] = {"class_path": f"{getattr(target, '__module__', '')}.{qualname}", "init_args": _plain(kwargs)}
    if "<" in qualname:  # <lambda>, <locals>
        out["rebuildable"] = False
    return out


def network_name(spec: NetworkSpec) -> str:
    """Short name of the network class (``SimpleBaseline``), for trackers and run names."""
    return describe_network(spec)["class_path"].rpartition(".")[2]


def _import(class_path: str) -> Any:
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"network: class_path {class_path!r} cannot be imported") from None


def build_network(spec: NetworkSpec, num_keypoints: int, **extra: Any) -> nn.Module:
    """Instantiate the network for ``num_keypoints`` keypoints; ``extra`` keyword arguments are added (task-owned
    settings such as CPM's background channel) unless the spec already sets them."""
    if isinstance(spec, Mapping):
        desc = describe_network(spec)
        if "<" in desc["class_path"]:
            raise ConfigError(
                f"network: {desc['class_path']} was a lambda or local function and cannot be rebuilt;"
                " give the network as an importable class"
            )
        cls = _import(desc["class_path"])
        net = cls(num_keypoints, **{**extra, **desc["init_args"]})
    else:
        if not callable(spec):
            raise ConfigError(f"network: expected a class_path/init_args block or a callable, got {spec!r}")
        _, bound = _unwrap(spec)
        net = spec(num_keypoints, **{k: v for k, v in extra.items() if k not in bound})
    if not isinstance(net, nn.Module):
        raise ConfigError(
            f"network: {describe_network(spec)['class_path']} returned {type(net).__name__}, not a torch.nn.Module"
        )
    return net


def network_int(net: nn.Module, name: str) -> int:
    """An integer attribute a network declares (``stride``: input px per output px; ``size_divisor``), as an int;
    a network without it is refused with one line."""
    value = getattr(net, name, None)
    if value is None:
        raise ConfigError(f"network {type(net).__name__} has no '{name}' attribute (the task needs it)")
    return int(value)

"""Reading our checkpoints safely and rebuilding the task they hold (no config file needed).

Every checkpoint written by a :class:`~lightning_pose.tasks.base.PoseTask` carries, under the key
``"lightning_pose"`` (plain Python types only, so it loads with ``torch.load(weights_only=True)``)::

    {"format": 1, "package_version": "0.1.0",
     "class_path": "lightning_pose.tasks.heatmap.HeatmapTask",
     "init_args": {...constructor arguments of the task and codec, "network": {"class_path": ..., "init_args": ...}},
     "keypoint_set": {...KeypointSet.to_dict()...}, "num_keypoints": 17,
     "input_size": [W_in, H_in],                       # network input in pixels, width first
     "normalization": {"mean": [...], "std": [...], "color": "RGB", "pixel_range": 255}}

Checkpoints are always read with ``weights_only=True``: a file that needs arbitrary unpickling is refused.
Every problem is raised as :class:`~lightning_pose.errors.CheckpointError` whose one-line message names the file.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

from lightning_pose.errors import CheckpointError

__all__ = [
    "METADATA_KEY",
    "check_checkpoint_file",
    "read_checkpoint",
    "checkpoint_metadata",
    "task_from_checkpoint",
    "load_state_dict_checked",
    "check_state_shapes",
    "check_compatible",
    "guard_trainer_checkpoint_loading",
]

METADATA_KEY = "lightning_pose"
#: hparams keys that describe a run (W&B) but are not constructor arguments
_DESCRIPTIVE_KEYS = {"num_keypoints", "method", "optimizer_config", "scheduler_config", "_instantiator"}
#: constructor arguments that only matter for training or evaluation exports, not for a loaded model
_TRAINING_ONLY_KEYS = {"optimizer", "scheduler", "export_dir"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def check_checkpoint_file(path: str | Path) -> Path:
    """Cheap checks before unpickling: the file exists, is not empty and is a complete zip archive
    (``torch.save``'s format); a truncated download has no zip end record and is caught here."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p}: file does not exist")
    if p.is_dir():
        raise CheckpointError(f"checkpoint {p}: is a directory, expected a .ckpt file")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {p}: file is empty (0 bytes)")
    if not zipfile.is_zipfile(p):
        raise CheckpointError(
            f"checkpoint {p}: not a complete PyTorch checkpoint ({size} bytes, no zip end record): "
            "the file is truncated or in another format"
        )
    return p


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """``torch.load(path, weights_only=True)`` with every failure turned into one clear :class:`CheckpointError`."""
    import torch

    p = check_checkpoint_file(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"checkpoint {p}: refused, it holds objects that safe loading (weights_only=True) does not allow "
            f"({_first_line(exc)}); only load checkpoints you trust with torch.load directly"
        ) from None
    except (EOFError, RuntimeError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {p}: cannot be read ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"checkpoint {p}: not a Lightning checkpoint (no 'state_dict' entry)")
    return ckpt


def checkpoint_metadata(ckpt: Mapping[str, Any], path: str | Path = "") -> dict:
    """The ``"lightning_pose"`` entry; for older checkpoints rebuilt from ``hyper_parameters`` (no class path)."""
    meta = ckpt.get(METADATA_KEY)
    if isinstance(meta, Mapping):
        return dict(meta)
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, Mapping) or "keypoint_set" not in hp or "input_size" not in hp:
        raise CheckpointError(
            f"checkpoint {path}: holds no lightning_pose model description (no '{METADATA_KEY}' entry and no "
            "keypoint_set/input_size hyper-parameters); was it written by lightning_pose?"
        )
    init_args = {
        k: v
        for k, v in hp.items()
        if k not in _DESCRIPTIVE_KEYS | _TRAINING_ONLY_KEYS and k not in ("keypoint_set", "input_size")
    }
    return {
        "format": 0,
        "class_path": None,
        "init_args": init_args,
        "keypoint_set": hp["keypoint_set"],
        "input_size": list(hp["input_size"]),
        "num_keypoints": hp.get("num_keypoints"),
    }


def _accepted_arguments(cls: type) -> set[str]:
    """Constructor argument names over the class hierarchy (subclasses forward ``**kwargs`` to their base)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, param in inspect.signature(init).parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                names.add(name)
        if klass.__name__ == "PoseTask":
            break
    return names


def _resolve_class(meta: Mapping[str, Any], requested: type | None, path: Path) -> type:
    from lightning_pose.tasks.base import PoseTask

    class_path = meta.get("class_path")
    stored: type | None = None
    if class_path:
        module_name, _, name = str(class_path).rpartition(".")
        try:
            stored = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError):
            raise CheckpointError(
                f"checkpoint {path}: its model class {class_path} cannot be imported (is the package that "
                "defines it installed?)"
            ) from None
        if not (isinstance(stored, type) and issubclass(stored, PoseTask)):
            raise CheckpointError(f"checkpoint {path}: model class {class_path} is not a lightning_pose task")
    if requested is None or requested is PoseTask:
        if stored is None:
            raise CheckpointError(
                f"checkpoint {path}: written by an older version without the model class; load it with the "
                "task class, e.g. SimpleBaselineTask.load_from_checkpoint(path)"
            )
        return stored
    if stored is not None and not issubclass(stored, requested):
        raise CheckpointError(
            f"checkpoint {path}: holds a {stored.__name__}, not a {requested.__name__}; use "
            f"{stored.__name__}.load_from_checkpoint or lightning_pose.load"
        )
    # the stored class when it is a subclass of the requested one (a SimpleBaselineTask checkpoint loaded with
    # HeatmapTask.load_from_checkpoint, or through a HeatmapTask config, keeps its own constructor arguments)
    return stored if stored is not None else requested


def _state_shapes(state_dict: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items() if hasattr(v, "shape")}


def check_compatible(
    meta: Mapping[str, Any], num_keypoints: int, input_size: tuple[int, int], path: str | Path
) -> None:
    """Refuse a checkpoint whose keypoint count or input size differs from the model it is loaded into."""
    stored_k = meta.get("num_keypoints")
    if stored_k is None and isinstance(meta.get("keypoint_set"), Mapping):
        stored_k = len(meta["keypoint_set"].get("keypoints", ()))
    if stored_k is not None and int(stored_k) != int(num_keypoints):
        name = meta.get("keypoint_set", {}).get("name", "?") if isinstance(meta.get("keypoint_set"), Mapping) else "?"
        raise CheckpointError(
            f"checkpoint {path}: trained for {int(stored_k)} keypoints (keypoint set {name!r}) but the configured "
            f"model has {int(num_keypoints)}; use a datamodule with the checkpoint's keypoint set"
        )
    stored_size = meta.get("input_size")
    if stored_size is not None and tuple(int(v) for v in stored_size) != tuple(int(v) for v in input_size):
        w, h = (int(v) for v in stored_size)
        raise CheckpointError(
            f"checkpoint {path}: trained at input size {w}x{h} (W x H) but the model is configured for "
            f"{int(input_size[0])}x{int(input_size[1])}; predictions would be wrong, set "
            f"`--data.input_size [{w}, {h}]` (or leave it out with `predict --source`)"
        )


def check_state_shapes(model: Any, state_dict: Mapping[str, Any], path: str | Path) -> None:
    """Refuse weights whose shapes differ from the model's (one line instead of torch's size-mismatch list)."""
    own = _state_shapes(model.state_dict())
    theirs = _state_shapes(state_dict)
    wrong = [(k, theirs[k], own[k]) for k in own if k in theirs and theirs[k] != own[k]]
    if wrong:
        k, a, b = wrong[0]
        raise CheckpointError(
            f"checkpoint {path}: {len(wrong)} weight(s) do not fit the model, first {k} has shape {list(a)} in the "
            f"checkpoint and {list(b)} in the model (different network settings or keypoint count)"
        )


def load_state_dict_checked(model: Any, state_dict: Mapping[str, Any], path: str | Path, strict: bool = True) -> None:
    """``model.load_state_dict`` with shape and key mismatches reported as one :class:`CheckpointError` line."""
    check_state_shapes(model, state_dict, path)
    own = _state_shapes(model.state_dict())
    theirs = _state_shapes(state_dict)
    if strict:
        missing = sorted(set(own) - set(theirs))
        unexpected = sorted(set(theirs) - set(own))
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} (first {missing[0]})")
            if unexpected:
                parts.append(f"unexpected {len(unexpected)} (first {unexpected[0]})")
            detail = "; ".join(parts)
            raise CheckpointError(f"checkpoint {path}: weights do not match the model's layers: {detail}")
    model.load_state_dict(state_dict, strict=strict)


def task_from_checkpoint(
    path: str | Path, cls: type | None = None, map_location: Any = "cpu", strict: bool = True, **overrides: Any
) -> Any:
    """Rebuild the task stored in ``path`` and load its weights; returns it in eval mode.

    Args:
        path: a checkpoint written by a lightning_pose task.
        cls: the expected task class (``None`` or ``PoseTask``: the class stored in the checkpoint).
        map_location: passed to ``torch.load`` (``"cpu"`` by default).
        strict: require the weights to match the model's layers exactly.
        **overrides: constructor arguments replacing the stored ones (e.g. ``flip_test=False``); a different
            ``keypoint_set`` or ``input_size`` than the checkpoint's is refused.
    """
    p = Path(path)
    ckpt = read_checkpoint(p, map_location=map_location)
    meta = checkpoint_metadata(ckpt, p)
    task_cls = _resolve_class(meta, cls, p)
    accepted = _accepted_arguments(task_cls)
    kwargs = {k: v for k, v in dict(meta.get("init_args") or {}).items() if k in accepted}
    kwargs["keypoint_set"] = meta["keypoint_set"]
    kwargs["input_size"] = tuple(int(v) for v in meta["input_size"])
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise CheckpointError(f"checkpoint {p}: {task_cls.__name__} has no argument {unknown[0]!r}")
    kwargs.update(overrides)
    if "pretrained" in accepted and "pretrained" not in overrides:
        kwargs["pretrained"] = False  # the checkpoint's weights replace them: never download ImageNet weights
    network = kwargs.get("network")
    if (
        isinstance(network, Mapping)
        and "network" not in overrides
        and isinstance(network.get("init_args"), Mapping)
        and "pretrained" in network["init_args"]
    ):
        # the same for an injected network ({class_path, init_args} stored by the task)
        kwargs["network"] = {**network, "init_args": {**network["init_args"], "pretrained": False}}
    try:
        model = task_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {p}: cannot rebuild {task_cls.__name__} ({_first_line(exc)})") from None
    check_compatible(meta, model.num_keypoints, model.input_size, p)
    load_state_dict_checked(model, ckpt["state_dict"], p, strict=strict)
    model.checkpoint_path = str(p)
    return model.eval()


def _is_local(path: Any) -> bool:
    return "://" not in str(path)


def guard_trainer_checkpoint_loading(trainer: Any) -> None:
    """Make the trainer's ``--ckpt_path`` loading report bad files as one :class:`CheckpointError` line.

    Lightning restores ``ckpt_path`` after ``setup`` through ``trainer.strategy.checkpoint_io``; that object is
    wrapped (once) so that a local file is checked first (exists, not empty, complete zip) and unpickling errors
    (``weights_only`` refusals included) name the file. Saving is delegated unchanged.
    """
    from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

    strategy = trainer.strategy
    inner = strategy.checkpoint_io
    if getattr(inner, "_lightning_pose_guard", False):
        return

    class _GuardedCheckpointIO(CheckpointIO):
        _lightning_pose_guard = True

        def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
            inner.save_checkpoint(checkpoint, path, storage_options=storage_options)

        def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict:
            if not _is_local(path):
                return inner.load_checkpoint(path, *args, **kwargs)
            check_checkpoint_file(path)
            try:
                return inner.load_checkpoint(path, *args, **kwargs)
            except pickle.UnpicklingError as exc:
                raise CheckpointError(
                    f"checkpoint {path}: refused, it holds objects that safe loading (weights_only=True) does not "
                    f"allow ({_first_line(exc)})"
                ) from None
            except (EOFError, RuntimeError, zipfile.BadZipFile) as exc:
                raise CheckpointError(
                    f"checkpoint {path}: cannot be read ({type(exc).__name__}: {_first_line(exc)})"
                ) from None

        def remove_checkpoint(self, path: Any) -> None:
            inner.remove_checkpoint(path)

        def teardown(self) -> None:
            inner.teardown()

        def __getattr__(self, name: str) -> Any:  # anything else (e.g. async IO plugins' extras)
            return getattr(inner, name)

    strategy.checkpoint_io = _GuardedCheckpointIO()

"""Resuming an interrupted ``fit``: which checkpoint and W&B run to continue, and what a checkpoint must hold so that
the resumed run ends exactly where an uninterrupted one ends.

How the run to resume is identified (``lightning-pose fit --ckpt_path ...``):

* ``last``: the newest ``last*.ckpt`` (by modification time) among the runs of this config: the checkpoint folders
  ``<save_dir>/<project>/<run id>/checkpoints/`` of the W&B logger (or a ``ModelCheckpoint``'s own ``dirpath``), keeping
  only checkpoints written by a run with the same logger ``name`` (``None`` included) and the same task class, as
  recorded in the checkpoint by :class:`ResumeState`. Nothing found is an error
  (:class:`~lightning_pose.errors.CheckpointError`), never a silent fresh start.
* a path: that checkpoint; when it belongs to a W&B run of the configured project (recorded in the checkpoint, or
  read from the ``<project>/<run id>/checkpoints/`` folder it sits in) that run is continued.

For ``fit``, the W&B logger then continues the run (same id, so the same checkpoint folder, where Lightning restores
``ModelCheckpoint``'s best score, best/last paths and top-k). ``validate``/``test`` only use the located checkpoint.

:class:`LastEpochCheckpoint` (added by the CLI) writes ``last.ckpt`` at the end of every epoch, after validation.
:class:`ResumeState` (added to every ``fit`` by the CLI) stores in each checkpoint, under the ``"lightning_pose_resume"`` key,
the run identity above and the random states (torch CPU/CUDA, numpy's global generator, Python's ``random``) as of the
save. Resuming from a checkpoint written at the end of an epoch puts these states back as soon as the checkpoint is
loaded: nothing draws from them before the resumed run creates its first training iterator, just as nothing draws
between the save and the next epoch's iterator in the uninterrupted run, so both draw the same shuffling order and
DataLoader worker seeds. It also tells the training datasets the epoch (``set_epoch``) at every epoch start (and the
resumed epoch at load time, since Lightning builds a resumed run's first iterator before ``on_train_epoch_start``), so
the in-process augmentation stream (``num_workers: 0``) depends on the epoch only. A resumed run thus sees the same
batches and augmentation and ends with bit-identical weights and metrics (``tests/test_resume.py``).

Not covered (known limits): checkpoints written mid-epoch (``val_check_interval < 1``, ``every_n_train_steps``:
Lightning restarts the epoch's data iterator, so the rest of the epoch sees other batches; a warning says so),
persistent DataLoader workers (their streams died with the workers), and DDP (every rank gets rank 0's states back).
Units: epochs are 0-based Lightning epochs, steps are optimizer steps (``global_step``).
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_pose.errors import CheckpointError

__all__ = [
    "CHECKPOINT_KEY",
    "ResumeState",
    "RunIdentity",
    "capture_rng_state",
    "restore_rng_state",
    "read_run_identity",
    "find_last_checkpoint",
    "resolve_checkpoint",
    "ensure_last_checkpoint",
    "LastEpochCheckpoint",
    "task_name",
]

#: top-level key of the lightning_pose entries in a checkpoint
CHECKPOINT_KEY = "lightning_pose_resume"  # (the task stores its model description under "lightning_pose")
_LAST = re.compile(r"^last(-.*)?\.ckpt$")
#: ``--ckpt_path`` values Lightning resolves itself
_LIGHTNING_SPECIAL = ("best", "hpc")


@dataclass(frozen=True)
class RunIdentity:
    """The run a checkpoint belongs to: W&B run id and project, the configured run name, the task class path."""

    run_id: str | None = None
    project: str | None = None
    name: str | None = None
    task: str | None = None
    #: whether the identity was recorded by :class:`ResumeState` (else guessed from the checkpoint's folder)
    recorded: bool = True


def task_name(model: Any) -> str:
    """``module.Class`` of a task (or task class): recorded in checkpoints to match runs."""
    cls = model if isinstance(model, type) else type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------------------------------------------- random states
def capture_rng_state() -> dict[str, Any]:
    """The process's global random states, as plain values and tensors (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": [int(v) for v in py_state], "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the states of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------------- callback
def _wandb_logger(trainer: Trainer) -> WandbLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def _configured_name(logger: WandbLogger) -> str | None:
    return logger._wandb_init.get("name")


def _datasets(loaders: Any) -> Iterator[Any]:
    """Datasets of a DataLoader or a (nested) list/dict of them, unwrapping ``Subset``-like ``.dataset`` chains."""
    if isinstance(loaders, torch.utils.data.DataLoader):
        ds, depth = loaders.dataset, 0
        while ds is not None and depth < 4:
            yield ds
            ds, depth = getattr(ds, "dataset", None), depth + 1
    elif isinstance(loaders, dict):
        for value in loaders.values():
            yield from _datasets(value)
    elif isinstance(loaders, (list, tuple)):
        for value in loaders:
            yield from _datasets(value)


class ResumeState(Callback):
    """Makes checkpoints resumable exactly (see the module docstring): records the run identity and the random
    states in every checkpoint, restores them when a run resumes from an epoch-end checkpoint, and calls
    ``set_epoch(epoch)`` on the training datasets at every epoch start."""

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        logger = _wandb_logger(trainer)
        identity = RunIdentity(
            run_id=None if logger is None or logger.version is None else str(logger.version),
            project=None if logger is None else str(logger.name),
            name=None if logger is None else _configured_name(logger),
            task=task_name(pl_module),
        )
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        checkpoint[CHECKPOINT_KEY] = {
            "format": 1,
            "run": {k: v for k, v in asdict(identity).items() if k != "recorded"},
            "rng": capture_rng_state(),
            "epoch": int(trainer.current_epoch),
            # all of the epoch's batches done: the next draw is the next epoch's shuffling order
            "epoch_end": bool(progress.ready >= trainer.num_training_batches),
        }

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        # Applied right away: what runs between here and the creation of the first training iterator (moving the
        # model, restoring optimizers, on_fit_start hooks, the sanity check, which Lightning runs in isolated random
        # states) draws nothing; the uninterrupted run draws nothing between its save and its next iterator either.
        entry = checkpoint.get(CHECKPOINT_KEY)
        if not isinstance(entry, dict) or "rng" not in entry:
            rank_zero_warn(
                "the checkpoint holds no random states (not written by lightning-pose): the resumed run "
                "draws a different data order and augmentation than an uninterrupted one"
            )
            return
        if not entry.get("epoch_end", False):
            rank_zero_warn(
                "resuming from a mid-epoch checkpoint: global step and schedules continue exactly, but "
                "Lightning restarts the epoch's data iterator, so the rest of the epoch sees other batches "
                "than an uninterrupted run"
            )
            return
        restore_rng_state(entry["rng"])
        # Lightning creates the first iterator of a resumed run (and prefetches a batch) before on_train_epoch_start:
        # the training dataset must know the epoch already. The datamodule's cached dataset is the one it loads.
        dataset_of = getattr(trainer.datamodule, "dataset", None)
        if callable(dataset_of):
            try:
                dataset = dataset_of("train")
            except Exception:  # noqa: BLE001 - a datamodule without a train split: nothing to tell
                dataset = None
            if callable(getattr(dataset, "set_epoch", None)):
                dataset.set_epoch(int(entry["epoch"]) + 1)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for ds in _datasets(trainer.train_dataloader):
            if callable(getattr(ds, "set_epoch", None)):
                ds.set_epoch(trainer.current_epoch)


class LastEpochCheckpoint(ModelCheckpoint):
    """Writes ``last.ckpt`` at the end of every training epoch (after validation), the point a run resumes from.

    Lightning's ``save_last`` refreshes ``last.ckpt`` only when the same callback also saved a top-k checkpoint, so
    with a monitored metric that stopped improving it stays at the best epoch and a resume would redo the epochs
    since; this callback (monitor ``None``, top-1 under the fixed name ``last``) replaces it. The CLI adds it to every
    ``fit`` that checkpoints, after the configured callbacks (``ckpt_path: best`` still means theirs).
    """

    def __init__(self, dirpath: str | Path | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )


def ensure_last_checkpoint(trainer: Trainer) -> LastEpochCheckpoint | None:
    """Make ``fit`` leave a ``last.ckpt`` of the latest epoch (see :class:`LastEpochCheckpoint`) in the folder of the
    checkpoints without their own ``dirpath``; their ``save_last`` is turned off (it would write ``last-v1.ckpt``
    next to it). ``None`` when checkpointing is off (``trainer.enable_checkpointing: false``)."""
    callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
    if not callbacks:
        return None
    existing = next((cb for cb in callbacks if isinstance(cb, LastEpochCheckpoint)), None)
    if existing is not None:
        return existing
    for cb in callbacks:
        if cb.dirpath is None:
            cb.save_last = False
    last = LastEpochCheckpoint()
    trainer.callbacks.append(last)
    return last


# ---------------------------------------------------------------------------------------------------- lookup
def _load_meta(path: Path) -> dict[str, Any]:
    """The ``lightning_pose`` entry of a checkpoint (``{}`` when absent); one-line error when unreadable."""
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is reported with the file name
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot read the checkpoint ({detail})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (holds a {type(ckpt).__name__})")
    entry = ckpt.get(CHECKPOINT_KEY)
    return entry if isinstance(entry, dict) else {}


def read_run_identity(path: str | Path) -> RunIdentity | None:
    """The run a checkpoint belongs to: as recorded by :class:`ResumeState`, else from a
    ``<project>/<run id>/checkpoints/<file>`` location (``recorded=False``), else ``None``."""
    path = Path(path)
    run = _load_meta(path).get("run")
    if isinstance(run, dict):
        return RunIdentity(**{k: run.get(k) for k in ("run_id", "project", "name", "task")})
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return RunIdentity(
            run_id=path.parent.parent.name, project=path.parent.parent.parent.name or None, recorded=False
        )
    return None


def _last_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_file() and _LAST.match(p.name)]


def find_last_checkpoint(
    folders: list[Path], *, name: str | None, task: str | None, match_name: bool = True
) -> Path | None:
    """Newest ``last*.ckpt`` in ``folders`` whose recorded run has this ``name`` (when ``match_name``) and task."""
    files = sorted(
        {p for folder in folders for p in _last_files(folder)}, key=lambda p: p.stat().st_mtime, reverse=True
    )
    for path in files:
        try:
            identity = read_run_identity(path)
        except CheckpointError:
            continue  # e.g. a file being written or cut short: look at older runs
        if identity is None or not identity.recorded:
            continue
        if match_name and identity.name != name:
            continue
        if task is not None and identity.task is not None and identity.task != task:
            continue
        return path
    return None


def _search_folders(trainer: Trainer) -> tuple[list[Path], str]:
    """Checkpoint folders where this config's runs keep ``last.ckpt``, and a description for error messages."""
    folders: list[Path] = []
    described: list[str] = []
    callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
    for cb in callbacks:
        if cb.dirpath is not None:
            folders.append(Path(cb.dirpath))
            described.append(str(cb.dirpath))
    if not callbacks or any(cb.dirpath is None for cb in callbacks):
        if trainer.loggers:
            lg = trainer.loggers[0]
            root = Path(lg.save_dir or trainer.default_root_dir) / str(lg.name)
            folders.extend(sorted(p / "checkpoints" for p in root.glob("*") if p.is_dir()))
            described.append(f"{root}/*/checkpoints")
        else:
            folders.append(Path(trainer.default_root_dir) / "checkpoints")
            described.append(str(Path(trainer.default_root_dir) / "checkpoints"))
    return folders, ", ".join(described)


def resolve_checkpoint(trainer: Trainer, ckpt_path: Any, *, subcommand: str, task: str | None) -> Any:
    """Locate the checkpoint ``--ckpt_path`` means and, for ``fit``, make the W&B logger continue its run.

    Returns the checkpoint path for Lightning (``"best"``/``"hpc"``/``"registry:..."`` and ``None`` pass through).
    Raises :class:`CheckpointError` (one line) when there is nothing to resume or the file is missing/unreadable.
    Must run before the W&B run is created (the CLI calls it right after building the Trainer).
    """
    if ckpt_path is None or ckpt_path in _LIGHTNING_SPECIAL or str(ckpt_path).startswith("registry"):
        return ckpt_path
    logger = _wandb_logger(trainer)
    if ckpt_path == "last":
        folders, where = _search_folders(trainer)
        name = _configured_name(logger) if logger is not None else None
        path = find_last_checkpoint(folders, name=name, task=task, match_name=logger is not None)
        if path is None:
            hint = (
                ""
                if trainer.checkpoint_callbacks
                else "; checkpointing is off (trainer.enable_checkpointing: false), so runs leave no last.ckpt"
            )
            who = (
                "run" if logger is None else f"run named {name!r}" if name is not None else "run without a logger name"
            )
            short = task.rsplit(".", 1)[-1] if task else "task"
            raise CheckpointError(
                f"--ckpt_path last: nothing to resume: no last*.ckpt of a {short} {who} in {where}{hint} "
                f"(start the run without --ckpt_path, or give the checkpoint file)"
            )
    else:
        path = Path(str(ckpt_path)).expanduser()
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found (--ckpt_path)")
    if subcommand == "fit" and logger is not None:
        identity = read_run_identity(path)
        if identity is not None and identity.run_id and identity.project == str(logger.name):
            if hasattr(logger, "continue_run"):
                logger.continue_run(identity.run_id)
            else:  # a plain WandbLogger
                logger._id = logger._wandb_init["id"] = identity.run_id
            rank_zero_info(f"resuming W&B run {identity.run_id} of project {identity.project!r} from {path}")
        else:
            rank_zero_info(
                f"{path} is not from a W&B run of project {logger.name!r}: training continues from it in a new W&B run"
            )
    return str(path)

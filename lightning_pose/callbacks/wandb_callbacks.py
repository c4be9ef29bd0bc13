"""Callbacks that make runs comparable in W&B dashboards.

* :class:`WandbPoseCallback`: groups runs by method (``group``), tags them with dataset/backbone, adds ``method`` and
  ``dataset`` config keys, defines the summary of the headline metrics (``max`` of accuracies, ``min`` of losses),
  and logs a few validation crops with ground truth and predicted skeletons each epoch.
* :class:`RunConfigSaver`: the CLI's config callback; writes the fully resolved config next to the run's checkpoints
  (never over another run's file) and stores it in the W&B run config under ``cli``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_pose.data.drawing import denormalize_image, draw_pose

__all__ = ["WandbPoseCallback", "RunConfigSaver", "run_directory", "HEADLINE_METRICS"]

#: summary goals of the metrics dashboards compare methods on
HEADLINE_METRICS = {
    "val/loss": "min", "val/PCK@0.2": "max", "val/PCK@0.05": "max", "val/PCKh@0.5": "max", "val/PCKh@0.1": "max",
    "val/AP": "max", "val/AIC_score": "max",
}


def _wandb_loggers(trainer: Trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def _run_facts(trainer: Trainer | None, pl_module: LightningModule, datamodule: Any = None) -> dict[str, Any]:
    dm = datamodule if datamodule is not None else getattr(trainer, "datamodule", None)
    facts: dict[str, Any] = {"method": getattr(pl_module, "method_name", type(pl_module).__name__)}
    if dm is not None:
        facts["dataset"] = getattr(dm, "dataset_name", type(dm).__name__)
    net_args = getattr(pl_module, "_net_args", {}) or {}
    if "backbone" in net_args:
        facts["backbone"] = net_args["backbone"]
    return facts


def prepare_wandb(trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
    """Set group/job_type/tags on the trainer's W&B loggers before their run is created (idempotent)."""
    prepare_wandb_loggers(trainer.loggers, pl_module, getattr(trainer, "datamodule", None), stage)


def prepare_wandb_loggers(loggers: list, pl_module: LightningModule, datamodule: Any, stage: str) -> None:
    """Group by method, job type = stage, tags = dataset and backbone, on loggers whose run does not exist yet."""
    facts = _run_facts(None, pl_module, datamodule)
    for logger in loggers:
        if isinstance(logger, WandbLogger) and hasattr(logger, "set_defaults"):
            tags = [str(facts[k]) for k in ("dataset", "backbone") if k in facts]
            logger.set_defaults(group=str(facts["method"]), job_type=stage, tags=tags)


def run_directory(trainer: Trainer) -> Path:
    """The folder of this run's checkpoints/config: ``<save_dir>/<project>/<run id>`` for W&B, else ``log_dir``."""
    loggers = _wandb_loggers(trainer)
    if loggers:
        lg = loggers[0]
        return Path(lg.save_dir or ".") / str(lg.name) / str(lg.version)
    return Path(trainer.log_dir or trainer.default_root_dir)


class WandbPoseCallback(Callback):
    """Method-comparison metadata, headline-metric summaries and validation images for W&B runs.

    Args:
        num_images: validation crops drawn per epoch (0 disables image logging).
        log_every_n_epochs: draw images every this many epochs.
    """

    def __init__(self, num_images: int = 8, log_every_n_epochs: int = 1) -> None:
        self.num_images = int(num_images)
        self.log_every_n_epochs = max(1, int(log_every_n_epochs))
        self._samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        prepare_wandb(trainer, pl_module, stage)

    def _on_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for logger in _wandb_loggers(trainer):
            run = logger.experiment
            run.config.update(_run_facts(trainer, pl_module), allow_val_change=True)
            for key, goal in HEADLINE_METRICS.items():
                for split in ("val", "test"):
                    name = key.replace("val/", f"{split}/", 1)
                    # W&B reads "." in a metric name as nesting: escape it ("val/PCK@0.2")
                    run.define_metric(name.replace(".", "\\."), summary=goal)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_start(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_start(trainer, pl_module)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._samples = []

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if (trainer.sanity_checking or not trainer.is_global_zero or self.num_images <= 0
                or len(self._samples) >= self.num_images or not isinstance(outputs, dict)
                or "coords_input" not in outputs or not _wandb_loggers(trainer)
                or trainer.current_epoch % self.log_every_n_epochs):
            return
        take = min(self.num_images - len(self._samples), batch["image"].shape[0])
        images = batch["image"][:take].detach().float().cpu().numpy()
        gt = batch["keypoints"][:take].detach().float().cpu().numpy()
        pred = outputs["coords_input"][:take].detach().float().cpu().numpy()
        for i in range(take):
            self._samples.append((denormalize_image(images[i]), gt[i], pred[i]))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not self._samples:
            return
        kset = pl_module.keypoint_set
        panels, captions = [], []
        for image, gt, pred in self._samples:
            left = draw_pose(image, gt, kset, outline=(255, 255, 255))
            right = draw_pose(image, pred, kset, visible_only=False, outline=(255, 0, 0))
            both = np.concatenate([np.asarray(left), np.asarray(right)], axis=1)
            panels.append(both)
            captions.append("ground truth | prediction")
        for logger in _wandb_loggers(trainer):
            logger.log_image(key="val/examples", images=panels, caption=captions)
        self._samples = []


class RunConfigSaver(SaveConfigCallback):
    """Save the resolved CLI config per run, and push it to W&B under the ``cli`` config key.

    Lightning's default writes ``config.yaml`` to the logger's ``save_dir`` root, shared by every run; here it goes
    to :func:`run_directory` (unique per run). An existing file is never overwritten: a numbered name is used instead.

    When the CLI resumes a run (``fit --ckpt_path ...``, ``resuming`` set), the run folder already holds the run's
    ``config.yaml``: nothing is written when the resolved config is the same apart from ``ckpt_path``, else the new one
    goes to ``config.resume.yaml`` (``config.resume2.yaml``, ...) so the change stays on record. Files are written
    to a temporary name and renamed (never a truncated config).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["save_to_log_dir"] = False
        super().__init__(*args, **kwargs)
        self.saved_path: Path | None = None
        self._run_dir: Path | None = None
        #: set by the CLI when ``fit`` resumes from a checkpoint
        self.resuming = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # on every rank: without a W&B logger the folder comes from `trainer.log_dir`, a collective call
        prepare_wandb(trainer, pl_module, stage)
        if not _wandb_loggers(trainer):
            self._run_dir = run_directory(trainer)
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # rank 0 only (Lightning calls this hook there alone): no collective calls here
        out_dir = run_directory(trainer) if _wandb_loggers(trainer) else self._run_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        text = self.parser.dump(self.config, skip_none=False)
        path = out_dir / self.config_filename
        stem = Path(self.config_filename).stem
        if self.resuming and path.is_file() and _same_config(path, text):
            self.saved_path = path
        else:
            tag = "resume" if self.resuming else stage
            n = 1
            while path.exists():
                path = out_dir / f"{stem}.{tag}{'' if n == 1 else n}.yaml"
                n += 1
            _write_new_file(path, text)
            self.saved_path = path
        for logger in _wandb_loggers(trainer):
            cfg = json.loads(self.parser.dump(self.config, skip_none=False, format="json"))
            logger.experiment.config.update({"cli": cfg}, allow_val_change=True)


def _same_config(path: Path, text: str) -> bool:
    """Whether the config saved at ``path`` equals ``text`` apart from ``ckpt_path`` (what a resume command adds)."""
    import yaml

    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    new = yaml.safe_load(text)
    if not isinstance(saved, dict) or not isinstance(new, dict):
        return False
    saved.pop("ckpt_path", None)
    new.pop("ckpt_path", None)
    return saved == new


def _write_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename; refuses an existing file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        if path.exists():
            raise FileExistsError(f"{path}: exists, not overwritten")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

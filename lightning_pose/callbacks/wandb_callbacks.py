"""Callbacks that make runs comparable in W&B dashboards.

* :class:`WandbPoseCallback`: groups runs by method (``group``), tags them with dataset/backbone, names them after
  the actual settings, adds the comparison keys (``method``, ``dataset``, ``backbone``, ``input_size``, model cost)
  to the config of every job type, keeps the last **and** the best value of the headline metrics in the summary
  (``val/PCK@0.2`` = last epoch, ``best/val/PCK@0.2`` and ``best/epoch``), logs per-joint results and the
  PCK-vs-threshold curve as tables with charts, and validation images (crops and full images, worst cases too).
* :class:`RunConfigSaver`: the CLI's config callback; writes the fully resolved config next to the run's checkpoints
  (never over another run's file) and stores it in the W&B run config under ``cli``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from lightning_pose.callbacks.wandb_images import ValidationImages

__all__ = ["WandbPoseCallback", "RunConfigSaver", "run_directory", "run_name", "HEADLINE_METRICS", "primary_metric"]

#: goals of the metrics dashboards compare methods on (in order of preference for the primary metric)
HEADLINE_METRICS = {
    "val/AP": "max",
    "val/PCKh@0.5": "max",
    "val/AIC_score": "max",
    "val/PCK@0.2": "max",
    "val/PCKh@0.1": "max",
    "val/PCK@0.05": "max",
    "val/loss": "min",
}

#: the primary metric of each dataset (what `best/epoch` refers to; the demo configs select on PCK@0.2)
PRIMARY_METRIC = {"coco": "val/AP", "mpii": "val/PCKh@0.5", "aic": "val/AIC_score", "demo": "val/AP"}


def _wandb_loggers(trainer: Trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def _run_facts(trainer: Trainer | None, pl_module: LightningModule, datamodule: Any = None) -> dict[str, Any]:
    """The comparison keys of a run: method, dataset, backbone (when the network has one), input_size ``[W, H]``."""
    dm = datamodule if datamodule is not None else getattr(trainer, "datamodule", None)
    facts: dict[str, Any] = {"method": getattr(pl_module, "method_name", type(pl_module).__name__)}
    if dm is not None:
        facts["dataset"] = getattr(dm, "dataset_name", type(dm).__name__)
    backbone = getattr(pl_module, "backbone", None)  # PoseTask: the injected network's `backbone` argument
    if isinstance(backbone, str) and backbone:
        facts["backbone"] = backbone
    size = getattr(pl_module, "input_size", None)
    if size is not None:
        facts["input_size"] = [int(size[0]), int(size[1])]
    return facts


def run_name(facts: dict[str, Any]) -> str:
    """``<method>-<dataset>[-<backbone>]-<W>x<H>`` from the run's actual settings."""
    parts = [str(facts["method"])]
    for key in ("dataset", "backbone"):
        if key in facts:
            parts.append(str(facts[key]))
    if "input_size" in facts:
        parts.append("{}x{}".format(*facts["input_size"]))
    return "-".join(parts)


def primary_metric(dataset: str | None, available: dict[str, Any] | None = None) -> str:
    """The metric `best/epoch` refers to: the dataset's own, else the first headline metric in ``available``."""
    key = PRIMARY_METRIC.get(str(dataset or "").lower())
    if key and (available is None or key in available):
        return key
    for candidate in HEADLINE_METRICS:
        if available is None or candidate in available:
            return candidate
    return "val/loss"


def prepare_wandb(trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
    """Set group/job_type/tags/name on the trainer's W&B loggers before their run is created (idempotent)."""
    prepare_wandb_loggers(trainer.loggers, pl_module, getattr(trainer, "datamodule", None), stage)


def prepare_wandb_loggers(loggers: list, pl_module: LightningModule, datamodule: Any, stage: str) -> None:
    """Group by method, job type = stage, tags = dataset and backbone, name from the settings (unless one is
    configured; ``{method}``, ``{dataset}``, ``{backbone}``, ``{input_size}`` in it are filled in), on loggers whose
    run does not exist yet."""
    facts = _run_facts(None, pl_module, datamodule)
    for logger in loggers:
        if isinstance(logger, WandbLogger) and hasattr(logger, "set_defaults"):
            tags = [str(facts[k]) for k in ("dataset", "backbone") if k in facts]
            logger.set_defaults(
                group=str(facts["method"]), job_type=stage, tags=tags, name=run_name(facts), fields=_name_fields(facts)
            )


def _name_fields(facts: dict[str, Any]) -> dict[str, str]:
    size = facts.get("input_size")
    return {
        "method": str(facts.get("method", "")),
        "dataset": str(facts.get("dataset", "")),
        "backbone": str(facts.get("backbone", "")),
        "input_size": f"{size[0]}x{size[1]}" if size else "",
    }


def run_directory(trainer: Trainer) -> Path:
    """The folder of this run's checkpoints/config: ``<save_dir>/<project>/<run id>`` for W&B, else ``log_dir``."""
    loggers = _wandb_loggers(trainer)
    if loggers:
        lg = loggers[0]
        return Path(lg.save_dir or ".") / str(lg.name) / str(lg.version)
    return Path(trainer.log_dir or trainer.default_root_dir)


class WandbPoseCallback(Callback):
    """Comparison metadata, model cost, last/best summaries, per-joint tables and validation images for W&B runs.

    Args:
        num_images: validation crops (and their full images) drawn per epoch (0 disables image logging).
        num_worst: the validation samples with the largest keypoint error drawn per epoch (0 disables).
        log_every_n_epochs: draw images every this many epochs.
        measure_speed: time the inference (images/s) at the end of each job; off for reproducible summaries.
    """

    def __init__(
        self, num_images: int = 8, num_worst: int = 4, log_every_n_epochs: int = 1, measure_speed: bool = True
    ) -> None:
        self.num_images = int(num_images)
        self.num_worst = int(num_worst)
        self.log_every_n_epochs = max(1, int(log_every_n_epochs))
        self.measure_speed = bool(measure_speed)
        self._images = ValidationImages(self.num_images, self.num_worst)
        self._started = False
        self._best: dict[str, tuple[float, int]] = {}
        self._fit_start: float | None = None

    # ------------------------------------------------------------------ run start: config keys
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        prepare_wandb(trainer, pl_module, stage)
        self._started = False
        self._best = {}

    def _on_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._started or not trainer.is_global_zero:
            return
        self._started = True
        loggers = _wandb_loggers(trainer)
        if not loggers:
            return
        from lightning_pose.callbacks.model_cost import count_parameters, forward_gflops

        facts = _run_facts(trainer, pl_module)
        facts["params"] = count_parameters(pl_module)
        try:
            facts["gflops"] = round(forward_gflops(pl_module, tuple(pl_module.input_size)), 4)
        except Exception as exc:  # an exotic layer the counter cannot trace must not stop training
            facts["gflops"] = None
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(f"GFLOPs not counted ({type(exc).__name__}: {exc})")
        for logger in loggers:
            run = logger.experiment
            run.config.update(facts, allow_val_change=True)
            run.summary["cost/params"] = facts["params"]
            if facts["gflops"] is not None:
                run.summary["cost/gflops"] = facts["gflops"]

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_start = time.monotonic()
        self._on_start(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_start(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_start(trainer, pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._on_start(trainer, pl_module)

    # ------------------------------------------------------------------ validation images
    def _drawing(self, trainer: Trainer) -> bool:
        return (
            not trainer.sanity_checking
            and trainer.is_global_zero
            and bool(_wandb_loggers(trainer))
            and trainer.current_epoch % self.log_every_n_epochs == 0
        )

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._images.reset()

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._drawing(trainer) and isinstance(outputs, dict) and "coords_input" in outputs:
            self._images.add_batch(batch, outputs)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not self._images.has_samples:
            return
        dataset = None
        dm = getattr(trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "dataset"):
            try:
                dataset = dm.dataset("val")
            except Exception:  # a datamodule without a val dataset object: crops only
                dataset = None
        logged = self._images.render(pl_module.keypoint_set, dataset)
        for logger in _wandb_loggers(trainer):
            for key, (panels, captions) in logged.items():
                logger.log_image(key=key, images=panels, caption=captions)
        self._images.reset()

    # ------------------------------------------------------------------ summaries: last and best
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # after the module's on_validation_epoch_end, which computed the exact metrics
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        values = getattr(pl_module, "final_metrics", {}).get("val", {})
        if not values:
            return
        for key, goal in HEADLINE_METRICS.items():
            if key not in values:
                continue
            v = float(values[key])
            old = self._best.get(key)
            if old is None or (v > old[0] if goal == "max" else v < old[0]):
                self._best[key] = (v, int(trainer.current_epoch))
        primary = primary_metric(_run_facts(trainer, pl_module).get("dataset"), self._best)
        for logger in _wandb_loggers(trainer):
            run = logger.experiment
            for key, (v, _epoch) in self._best.items():
                run.summary[f"best/{key}"] = v
            if primary in self._best:
                run.summary["best/metric"] = primary
                run.summary["best/epoch"] = self._best[primary][1]
        if trainer.state.fn == "validate":
            self._finish(trainer, pl_module, "val")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            self._finish(trainer, pl_module, "test")

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self._fit_start is not None:
            for logger in _wandb_loggers(trainer):
                logger.experiment.summary["time/fit_s"] = round(time.monotonic() - self._fit_start, 2)
        self._finish(trainer, pl_module, "val")

    def _finish(self, trainer: Trainer, pl_module: LightningModule, split: str) -> None:
        """End of a job: per-joint table and PCK curve of the last evaluation, measured inference speed."""
        loggers = _wandb_loggers(trainer)
        if not loggers:
            return
        from lightning_pose.callbacks.wandb_tables import log_result_tables

        values = getattr(pl_module, "final_metrics", {}).get(split, {})
        speed = None
        if self.measure_speed and hasattr(pl_module, "predict_keypoints"):
            from lightning_pose.callbacks.model_cost import inference_images_per_second

            speed = inference_images_per_second(pl_module, tuple(pl_module.input_size))
        for logger in loggers:
            run = logger.experiment
            if values:
                log_result_tables(run, values, pl_module.keypoint_set, split)
            if speed is not None:
                run.summary["cost/images_per_s"] = round(speed, 2)


class RunConfigSaver(SaveConfigCallback):
    """Save the resolved CLI config per run, and push it to W&B under the ``cli`` config key.

    Lightning's default writes ``config.yaml`` to the logger's ``save_dir`` root, shared by every run; here it goes
    to :func:`run_directory` (unique per run). An existing file is never overwritten: a numbered name is used instead.

    A ``validate``/``test``/``predict`` job without any logger (``--trainer.logger false``) writes no config: it has
    no run folder (its ``log_dir`` would be the current directory, typically the user's project root), and nothing
    else of such a job is saved. ``fit`` without a logger saves it beside its ``checkpoints/`` folder, as Lightning.

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
        if stage != "fit" and not trainer.loggers:
            return
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

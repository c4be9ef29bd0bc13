"""W&B logging that works without an account: offline unless credentials are configured.

:class:`PoseWandbLogger` is Lightning's ``WandbLogger`` with one more argument, ``mode``:

* ``"auto"`` (default): respect ``WANDB_MODE`` when it is set; otherwise log online when a W&B API key is configured
  (``WANDB_API_KEY`` or an entry for the W&B host in ``~/.netrc``, as ``wandb login`` writes), else **offline**, and say
  how to upload the run afterwards (``wandb sync <dir>``).
* ``"online"``, ``"offline"``, ``"disabled"``: forced.

Resuming (``lightning-pose fit --ckpt_path last``): the CLI calls :meth:`PoseWandbLogger.continue_run` with the run id of
the checkpoint before the W&B run is created, so the same run continues (``resume="allow"`` by default: W&B appends to
the run when its server knows it, else creates it with that id; set ``resume: must`` in the logger's ``init_args`` to
require an existing run) and checkpoints keep going to the run's folder ``<save_dir>/<project>/<run id>/``. Offline,
every resumed segment is a new ``offline-run-<time>-<run id>`` folder with the same id; ``wandb sync`` uploads them in
order of start time into the one run. Plot against ``trainer/global_step`` (Lightning's step metric) so that the
segments line up.

Runs are grouped for method comparison: ``group`` defaults to the method, ``job_type`` to the CLI subcommand, and the
task adds ``method``/``dataset`` config keys and tags (see :class:`~lightning_pose.callbacks.wandb_callbacks.WandbPoseCallback`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from lightning_pose.wandb_mode import resolve_wandb_mode, wandb_credentials_configured

__all__ = ["PoseWandbLogger", "wandb_credentials_configured", "resolve_wandb_mode", "COMPARISON_KEYS"]

#: hyper-parameters logged at the root of the W&B config (what dashboards group, filter and plot by)
COMPARISON_KEYS = (
    "method",
    "backbone",
    "input_size",
    "num_keypoints",
    "batch_size",
    "sigma",
    "flip_test",
    "warmup_steps",
)


class PoseWandbLogger(WandbLogger):
    """``WandbLogger`` that falls back to offline logging when no W&B account is configured.

    Args:
        project: W&B project (default ``lightning-pose``).
        save_dir: where the ``wandb/`` run folders and checkpoints go (default ``runs``).
        mode: ``auto`` | ``online`` | ``offline`` | ``disabled`` (see module docstring).
        group: W&B group; default: the method name, set by the pose callback at fit start when left empty.
        job_type: W&B job type; default: the Lightning stage (``fit``, ``validate``, ``test``).
        tags: extra tags (dataset and backbone are added automatically).
        name: run display name; entity: W&B entity (team/user); notes: run notes.
        log_model: upload checkpoints as W&B artifacts (``True`` at the end of fit, ``"all"`` every checkpoint).
        **kwargs: passed to :class:`lightning.pytorch.loggers.WandbLogger` (``name``, ``log_model``, ``entity``...).
    """

    def __init__(
        self,
        project: str = "lightning-pose",
        save_dir: str = "runs",
        mode: Literal["auto", "online", "offline", "disabled"] = "auto",
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        entity: str | None = None,
        notes: str | None = None,
        log_model: bool | Literal["all"] = False,
        **kwargs: Any,
    ) -> None:
        self.resolved_mode = resolve_wandb_mode(mode)
        # absolute: W&B resolves a relative folder once per process, so a later run started from another working
        # directory (notebook, sweep agent) would otherwise write into the first run's folder
        save_dir = str(Path(save_dir).expanduser().resolve())
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        init_kwargs = dict(kwargs, name=name, log_model=log_model)
        if entity is not None:
            init_kwargs["entity"] = entity
        if notes is not None:
            init_kwargs["notes"] = notes
        init_kwargs.setdefault("mode", self.resolved_mode)
        if group is not None:
            init_kwargs["group"] = group
        if job_type is not None:
            init_kwargs["job_type"] = job_type
        init_kwargs["tags"] = list(tags or [])
        super().__init__(project=project, save_dir=save_dir, **init_kwargs)
        if self._wandb_init.get("anonymous") is None:
            # W&B >= 0.19 warns on every run that the setting has no effect, even when it is None
            self._wandb_init.pop("anonymous", None)
        if self.resolved_mode == "offline" and mode == "auto" and not os.environ.get("WANDB_MODE"):
            rank_zero_info(
                "W&B: no account configured (no WANDB_API_KEY, no `wandb login`): logging offline to "
                f"{Path(save_dir) / 'wandb'}. Upload later with `wandb sync {Path(save_dir) / 'wandb'}/offline-run-*`."
            )

    def set_defaults(
        self,
        *,
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        """Fill group/job_type/tags/name before the run is created (no effect once it exists).

        ``name`` is used when none is configured; a configured name may hold ``{method}``, ``{dataset}``,
        ``{backbone}`` and ``{input_size}``, filled in from ``fields`` (the run's actual settings).
        """
        if self._experiment is not None:
            return
        if group and not self._wandb_init.get("group"):
            self._wandb_init["group"] = group
        if job_type and not self._wandb_init.get("job_type"):
            self._wandb_init["job_type"] = job_type
        if tags:
            current = list(self._wandb_init.get("tags") or [])
            self._wandb_init["tags"] = current + [t for t in tags if t not in current]
        configured = self._wandb_init.get("name")
        if configured and fields and "{" in str(configured):
            try:
                self._wandb_init["name"] = str(configured).format(**fields)
            except (KeyError, IndexError, ValueError):
                pass  # a literal brace in a user's name: keep it as written
        elif not configured and name:
            self._wandb_init["name"] = name

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Scalars as usual, except per-joint values (``val/PCK@0.05/nose``): those are logged once per job as a
        table with a bar chart (``val/per_joint``) by the pose callback instead of K scalars per epoch."""
        from lightning_pose.callbacks.wandb_tables import is_per_joint_key

        super().log_metrics({k: v for k, v in metrics.items() if not is_per_joint_key(k)}, step)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Log the comparison keys at the config root; the rest of the hyper-parameters only when the full CLI
        config (``cli``) is not logged, and then nested under ``hparams`` (never 40+ flat duplicates)."""
        from lightning.fabric.utilities.logger import _convert_params, _sanitize_callable_params

        flat = _sanitize_callable_params(_convert_params(params))
        flat.pop("_instantiator", None)
        keep = {k: flat[k] for k in COMPARISON_KEYS if k in flat}
        opt = flat.get("optimizer_config")
        if isinstance(opt, dict):
            keep["optimizer"] = str(opt.get("class_path", "")).rsplit(".", 1)[-1]
            if "lr" in (opt.get("init_args") or {}):
                keep["lr"] = opt["init_args"]["lr"]
        sched = flat.get("scheduler_config")
        keep["scheduler"] = str(sched.get("class_path", "")).rsplit(".", 1)[-1] if isinstance(sched, dict) else None
        if "cli" not in dict(self.experiment.config):
            keep["hparams"] = {k: v for k, v in flat.items() if k not in keep}
        self.experiment.config.update(keep, allow_val_change=True)

    def continue_run(self, run_id: str, resume: str | None = None) -> None:
        """Make this logger continue the W&B run ``run_id`` instead of starting a new one.

        Must be called before the run is created (before anything reads ``experiment``). ``resume`` is W&B's
        ``resume`` mode; default: the configured one, else ``"allow"`` (continue the run, or create it with this id).
        """
        if self._experiment is not None:
            if self._experiment.id == run_id:
                return
            raise RuntimeError(f"W&B run {self._experiment.id} already started; cannot continue run {run_id}")
        self._id = run_id
        self._wandb_init["id"] = run_id
        self._continued = True
        if resume is not None or not self._wandb_init.get("resume"):
            self._wandb_init["resume"] = resume or "allow"

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self.resolved_mode == "offline" and self._experiment is not None:
            run_dir = getattr(self._experiment, "dir", None)
            if run_dir and getattr(self, "_continued", False):
                segments = Path(run_dir).parent.parent / f"offline-run-*-{self._experiment.id}"
                rank_zero_info(
                    f"W&B offline run {self._experiment.id} continued; upload all its segments with: "
                    f"wandb sync {segments}"
                )
            # (a fresh offline run's sync command is printed by the console's final summary)

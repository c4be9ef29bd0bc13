"""The ``lightning-pose`` command.

* ``lightning-pose fit|validate|test|predict --config FILE [--key value ...]``: Lightning's ``LightningCLI`` with the
  model and datamodule chosen by ``class_path``; the datamodule's keypoint set and input size are linked into the
  model (a config never states them twice); ``--print_config`` prints the resolved config; the resolved config is
  saved with every run. ``validate``/``test`` accept ``--results PATH`` to write the final metrics as one flat JSON
  object (keys as logged, e.g. ``val/PCKh@0.5``).
* ``lightning-pose evaluate {coco,mpii,aic} ...``: the standalone evaluator (no torch import).
* ``lightning-pose data check|show ...``: dataset checks and augmented-sample previews.
* ``lightning-pose compare|dashboard|sweep ...``: method comparison (:mod:`lightning_pose.compare`, no torch import);
  ``--version``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

__all__ = ["main", "run_lightning"]

_USAGE = """usage: lightning-pose {fit,validate,test,predict} --config FILE|NAME [--key value ...]
       lightning-pose predict --ckpt_path CKPT --source IMAGE|FOLDER|GLOB|VIDEO [--out DIR] [--boxes FILE|image]
       lightning-pose export --ckpt_path CKPT --format {torchscript,onnx} --out FILE
       lightning-pose evaluate {coco,mpii,aic} --gt GT --pred PRED [--json OUT]
       lightning-pose data check {coco,mpii,aic,aic-raw} --ann FILE --images DIR [--json OUT]
       lightning-pose data show {coco,mpii,aic,aic-raw,demo} --ann FILE --images DIR --out DIR
       lightning-pose compare RUN_OR_RESULTS ... [--project ENTITY/PROJECT] --out DIR [--by method|run]
       lightning-pose dashboard --project ENTITY/PROJECT [--dry-run FILE]
       lightning-pose sweep SWEEP.yaml --local --count N [--out DIR] [-- EXTRA CLI ARGS]
       lightning-pose --version

Train, evaluate and compare 2D human pose estimation methods (PyTorch Lightning + Weights & Biases).
Run `lightning-pose fit --help` for the training options of a subcommand."""


#: torch-free subcommands: name -> module with ``main(argv) -> int``
_COMMANDS = {
    "compare": "lightning_pose.compare.cli",
    "dashboard": "lightning_pose.compare.dashboard",
    "sweep": "lightning_pose.compare.sweep",
}


def _exit(code: int | None) -> None:
    if code:
        raise SystemExit(int(code))


def main(args: list[str] | None = None) -> None:
    """Console entry point. Returns None (a returned object would become the process exit status)."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE)
        _exit(0 if argv else 2)
        return
    if argv[0] == "--version":
        from lightning_pose.compare.version import version_line

        print(version_line())
        return
    if argv[0] in _COMMANDS:
        import importlib

        module = importlib.import_module(_COMMANDS[argv[0]])
        _exit(module.main(argv[1:]))
        return
    if argv[0] == "evaluate":
        from lightning_pose.evaluation.cli import main as evaluate_main

        _exit(evaluate_main(argv[1:]))
        return
    if argv[0] == "data":
        sub = argv[1] if len(argv) > 1 else ""
        if sub == "check":
            from lightning_pose.data.check import main as check_main

            _exit(check_main(argv[2:]))
        elif sub == "show":
            from lightning_pose.data.show import main as show_main

            _exit(show_main(argv[2:]))
        else:
            print(
                "usage: lightning-pose data {check,show} ...  (see `lightning-pose data check --help`)", file=sys.stderr
            )
            _exit(2)
        return
    from lightning_pose.errors import PoseUserError

    try:
        if argv[0] in ("predict", "export") and (
            argv[0] == "export" or any(a == "--source" or a.startswith("--source=") for a in argv[1:])
        ):
            # using a trained model from its checkpoint alone (lightning_pose/inference, lightning_pose/export.py)
            if argv[0] == "export":
                from lightning_pose.export import main as export_main

                _exit(export_main(argv[1:]))
            else:
                from lightning_pose.inference.cli import main as predict_main

                _exit(predict_main(argv[1:]))
            return
        from lightning_pose.config_paths import resolve_config_args

        argv = resolve_config_args(argv)  # `--config quickstart`: the packaged config of that name
        if args is None:
            sys.argv[1:] = argv
        # from the console, let LightningCLI read sys.argv itself (passing a copy as well makes it warn)
        run_lightning(None if args is None else argv)
    except Exception as exc:
        # bad input is reported as one clear line (the message names the file/option and the problem); jsonargparse
        # wraps errors raised in constructors ("Does not validate against any of the Union subtypes"), so the
        # user error is looked for along the exception chain
        user_error = _find_user_error(exc, PoseUserError)
        if user_error is None:
            raise
        print(f"lightning-pose: error: {user_error}", file=sys.stderr)
        _exit(2)


def _find_user_error(exc: BaseException, kind: type) -> BaseException | None:
    """``exc`` or the first exception of type ``kind`` among its causes / contexts (``None`` when there is none)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def run_lightning(argv: list[str] | None, run: bool = True) -> Any:
    """Run the LightningCLI part with ``argv`` (``["fit", "--config", ...]``; ``None`` = ``sys.argv[1:]``);
    returns the CLI object."""
    import os

    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    from lightning_pose.callbacks.console import quiet_console

    quiet_console()
    cli_class = _build_cli_class()
    return cli_class(argv, run=run)


#: jsonargparse parser mode of the CLI: YAML without the ``__base__`` key (:mod:`lightning_pose.config_paths`)
_CONFIG_MODE = "lightning_pose_yaml"


def _build_cli_class() -> type:
    import yaml
    from jsonargparse import set_loader
    from lightning.pytorch.cli import LightningCLI

    from lightning_pose.config_paths import load_yaml_without_base

    set_loader(_CONFIG_MODE, load_yaml_without_base, exceptions=(yaml.YAMLError,))

    import lightning_pose.data.datamodules  # noqa: F401  (registers the datamodule classes for class_path)
    import lightning_pose.tasks  # noqa: F401  (registers the task classes)
    from lightning_pose.callbacks.wandb_callbacks import RunConfigSaver
    from lightning_pose.data.datamodules import PoseDataModule
    from lightning_pose.tasks.base import PoseTask
    from lightning_pose.trainer import PoseTrainer

    class PoseCLI(LightningCLI):
        """LightningCLI with the pose links, ``--results`` and per-run config saving."""

        def __init__(self, argv: list[str] | None, run: bool = True) -> None:
            argv = _checked_args(argv)
            super().__init__(
                PoseTask,
                PoseDataModule,
                # integers in --trainer.limit_*_batches mean batches (Lightning's own types read 1 as 1.0 = 100 %)
                trainer_class=PoseTrainer,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=RunConfigSaver,
                trainer_defaults={
                    "logger": {"class_path": "lightning_pose.callbacks.wandb_logger.PoseWandbLogger"},
                },
                parser_kwargs={"default_env": False, "parser_mode": _CONFIG_MODE},
                auto_configure_optimizers=False,
                # the config (not hparams stored in a checkpoint) defines the model; --ckpt_path loads weights
                load_from_checkpoint_support=False,
                args=argv,
                run=run,
            )

        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.link_arguments("data.keypoint_set", "model.init_args.keypoint_set", apply_on="instantiate")
            parser.link_arguments("data.input_size", "model.init_args.input_size", apply_on="instantiate")
            parser.add_argument(
                "--results",
                type=str | None,
                default=None,
                help="validate/test: write the final metrics as one flat JSON object to this file; "
                "predict: write the predictions there in the COCO results format",
            )

        def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> Any:
            kwargs.setdefault("parser_mode", _CONFIG_MODE)  # config files may carry `__base__:`
            parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
            if subcommand in ("validate", "test"):  # the compact table of EpochSummary replaces Lightning's
                parser.set_defaults(verbose=False)
            return parser

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand] if self.subcommand else self.config
            check_task_data_mode(config)

        def _parse_ckpt_path(self) -> None:
            """The config defines the model; ``--ckpt_path`` only loads weights (the hparams stored in our
            checkpoints hold W&B-facing extras such as ``optimizer_config`` that are not constructor options)."""

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            # read and check the data the command needs before the trainer (and so the W&B run) exists
            stage = self.subcommand
            if stage in ("fit", "validate", "test", "predict") and isinstance(self.datamodule, PoseDataModule):
                self.datamodule.check_inputs(stage)
            trainer = super().instantiate_trainer(**kwargs)
            from lightning_pose.callbacks.baseline import ConstantBaseline
            from lightning_pose.callbacks.console import EpochSummary
            from lightning_pose.callbacks.swap_rate import SwapRateMonitor
            from lightning_pose.callbacks.validation_schedule import ValidateLastEpoch
            from lightning_pose.callbacks.wandb_callbacks import WandbPoseCallback, prepare_wandb_loggers

            # group/job_type/tags must be set before anything creates the W&B run
            prepare_wandb_loggers(trainer.loggers, self.model, self.datamodule, self.subcommand or "fit")

            # every run gets the method-comparison metadata, the constant-predictor baseline next to its
            # metrics and a validation after its last epoch, even when a config lists its own callbacks
            for kind in (WandbPoseCallback, EpochSummary, ConstantBaseline, SwapRateMonitor, ValidateLastEpoch):
                if not any(isinstance(cb, kind) for cb in trainer.callbacks):
                    trainer.callbacks.append(kind())
            self._prepare_resume(trainer)
            return trainer

        def _prepare_resume(self, trainer: Any) -> None:
            """``fit`` leaves resumable checkpoints (``last.ckpt`` + random states); ``--ckpt_path last|PATH`` is
            located here, before the W&B run exists, so that ``fit`` continues the checkpoint's run and folder
            (see :mod:`lightning_pose.callbacks.resume`)."""
            from lightning_pose.callbacks.resume import (
                ResumeState,
                ensure_last_checkpoint,
                resolve_checkpoint,
                task_name,
            )

            if not self.subcommand:
                return
            # on every subcommand, so that validate/test find the checkpoint state of the callback they were made with
            ensure_last_checkpoint(trainer)
            if self.subcommand == "fit" and not any(isinstance(cb, ResumeState) for cb in trainer.callbacks):
                trainer.callbacks.insert(0, ResumeState())  # first: sets the epoch before other callbacks run
            config = self.config_init[self.subcommand]
            requested = config.get("ckpt_path")
            config["ckpt_path"] = resolve_checkpoint(
                trainer, requested, subcommand=self.subcommand, task=task_name(self.model)
            )
            if self.subcommand == "fit" and config["ckpt_path"] is not None:
                for cb in trainer.callbacks:
                    if isinstance(cb, RunConfigSaver):
                        cb.resuming = True

        def _results_inputs(self) -> list:
            cfg = self.config[self.subcommand]
            from lightning_pose.outputs import paths_in_config

            return (
                [("--ckpt_path", cfg.get("ckpt_path"))]
                + paths_in_config(cfg.get("config"), "--config")
                + paths_in_config(cfg.get("data"), "data")
            )

        def _check_results_path(self) -> None:
            """Refuse a bad ``--results`` path BEFORE the run (an input, a user's file, an unwritable folder)."""
            path = self.config[self.subcommand].get("results")
            if path and self.trainer.is_global_zero:
                from lightning_pose.outputs import check_tool_file

                check_tool_file(path, inputs=self._results_inputs(), option="--results")

        def before_validate(self) -> None:
            self._check_results_path()

        def before_test(self) -> None:
            self._check_results_path()

        def before_predict(self) -> None:
            self._check_results_path()

        def _write_results(self) -> None:
            path = self.config[self.subcommand].get("results")
            if not path:
                return
            metrics = {k: _to_float(v) for k, v in self.trainer.callback_metrics.items()}
            # logged values went through float32; the task keeps the exact float64 ones
            for values in getattr(self.model, "final_metrics", {}).values():
                metrics.update({k: _to_float(v) for k, v in values.items()})
            if not self.trainer.is_global_zero:
                return
            from lightning_pose.outputs import atomic_write_json, write_tool_file

            # never over an input (checkpoint, config, data files) nor a file we did not write; atomic
            out = write_tool_file(
                path,
                lambda p: atomic_write_json(p, dict(sorted(metrics.items()))),
                inputs=self._results_inputs(),
                option="--results",
            )
            print(f"metrics written to {out}")

        def _after_run(self) -> None:
            self._write_results()
            # close the W&B run so that a later command in the same process (notebook, sweep agent, tests)
            # starts its own run instead of silently reusing this one
            from lightning.pytorch.loggers import WandbLogger

            for logger in self.trainer.loggers:
                if isinstance(logger, WandbLogger) and logger._experiment is not None:
                    logger.experiment.finish()

        def after_validate(self) -> None:
            self._after_run()

        def after_test(self) -> None:
            self._after_run()

        def after_fit(self) -> None:
            self._after_run()

        def after_predict(self) -> None:
            path = self.config[self.subcommand].get("results")
            if path and self.trainer.is_global_zero:
                from lightning_pose.evaluation.formats import write_coco_results
                from lightning_pose.metrics.export import predictions_to_coco_results

                batches = self.trainer.predict_loop.predictions or []
                if batches and isinstance(batches[0], list):  # several dataloaders
                    batches = [b for loader in batches for b in loader]
                results = predictions_to_coco_results(batches)
                from lightning_pose.outputs import paths_in_config, write_tool_file

                cfg = self.config[self.subcommand]
                inputs = (
                    [("--ckpt_path", cfg.get("ckpt_path"))]
                    + paths_in_config(cfg.get("config"), "--config")
                    + paths_in_config(cfg.get("data"), "data")
                )
                write_tool_file(path, lambda p: write_coco_results(p, results), inputs=inputs, option="--results")
                print(f"{len(results)} predictions (COCO results format, image pixels) written to {path}")

    return PoseCLI


def _checked_args(argv: list[str] | None) -> list[str] | None:
    """Sweep ``None`` values -> ``null`` and the ``--config`` order check (:mod:`lightning_pose.cli_args`).
    ``sys.argv`` is rewritten in place when it is the source, so LightningCLI still reads it itself."""
    from lightning_pose.cli_args import prepare_cli_args
    from lightning_pose.config_paths import expand_config_args

    # the order check reads each file merged over its bases; then the `__base__:` files go on the command line
    if argv is not None:
        return expand_config_args(prepare_cli_args(list(argv)))
    fixed = expand_config_args(prepare_cli_args(sys.argv[1:]))
    if fixed != sys.argv[1:]:
        sys.argv[1:] = fixed
    return None


def check_task_data_mode(config: Any) -> None:
    """Refuse a bottom-up task (``is_bottomup = True``) with top-down data, or the reverse (``ConfigError``).

    ``config`` is the parsed config of a subcommand (``model`` / ``data`` with ``class_path`` and ``init_args``).
    """
    import importlib

    from lightning_pose.errors import ConfigError

    def get(node: Any, key: str) -> Any:
        if node is None:
            return None
        return node.get(key) if hasattr(node, "get") else getattr(node, key, None)

    model, data = get(config, "model"), get(config, "data")
    model_path, data_args = get(model, "class_path"), get(data, "init_args")
    if not isinstance(model_path, str) or data_args is None:
        return
    module, _, name = model_path.rpartition(".")
    try:
        task_class = getattr(importlib.import_module(module or "lightning_pose.tasks"), name)
    except (ImportError, AttributeError):
        return
    bottomup = bool(getattr(task_class, "is_bottomup", False))
    mode = get(data_args, "mode") or "topdown"
    if bottomup and mode != "bottomup":
        raise ConfigError(
            f"model {name} is a bottom-up method but data.init_args.mode is {mode!r}; set data.init_args.mode: bottomup"
        )
    if not bottomup and mode == "bottomup":
        raise ConfigError(
            f"model {name} is a top-down method but data.init_args.mode is 'bottomup'; "
            "use mode: topdown or a bottom-up task (AssociativeEmbeddingTask)"
        )


def _to_float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


if __name__ == "__main__":  # pragma: no cover
    main()

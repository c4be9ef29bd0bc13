"""The ``lightning-pose`` command.

* ``lightning-pose fit|validate|test|predict --config FILE [--key value ...]``: Lightning's ``LightningCLI`` with the
  model and datamodule chosen by ``class_path``; the datamodule's keypoint set and input size are linked into the
  model (a config never states them twice); ``--print_config`` prints the resolved config; the resolved config is
  saved with every run. ``validate``/``test`` accept ``--results PATH`` to write the final metrics as one flat JSON
  object (keys as logged, e.g. ``val/PCKh@0.5``).
* ``lightning-pose evaluate {coco,mpii,aic} ...``: the standalone evaluator (no torch import).
* ``lightning-pose data check|show ...``: dataset checks and augmented-sample previews.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "run_lightning"]

_USAGE = """usage: lightning-pose {fit,validate,test,predict} --config FILE [--key value ...]
       lightning-pose evaluate {coco,mpii,aic} --gt GT --pred PRED [--json OUT]
       lightning-pose data check {coco,mpii,aic,aic-raw} --ann FILE --images DIR [--json OUT]
       lightning-pose data show {coco,mpii,aic,aic-raw,demo} --ann FILE --images DIR --out DIR

Train, evaluate and compare 2D human pose estimation methods (PyTorch Lightning + Weights & Biases).
Run `lightning-pose fit --help` for the training options of a subcommand."""


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
            print("usage: lightning-pose data {check,show} ...  (see `lightning-pose data check --help`)", file=sys.stderr)
            _exit(2)
        return
    from lightning_pose.errors import PoseUserError

    try:
        # from the console, let LightningCLI read sys.argv itself (passing a copy as well makes it warn)
        run_lightning(None if args is None else argv)
    except PoseUserError as exc:
        # bad input is reported as one clear line (the message names the file/option and the problem)
        print(f"lightning-pose: error: {exc}", file=sys.stderr)
        _exit(2)


def run_lightning(argv: list[str] | None, run: bool = True) -> Any:
    """Run the LightningCLI part with ``argv`` (``["fit", "--config", ...]``; ``None`` = ``sys.argv[1:]``);
    returns the CLI object."""
    import os

    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    cli_class = _build_cli_class()
    return cli_class(argv, run=run)


def _build_cli_class() -> type:
    from lightning.pytorch.cli import LightningCLI

    import lightning_pose.data.datamodules  # noqa: F401  (registers the datamodule classes for class_path)
    import lightning_pose.tasks  # noqa: F401  (registers the task classes)
    from lightning_pose.callbacks.wandb_callbacks import RunConfigSaver
    from lightning_pose.data.datamodules import PoseDataModule
    from lightning_pose.tasks.base import PoseTask

    class PoseCLI(LightningCLI):
        """LightningCLI with the pose links, ``--results`` and per-run config saving."""

        def __init__(self, argv: list[str] | None, run: bool = True) -> None:
            super().__init__(
                PoseTask,
                PoseDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=RunConfigSaver,
                trainer_defaults={
                    "logger": {"class_path": "lightning_pose.callbacks.wandb_logger.PoseWandbLogger"},
                },
                parser_kwargs={"default_env": False},
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
                "--results", type=str | None, default=None,
                help="validate/test: write the final metrics as one flat JSON object to this file; "
                     "predict: write the predictions there in the COCO results format",
            )

        def _parse_ckpt_path(self) -> None:
            """The config defines the model; ``--ckpt_path`` only loads weights (the hparams stored in our
            checkpoints hold W&B-facing extras such as ``optimizer_config`` that are not constructor options)."""

        def instantiate_trainer(self, **kwargs: Any) -> Any:
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
            return trainer

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
            out = Path(path)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")
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
                from lightning_pose.tasks.evaluation import predictions_to_coco_results

                batches = self.trainer.predict_loop.predictions or []
                if batches and isinstance(batches[0], list):  # several dataloaders
                    batches = [b for loader in batches for b in loader]
                results = predictions_to_coco_results(batches)
                write_coco_results(path, results)
                print(f"{len(results)} predictions (COCO results format, image pixels) written to {path}")

    return PoseCLI


def _to_float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


if __name__ == "__main__":  # pragma: no cover
    main()

"""The shared LightningModule of every top-down method.

A method (``SimpleBaselineTask``, ``StackedHourglassTask``, ``DeepPoseTask``...) only says how to build its network,
how to compute its loss, how to decode its raw outputs into keypoints of the **input frame** and how to merge the
outputs of the flipped image (flip test). This base class does everything else the same way for all methods:

* optimizer and LR schedule from the config (dependency injection, so they work under ``ddp_spawn`` and land in
  the hyper-parameters), optional linear warm-up;
* validation/test: flip test, mapping input-frame keypoints back to the original image with the sample's exact
  ``crop_to_image`` matrix, the metrics the datamodule declares (``metric_specs``, built by
  :mod:`lightning_pose.metrics.registry`; torchmetrics, DDP-safe), logged once per epoch from ``compute()``;
  evaluating without a datamodule needs ``set_metrics`` (else one ``ConfigError`` line);
* export of the evaluated predictions, each metric in its dataset's native format (COCO results json, MPII
  ``preds`` .mat in the 1-based frame of ``gt_valid.mat``, AI Challenger prediction json) so that
  ``lightning-pose evaluate`` reproduces the logged numbers from the files;
* ``predict_step`` returning image-frame keypoints with their ids.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lightning_pose.skeletons import KeypointSet, get_keypoint_set
from lightning_pose.tasks.network import NetworkSpec, build_network, describe_network, network_name

__all__ = ["PoseTask", "crop_to_image_coords"]

# Epoch metrics are logged from torchmetrics' compute(), already global on every rank: Lightning's advice to add
# sync_dist=True (a mean over ranks) does not apply to them.
warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")


def _default_optimizer(params: Iterable) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


def crop_to_image_coords(coords: Tensor, crop_to_image: Tensor) -> Tensor:
    """Map input-frame keypoints to the original image frame.

    Args:
        coords: ``(B, K, 2)`` keypoints in input-frame pixels.
        crop_to_image: ``(B, 2, 3)`` affine matrices (float64) with ``[x_img, y_img] = A @ [x_in, y_in, 1]``.

    Returns:
        ``(B, K, 2)`` float64 keypoints in original-image pixels (0-based).
    """
    a = crop_to_image.to(torch.float64)
    c = coords.to(device=a.device, dtype=torch.float64)
    return torch.einsum("bij,bkj->bki", a[:, :, :2], c) + a[:, None, :, 2]


class PoseTask(LightningModule):
    """Base class of the top-down pose LightningModules.

    Args:
        keypoint_set: the dataset's keypoint set (linked from the datamodule by the CLI; a name such as ``"coco"``
            or a mapping for a custom set also works).
        input_size: network input ``(W, H)`` in pixels (linked from the datamodule by the CLI).
        optimizer: optimizer factory, e.g. ``{class_path: torch.optim.Adam, init_args: {lr: 1e-3}}`` in YAML.
        scheduler: optional LR scheduler factory, stepped once per epoch (e.g. ``MultiStepLR`` with milestones).
        warmup_steps: linear LR warm-up over this many optimizer steps, starting at ``warmup_ratio`` x lr.
        warmup_ratio: starting fraction of the LR for the warm-up.
        flip_test: average the predictions of the image and of its horizontal flip at validation/test time.
        pck_thresholds: thresholds of the bbox-normalised PCK reported for every dataset.
        export_dir: when set, validation and test predictions are exported there in the dataset's native format.
        channels_last: convert the network's 4-D weights and every input batch to ``torch.channels_last`` (NHWC;
            faster convolutions on tensor-core GPUs; same outputs up to float rounding).
        compile: ``torch.compile`` the module's forward (``nn.Module.compile``, in place: checkpoint keys do not
            change): ``true`` for the defaults or a mapping of ``torch.compile`` arguments
            (``{mode: max-autotune}``, ``{backend: aot_eager}``...). Applied in ``configure_model``.
    """

    #: name used for W&B grouping and the ``method`` config key; subclasses override.
    method_name: str = "pose"

    def __init__(
        self,
        keypoint_set: KeypointSet | str | dict = "coco",
        input_size: tuple[int, int] = (192, 256),
        optimizer: OptimizerCallable = _default_optimizer,
        scheduler: LRSchedulerCallable | None = None,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.001,
        flip_test: bool = True,
        pck_thresholds: tuple[float, ...] = (0.05, 0.1, 0.2),
        export_dir: str | None = None,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
        network: NetworkSpec | None = None,
    ) -> None:
        super().__init__()
        #: the network factory as given (a class, partial or stored mapping); see :mod:`lightning_pose.tasks.network`
        self.network_spec: NetworkSpec | None = network
        self.keypoint_set = get_keypoint_set(keypoint_set)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.warmup_steps = int(warmup_steps)
        self.warmup_ratio = float(warmup_ratio)
        self.flip_test = bool(flip_test)
        self.pck_thresholds = tuple(float(t) for t in pck_thresholds)
        self.export_dir = export_dir
        self._metrics: dict[str, nn.ModuleDict] = {}
        #: exact (float64) metric values of the last finished validation/test epoch, keyed as logged
        self.final_metrics: dict[str, dict[str, float]] = {}
        self._base_lrs: list[float] | None = None
        self.channels_last = bool(channels_last)
        self._compile_args: dict[str, Any] | None = (
            dict(compile) if isinstance(compile, dict) else {} if compile else None
        )
        self._gpu_options_applied = False
        self.save_hyperparameters(ignore=["keypoint_set", "optimizer", "scheduler", "network"])
        # what W&B shows and what load_from_checkpoint needs (it passes only the keys __init__ accepts);
        # saved again as one dict so that the logged copy (hparams_initial) has them too
        hparams = dict(self.hparams)
        hparams.update(
            keypoint_set=self.keypoint_set.to_dict(),
            input_size=list(self.input_size),
            num_keypoints=self.keypoint_set.num_keypoints,
            method=self.method_name,
            optimizer_config=_describe_callable(optimizer),
            scheduler_config=_describe_callable(scheduler),
        )
        if network is not None:  # plain {class_path, init_args}: a checkpoint rebuilds the network from it
            hparams["network"] = describe_network(network)
        self.save_hyperparameters(hparams)
        # Lightning's model summary runs this input to report FLOPs (and the cost callback reuses it)
        self.example_input_array = torch.zeros(1, 3, self.input_size[1], self.input_size[0])

    # ------------------------------------------------------------------ network
    def make_network(self, **extra: Any) -> nn.Module:
        """Build the injected network for this task's keypoint count (call after ``super().__init__``; ``extra``
        are task-owned network arguments the config does not set, e.g. CPM's background channel)."""
        if self.network_spec is None:
            raise TypeError(f"{type(self).__name__}: no network given (set model.init_args.network in the config)")
        return build_network(self.network_spec, self.num_keypoints, **extra)

    @property
    def network_name(self) -> str | None:
        """Class name of the injected network (``SimpleBaseline``...), for trackers; ``None`` without one."""
        return None if self.network_spec is None else network_name(self.network_spec)

    @property
    def backbone(self) -> str | None:
        """The network's ``backbone`` argument (a timm model name) when it has one: from the injected network, else
        the task's own ``backbone`` hyper-parameter (tasks that take network arguments themselves)."""
        if self.network_spec is not None:
            value = describe_network(self.network_spec)["init_args"].get("backbone")
        else:
            value = self.hparams.get("backbone") if "backbone" in self.hparams else None
        return value if isinstance(value, str) and value else None

    # ------------------------------------------------------------------ method hooks
    @property
    def num_keypoints(self) -> int:
        return self.keypoint_set.num_keypoints

    @property
    def flip_indices(self) -> list[int]:
        return self.keypoint_set.flip_indices

    def forward(self, images: Tensor) -> Any:  # pragma: no cover - subclasses implement
        """Raw network outputs for ``images`` ``(B, 3, H, W)``."""
        raise NotImplementedError

    def compute_loss(self, outputs: Any, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its named parts for logging."""
        raise NotImplementedError

    def decode(self, outputs: Any) -> tuple[Tensor, Tensor]:
        """Raw outputs -> ``(coords (B, K, 2) input-frame pixels, scores (B, K))``."""
        raise NotImplementedError

    def merge_flip(self, outputs: Any, flipped_outputs: Any) -> Any:
        """Combine the outputs of the image and of its horizontal flip into outputs ``decode`` accepts."""
        raise NotImplementedError

    def configure_model(self) -> None:
        """Apply ``channels_last`` and ``compile`` once (Lightning calls this before fit/validate/test/predict)."""
        if self._gpu_options_applied:
            return
        self._gpu_options_applied = True
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
            self.register_forward_pre_hook(_inputs_channels_last)
        if self._compile_args is not None:
            super().compile(**self._compile_args)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_keypoints(self, images: Tensor, flip_test: bool | None = None) -> tuple[Tensor, Tensor]:
        """Input-frame keypoints ``(B, K, 2)`` and scores ``(B, K)`` for a batch of crops (flip test optional)."""
        flip = self.flip_test if flip_test is None else flip_test
        outputs = self(images)
        if flip:
            outputs = self.merge_flip(outputs, self(images.flip(-1)))
        return self.decode(outputs)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_metadata(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this model without a config (plain types, ``weights_only``-safe):
        class path, constructor arguments, keypoint set, input size ``[W, H]`` (pixels) and the input
        normalisation (RGB in [0, 255], ImageNet mean/std)."""
        from lightning_pose._version import __version__
        from lightning_pose.data.transforms.image_io import IMAGENET_MEAN, IMAGENET_STD
        from lightning_pose.tasks.checkpoint import _DESCRIPTIVE_KEYS, _TRAINING_ONLY_KEYS

        skip = _DESCRIPTIVE_KEYS | _TRAINING_ONLY_KEYS | {"keypoint_set", "input_size"}
        init_args = {k: _plain(v) for k, v in dict(self.hparams).items() if k not in skip and _is_plain(v)}
        cls = type(self)
        return {
            "format": 1,
            "package_version": __version__,
            "class_path": f"{cls.__module__}.{cls.__qualname__}",
            "init_args": init_args,
            "keypoint_set": self.keypoint_set.to_dict(),
            "num_keypoints": self.num_keypoints,
            "input_size": list(self.input_size),
            "normalization": {
                "mean": [float(v) for v in IMAGENET_MEAN],
                "std": [float(v) for v in IMAGENET_STD],
                "color": "RGB",
                "pixel_range": 255,
            },
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from lightning_pose.tasks.checkpoint import METADATA_KEY

        checkpoint[METADATA_KEY] = self.checkpoint_metadata()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse (one line naming the file) a checkpoint of another keypoint count or input size."""
        from lightning_pose.tasks.checkpoint import (
            METADATA_KEY,
            check_compatible,
            check_state_shapes,
            checkpoint_metadata,
        )

        path = self._checkpoint_path_in_use()
        if METADATA_KEY in checkpoint or "hyper_parameters" in checkpoint:
            meta = checkpoint_metadata(checkpoint, path)
            check_compatible(meta, self.num_keypoints, self.input_size, path)
        # before Lightning's raw size-mismatch error (e.g. another network width in the config)
        check_state_shapes(self, checkpoint.get("state_dict", {}), path)

    def _checkpoint_path_in_use(self) -> str:
        trainer = self._trainer
        return str(getattr(trainer, "ckpt_path", None) or getattr(self, "checkpoint_path", "") or "<checkpoint>")

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: Any,
        map_location: Any = "cpu",
        hparams_file: Any = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> "PoseTask":
        """Rebuild the task stored in a checkpoint (no config needed) and load its weights, in eval mode.

        Reads the file with ``weights_only=True``; any problem (missing, empty or truncated file, unsafe pickled
        objects, another task class, mismatching weights) raises :class:`~lightning_pose.errors.CheckpointError`
        naming the file. ``kwargs`` override stored constructor arguments (e.g. ``flip_test=False``).
        """
        if hparams_file is not None:
            raise TypeError("hparams_file is not supported: lightning_pose checkpoints carry their model description")
        from lightning_pose.tasks.checkpoint import task_from_checkpoint

        return task_from_checkpoint(
            checkpoint_path,
            cls=cls,
            map_location=map_location,
            strict=True if strict is None else bool(strict),
            **kwargs,
        )

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        batch = _normalized(batch)  # uint8 images of a loader used without its datamodule
        outputs = self(batch["image"])
        loss, parts = self.compute_loss(outputs, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss {loss.item()} at step {self.global_step} (batch {batch_idx}); "
                "lower the learning rate or check the data with `lightning-pose data check`"
            )
        bs = batch["image"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=bs)
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.warmup_steps <= 0:
            return
        opt = self.optimizers()
        optimizer = opt.optimizer if hasattr(opt, "optimizer") else opt
        if self._base_lrs is None:
            self._base_lrs = [group["lr"] for group in optimizer.param_groups]
        step = self.global_step
        if step < self.warmup_steps:
            factor = self.warmup_ratio + (1.0 - self.warmup_ratio) * step / self.warmup_steps
            for group, base in zip(optimizer.param_groups, self._base_lrs):
                group["lr"] = base * factor
        elif step == self.warmup_steps:
            for group, base in zip(optimizer.param_groups, self._base_lrs):
                group["lr"] = base

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}

    # ------------------------------------------------------------------ evaluation
    def setup(self, stage: str) -> None:
        if self._trainer is not None:
            from lightning_pose.tasks.checkpoint import guard_trainer_checkpoint_loading

            # Lightning restores --ckpt_path after setup: an empty/truncated/unsafe file then fails in one line
            guard_trainer_checkpoint_loading(self.trainer)
        from lightning_pose.tasks.metric_wiring import metric_datamodule, splits_for_stage

        # validate/test without a datamodule (nor metrics set by the user) is refused here, in one line
        dm = metric_datamodule(self, stage, evaluated=self._metrics)
        if dm is None:
            return
        from lightning_pose.metrics.registry import build_metrics

        for split in splits_for_stage(stage):
            if split in self._metrics:
                continue
            # the metrics the datamodule declares (metric_specs), built by the metrics registry
            self.set_metrics(split, build_metrics(dm, split, self.keypoint_set, pck_thresholds=self.pck_thresholds))

    def set_metrics(self, split: str, metrics: Mapping[str, Any]) -> None:
        """Evaluate ``split`` (``"val"``/``"test"``) with these torchmetrics (name -> metric, each with the update API
        of :mod:`lightning_pose.metrics`) instead of the datamodule's; needed to evaluate without a datamodule.
        With ``export_dir`` set, checks now that their exports can be written there."""
        if self.export_dir and (self._trainer is None or self.trainer.is_global_zero):
            from lightning_pose.metrics.export import check_export_dir

            # before any training/evaluation: a bad or taken export location fails now, not after the epoch
            check_export_dir(metrics, split, Path(self.export_dir))
        module_dict = nn.ModuleDict(dict(metrics))
        self._metrics[split] = module_dict
        # registered as a child so Lightning moves it to the device (names must be unique)
        self.add_module(f"metrics_{split}", module_dict)

    def _eval_step(self, batch: dict[str, Tensor], split: str) -> dict[str, Tensor]:
        batch = _normalized(batch)
        images = batch["image"]
        outputs = self(images)
        loss, _ = self.compute_loss(outputs, batch)
        if self.flip_test:
            outputs = self.merge_flip(outputs, self(images.flip(-1)))
        coords_in, scores = self.decode(outputs)
        coords_img = crop_to_image_coords(coords_in, batch["crop_to_image"])
        self.log(f"{split}/loss", loss, batch_size=images.shape[0], sync_dist=True)
        for metric in self._metrics.get(split, {}).values():
            metric.update(coords_img, scores.to(torch.float64), batch)
        return {
            "loss": loss,
            "coords_input": coords_in.detach(),
            "scores": scores.detach(),
            "coords_image": coords_img.detach(),
        }

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        batch = _normalized(batch)
        coords_in, scores = self.predict_keypoints(batch["image"])
        coords_img = crop_to_image_coords(coords_in, batch["crop_to_image"])
        out = {"keypoints": coords_img, "scores": scores}
        for key in ("image_id", "ann_id", "sample_id", "bbox_score"):
            if key in batch:
                out[key] = batch[key]
        return out

    def _reset_metrics(self, split: str) -> None:
        if split not in self._metrics:
            # e.g. trainer.fit(model, train_dataloaders, val_dataloaders): no datamodule gave the metrics
            from lightning_pose.tasks.metric_wiring import no_metrics_error

            raise no_metrics_error(self, split)
        # under ddp_spawn the metric states may be shared between processes until reset (docs/ecosystem.md#spawned-metric-states)
        for metric in self._metrics[split].values():
            metric.reset()

    def on_validation_epoch_start(self) -> None:
        self._reset_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._reset_metrics("test")

    def _finish_epoch(self, split: str) -> None:
        metrics = self._metrics.get(split)
        if not metrics:
            return
        values: dict[str, float] = {}
        for metric in metrics.values():
            # every rank must call compute(): it is a collective under DDP, even on a rank that saw no batch
            for key, value in metric.compute().items():
                values[f"{split}/{key}"] = float(value)
        self.final_metrics[split] = dict(values)
        if values:
            # values are already global (each metric syncs in compute); no sync_dist needed
            # (per-joint values reach W&B as one table: PoseWandbLogger drops them from the scalar metrics)
            self.log_dict(values, sync_dist=False, rank_zero_only=False)
        sanity = self._trainer is not None and self.trainer.sanity_checking
        if self.export_dir and not sanity and self.trainer.is_global_zero:
            self.export_predictions(split, Path(self.export_dir))
        for metric in metrics.values():
            metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._finish_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._finish_epoch("test")

    def export_predictions(self, split: str, out_dir: Path) -> list[Path]:
        """Write the predictions evaluated in this epoch, each metric in its native format(s)
        (:mod:`lightning_pose.metrics.export`).

        Must be called before the metrics are reset. Returns the written files.
        """
        from lightning_pose.metrics.export import export_metric_predictions

        return export_metric_predictions(dict(self._metrics.get(split, {})), split, Path(out_dir))


def _normalized(batch: Any) -> Any:
    """The batch with a uint8 ``image`` (CPU top-down samples from a loader used without its datamodule, whose
    ``on_after_batch_transfer`` normalises them) ImageNet-normalised on its device; other batches unchanged."""
    from lightning_pose.data.datasets.tensors import normalize_batch

    return normalize_batch(batch)


def _inputs_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook of ``channels_last``: 4-D tensor inputs in NHWC memory order (values unchanged)."""
    return tuple(
        a.contiguous(memory_format=torch.channels_last) if isinstance(a, Tensor) and a.dim() == 4 else a for a in args
    )


def _is_plain(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_is_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_plain(x) for k, x in v.items())
    return False


def _plain(v: Any) -> Any:
    """Tuples become lists (plain containers only: the checkpoint entry must load with ``weights_only``)."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _describe_callable(fn: Callable | None) -> Any:
    """A JSON-friendly description of an injected optimizer/scheduler factory (for hparams / W&B)."""
    if fn is None:
        return None
    func = getattr(fn, "func", None)  # functools.partial from jsonargparse
    if func is not None:
        kwargs = {k: v for k, v in getattr(fn, "keywords", {}).items() if _jsonable(v)}
        # jsonargparse wraps the class: partial(call_without_instantiate_context, instantiator, cls, ...);
        # name the class itself, not the wrapper
        target = next((a for a in getattr(fn, "args", ()) if isinstance(a, type)), func)
        return {"class_path": f"{target.__module__}.{target.__qualname__}", "init_args": kwargs}
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return {"class_path": f"{getattr(fn, '__module__', '')}.{name}"}


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        warnings.warn(f"optimizer argument {v!r} is not JSON-serialisable; left out of the logged config", stacklevel=2)
        return False

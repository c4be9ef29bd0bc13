"""``PoseDataModule``: the shared LightningDataModule logic (paths, reading, datasets, loaders, GT export).

Subclasses only say where a dataset's files live by default (:meth:`PoseDataModule.default_paths`) and
how to read one split (:meth:`PoseDataModule.read_split`). Everything the CLI links into the model
(``keypoint_set``, ``num_keypoints``, ``flip_indices``, ``input_size``, ``dataset_name``) is available
right after ``__init__``; files are read in :meth:`setup` (or lazily by :meth:`records`).

Bad input is caught before training starts: option values in ``__init__`` (:class:`~lightning_pose.errors.ConfigError`),
files in :meth:`PoseDataModule.check_inputs` (the CLI calls it before it creates the trainer and the W&B run;
:class:`~lightning_pose.data.records.DatasetError`): missing root / annotation file / image folder, invalid records
and, with ``check_images`` (the default), every image file (missing, unreadable, truncated, zeroed data, size
different from the annotation). With ``skip_invalid`` the bad records are dropped and counted in one warning.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Mapping

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_pose.data.datasets import BottomUpDataset, TopDownDataset
from lightning_pose.data.datasets.tensors import collate_channels_last, normalize_batch
from lightning_pose.data.datasets.topdown_bytes import ENCODED_KEY, TopDownBytesDataset, collate_encoded
from lightning_pose.data.records import DatasetError, ImageRecord
from lightning_pose.data.transforms import BottomUpAugmentation, TopDownAugmentation
from lightning_pose.errors import ConfigError
from lightning_pose.skeletons import KeypointSet, get_keypoint_set

__all__ = ["PoseDataModule", "SPLITS", "MODES"]

SPLITS = ("train", "val", "test")
MODES = ("topdown", "bottomup")


class PoseDataModule(pl.LightningDataModule):
    """Base class of the pose datamodules (not used directly: pick a dataset subclass).

    Args:
        root: dataset root folder; per-split files default to the dataset's standard layout under it.
        train_ann, val_ann, test_ann: annotation files (``None`` = the default below ``root``).
        train_images, val_images, test_images: image folders (``None`` = the default below ``root``).
        input_size: network input ``(W, H)`` in pixels (width first).
        batch_size: training batch size.
        val_batch_size: validation / test batch size (``None`` = ``batch_size``).
        num_workers: DataLoader worker processes (0 = load in the main process).
        augmentation: training augmentation overrides (fields of :class:`TopDownAugmentation` or
            :class:`BottomUpAugmentation`, merged over the dataset's defaults); ``{"enabled": false}``
            turns augmentation off. Validation and test never augment (they keep ``padding``).
        val_boxes, test_boxes: ``"gt"`` (crop the annotated persons) or the path of a COCO-results
            detection file (top-down only).
        mode: ``"topdown"`` (person crops) or ``"bottomup"`` (whole images).
        skip_invalid: drop invalid records (annotations, and with ``check_images`` the images that fail the
            check) with one warning counting them, instead of raising DatasetError before training.
        check_images: check every image file once when a split is read, before training (header, end marker,
            zeroed data, size vs the annotation; the pixels of healthy files are not decoded: about 0.2-0.4 ms per
            image with a warm disk cache). ``False`` skips it (problems then surface when an image is loaded).
        keypoint_set: override of the dataset's keypoint set: a name (``coco``, ``mpii``, ``aic``) or a
            mapping (custom set: ``keypoints``, ``flip_pairs``, ``skeleton``, ``upper_body``, ``sigmas``).
        pin_memory: DataLoader ``pin_memory``.
        persistent_workers: keep workers between epochs (only when ``num_workers > 0``).
        prefetch_factor: batches each worker loads in advance (DataLoader ``prefetch_factor``; needs
            ``num_workers > 0``; ``None`` = PyTorch's default, 2).
        augment_on: ``"cpu"`` (workers decode, warp and augment) or ``"gpu"`` (top-down only: workers read the
            file bytes and draw the crop parameters; decoding, the warp, photometric augmentation and
            normalisation run per batch on the training device in :meth:`on_after_batch_transfer`).
        max_persons: bottom-up padding size of ``keypoints`` (N_max).
        seed: base seed of the augmentation streams.
    """

    #: short dataset name ("coco" | "mpii" | "aic" | "demo"), used for W&B tags and exporters
    dataset_name: str = "pose"
    #: keypoint set used when ``keypoint_set`` is not overridden
    default_keypoint_set: str = "coco"
    #: dataset-specific top-down augmentation defaults (merged under the user's ``augmentation``)
    default_topdown_augmentation: Mapping[str, Any] = {}

    def __init__(
        self,
        root: str = ".",
        train_ann: str | None = None,
        train_images: str | None = None,
        val_ann: str | None = None,
        val_images: str | None = None,
        test_ann: str | None = None,
        test_images: str | None = None,
        input_size: tuple[int, int] = (192, 256),
        batch_size: int = 32,
        val_batch_size: int | None = None,
        num_workers: int = 2,
        augmentation: dict[str, Any] | None = None,
        val_boxes: str = "gt",
        test_boxes: str = "gt",
        mode: str = "topdown",
        skip_invalid: bool = False,
        keypoint_set: str | dict[str, Any] | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        max_persons: int = 30,
        seed: int = 0,
        check_images: bool = True,
        prefetch_factor: int | None = None,
        augment_on: str = "cpu",
    ) -> None:
        super().__init__()
        if type(self) is PoseDataModule:
            raise TypeError(
                "PoseDataModule is a base class; use COCODataModule, MPIIDataModule, AICDataModule or DemoDataModule"
            )
        # the keypoint set and input size are logged by the model they are linked into (one value, one place)
        self.save_hyperparameters(ignore=["keypoint_set", "input_size"])
        _validate_options(
            type(self).__name__,
            mode=mode,
            input_size=input_size,
            batch_size=batch_size,
            val_batch_size=val_batch_size,
            num_workers=num_workers,
            max_persons=max_persons,
        )
        _check_loader_options(num_workers, prefetch_factor, augment_on, mode)
        self.root = Path(root).expanduser()
        self._ann = {"train": train_ann, "val": val_ann, "test": test_ann}
        self._images = {"train": train_images, "val": val_images, "test": test_images}
        self.input_size: tuple[int, int] = (int(input_size[0]), int(input_size[1]))
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size) if val_batch_size is not None else self.batch_size
        self.num_workers = int(num_workers)
        self.boxes = {"train": "gt", "val": str(val_boxes), "test": str(test_boxes)}
        self.mode = mode
        self.skip_invalid = bool(skip_invalid)
        self.check_images = bool(check_images)
        self.keypoint_set: KeypointSet = get_keypoint_set(
            keypoint_set if keypoint_set is not None else self.default_keypoint_set
        )
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers)
        self.prefetch_factor = None if prefetch_factor is None else int(prefetch_factor)
        self.augment_on = augment_on
        self.max_persons = int(max_persons)
        self.seed = int(seed)
        for split in ("val", "test"):
            if self.boxes[split] != "gt" and mode != "topdown":
                raise ConfigError(f"{split}_boxes={self.boxes[split]!r}: detection boxes need mode='topdown'")
        # validate the augmentation settings now (fail at config time, not in a worker)
        self.train_augmentation: TopDownAugmentation | BottomUpAugmentation
        if mode == "topdown":
            merged = {**self.default_topdown_augmentation, **(augmentation or {})}
            self.train_augmentation = TopDownAugmentation.from_config(merged)
            self.eval_augmentation: TopDownAugmentation | None = self.train_augmentation.disabled()
        else:
            self.train_augmentation = BottomUpAugmentation.from_config(dict(augmentation or {}))
            self.eval_augmentation = None
        self._results: dict[str, Any] = {}
        self._datasets: dict[str, Dataset] = {}
        self._ground_truth: dict[str, dict] = {}

    # ------------------------------------------------------------------ linked attributes
    @property
    def num_keypoints(self) -> int:
        return self.keypoint_set.num_keypoints

    @property
    def flip_indices(self) -> list[int]:
        return self.keypoint_set.flip_indices

    # ------------------------------------------------------------------ paths and reading
    def default_paths(self, split: str) -> tuple[Path, Path]:
        """``(annotation file, image folder)`` of ``split`` in the dataset's standard layout under ``root``."""
        raise NotImplementedError(f"{type(self).__name__} must define default_paths()")

    def read_split(self, split: str, ann_file: Path, image_dir: Path) -> Any:
        """Read one split's annotations; returns a ``readers.ReadResult``."""
        raise NotImplementedError(f"{type(self).__name__} must define read_split()")

    def paths(self, split: str) -> tuple[Path, Path]:
        """Resolved ``(annotation file, image folder)`` of ``split`` (explicit arguments win)."""
        self._check_split(split)
        ann_default, img_default = self.default_paths(split)
        ann = Path(self._ann[split]).expanduser() if self._ann[split] else ann_default
        images = Path(self._images[split]).expanduser() if self._images[split] else img_default
        return ann, images

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")

    def check_paths(self, split: str) -> tuple[Path, Path]:
        """``paths(split)`` after checking that they exist.

        Raises:
            DatasetError: one line naming the missing data root, annotation file or image folder and the option
                that sets it.
        """
        ann, images = self.paths(split)
        name = type(self).__name__
        for path, option, what, exists in (
            (ann, f"{split}_ann", "annotation file", ann.is_file()),
            (images, f"{split}_images", "image folder", images.is_dir()),
        ):
            if exists:
                continue
            explicit = bool((self._ann if option.endswith("_ann") else self._images)[split])
            if not explicit and not self.root.is_dir():
                raise DatasetError(
                    f"{self.root}: data root of {name} not found (set root to the dataset folder, "
                    f"or {split}_ann / {split}_images)"
                )
            kind = "not a regular file" if what == "annotation file" and path.exists() else "not found"
            where = f"given as {option}" if explicit else f"default location under root {self.root}; set {option}"
            raise DatasetError(f"{path}: {what} of the {split!r} split of {name} {kind} ({where})")
        return ann, images

    def read_result(self, split: str) -> Any:
        """The cached ``ReadResult`` of ``split`` (reads the annotation file on first use)."""
        self._check_split(split)
        if split not in self._results:
            ann, images = self.check_paths(split)
            result = self.read_split(split, ann, images)
            if result.keypoint_set.num_keypoints != self.keypoint_set.num_keypoints:
                raise DatasetError(
                    f"{ann}: {result.keypoint_set.num_keypoints} keypoints per person, but the "
                    f"datamodule's keypoint set {self.keypoint_set.name!r} has {self.num_keypoints}"
                )
            self._results[split] = result
        return self._results[split]

    def records(self, split: str) -> list[ImageRecord]:
        """Image records of ``split`` (0-based image pixels; read on first use)."""
        return self.read_result(split).records

    def ground_truth(self, split: str) -> dict:
        """COCO-format ground truth of ``split`` (``records_to_coco``), cached."""
        from lightning_pose.data.readers.coco import records_to_coco

        self._check_split(split)
        if split not in self._ground_truth:
            self._ground_truth[split] = records_to_coco(self.records(split), self.keypoint_set)
        return self._ground_truth[split]

    def detections(self, split: str) -> list | None:
        """Person detections used for ``split`` (``None`` when the split uses GT boxes)."""
        from lightning_pose.data.readers.detections import read_detections

        self._check_split(split)
        spec = self.boxes[split]
        if spec == "gt":
            return None
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DatasetError(f"{path}: detection file given as {split}_boxes not found (use 'gt' for GT boxes)")
        image_ids = {r.image_id for r in self.records(split)}
        return read_detections(path, image_ids=image_ids, skip_invalid=self.skip_invalid)

    def extra_dataset_kwargs(self, split: str) -> dict[str, Any]:
        """Additional keyword arguments for the dataset of ``split`` (e.g. bottom-up segmentations)."""
        return {}

    # ------------------------------------------------------------------ datasets
    def build_dataset(self, split: str) -> Dataset:
        """A fresh dataset of ``split`` (augmented for ``train``)."""
        self._check_split(split)
        records = self.records(split)
        train = split == "train"
        if self.mode == "topdown":
            aug = self.train_augmentation if train else self.eval_augmentation
            cls = TopDownBytesDataset if self.augment_on == "gpu" else TopDownDataset
            return cls(
                records,
                self.keypoint_set,
                self.input_size,
                copy.deepcopy(aug),
                detections=None if train else self.detections(split),
                train=train,
                seed=self.seed + SPLITS.index(split),
            )
        aug_bu = self.train_augmentation if train else None
        return BottomUpDataset(
            records,
            self.keypoint_set,
            self.input_size,
            copy.deepcopy(aug_bu),
            max_persons=self.max_persons,
            train=train,
            seed=self.seed + SPLITS.index(split),
            **self.extra_dataset_kwargs(split),
        )

    def dataset(self, split: str) -> Dataset:
        """The cached dataset of ``split`` (built on first use)."""
        if split not in self._datasets:
            self._datasets[split] = self.build_dataset(split)
        return self._datasets[split]

    @staticmethod
    def stage_splits(stage: str | None) -> tuple[str, ...]:
        """The splits a trainer stage uses (``fit`` -> train and val, ``validate`` -> val, ``test``/``predict`` ->
        test, ``None`` -> all)."""
        splits = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: SPLITS,
        }.get(stage)
        if splits is None:
            raise ValueError(f"unknown stage {stage!r}")
        return splits

    def setup(self, stage: str | None = None) -> None:
        """Read the annotation files the stage needs and build the datasets (raises DatasetError)."""
        for split in self.stage_splits(stage):
            self.dataset(split)

    def check_inputs(self, stage: str | None = None) -> None:
        """Read and check everything ``stage`` needs, before any training starts (called by the CLI before it
        creates the trainer and the W&B run; the results are cached, so :meth:`setup` does not read again).

        Raises:
            DatasetError: a missing root / annotation file / image folder, invalid records (and image files,
                with ``check_images``) without ``skip_invalid``, or a split left without samples.
        """
        self.prepare_data()
        for split in self.stage_splits(stage):
            ds = self.dataset(split)
            if len(ds) == 0:
                raise DatasetError(
                    f"{self.paths(split)[0]}: the {split!r} split has no usable samples"
                    + (" after skipping invalid records" if self.skip_invalid else "")
                )

    # ------------------------------------------------------------------ loaders
    def _loader(self, split: str) -> DataLoader:
        ds = self.dataset(split)
        train = split == "train"
        batch = self.batch_size if train else self.val_batch_size
        drop_last = train
        if train and len(ds) < batch:
            warnings.warn(
                f"{type(self).__name__}: the train split has {len(ds)} samples, fewer than batch_size="
                f"{batch}; keeping the partial batch (drop_last disabled)",
                stacklevel=2,
            )
            drop_last = False
        if len(ds) == 0:
            raise DatasetError(f"{self.paths(split)[0]}: the {split!r} split has no usable samples")
        return DataLoader(
            ds,
            batch_size=batch,
            shuffle=train,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            prefetch_factor=self.prefetch_factor,
            collate_fn=collate_encoded if self.augment_on == "gpu" else collate_channels_last,
        )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """The batch on its device: ImageNet-normalise the CPU top-down path's uint8 ``image`` (float32 out,
        ``tensors.normalize_batch``); ``augment_on: gpu``: decode, warp, augment and normalise it (``gpu_augment``).
        Tasks and callbacks thus always see float32 normalised images."""
        if self.augment_on == "gpu" and isinstance(batch, dict) and ENCODED_KEY in batch:
            from lightning_pose.data.datasets.gpu_augment import augment_batch

            with torch.no_grad():
                batch = augment_batch(batch, self.input_size)
        return normalize_batch(batch)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")


def _validate_options(
    owner: str, *, mode: str, input_size: Any, batch_size: Any, val_batch_size: Any, num_workers: Any, max_persons: Any
) -> None:
    """Refuse option values that cannot work, with one line naming the option (ConfigError)."""
    if mode not in MODES:
        raise ConfigError(f"{owner}: mode must be one of {MODES}, got {mode!r}")
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) <= 0:
        raise ConfigError(f"{owner}: input_size must be two positive integers (W, H) in pixels, got {input_size!r}")

    def integer(name: str, value: Any, low: int, what: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{owner}: {name} must be an integer >= {low} ({what}), got {value!r}")

    integer("batch_size", batch_size, 1, "samples per training batch")
    if val_batch_size is not None:
        integer("val_batch_size", val_batch_size, 1, "samples per validation/test batch")
    integer("num_workers", num_workers, 0, "DataLoader worker processes")
    integer("max_persons", max_persons, 1, "bottom-up padding size")


def _check_loader_options(num_workers: int, prefetch_factor: int | None, augment_on: str, mode: str) -> None:
    """Raise ConfigError (one line naming the option) for loader / device-path options that cannot work."""
    if prefetch_factor is not None:
        if num_workers == 0:
            raise ConfigError(
                f"data.init_args.prefetch_factor={prefetch_factor} needs num_workers > 0 (it counts "
                "batches loaded in advance by each worker process); set num_workers or remove it"
            )
        if int(prefetch_factor) < 1:
            raise ConfigError(f"data.init_args.prefetch_factor must be >= 1, got {prefetch_factor}")
    if augment_on not in ("cpu", "gpu"):
        raise ConfigError(f"data.init_args.augment_on must be 'cpu' or 'gpu', got {augment_on!r}")
    if augment_on == "gpu" and mode != "topdown":
        raise ConfigError(f"data.init_args.augment_on: gpu supports mode: topdown only, got mode: {mode}")

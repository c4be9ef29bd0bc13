"""``TopDownBytesDataset``: the worker half of the device (GPU) augmentation path (``augment_on: gpu``).

A worker does no pixel work: it reads the image file's bytes and draws the sample's crop geometry with the CPU
path's own code (:meth:`TopDownTransform.sample_params` and :meth:`TopDownTransform.matrix`, from the same
seeded stream, so for the same seed and index both paths give the same crop), and the photometric parameters
from a second stream (:func:`~lightning_pose.data.transforms.gpu_params.draw_photometric_params`). Decoding, the
warp, photometric augmentation and normalisation run per batch on the device
(:func:`lightning_pose.data.datasets.gpu_augment.augment_batch`).

Sample dict: every key of ARCHITECTURE.md's top-down sample except ``image``, plus (all but the first two are
collated into the batch's :class:`EncodedImages` and stay on the CPU)

| key | type / shape | meaning |
|---|---|---|
| ``encoded_image`` | uint8 ``(N,)`` | the file's bytes (collated into an :class:`EncodedImages` list) |
| ``file`` | str | the image file (for error messages) |
| ``image_size`` | int64 ``(2,)`` | ``(W, H)`` of the original image in pixels (from the record or the file header) |
| ``downscale`` | int64 ``()`` | block-averaging factor before the warp (the CPU path's reduced decoding; 1 = none) |
| ``photo_jitter``, ``photo_blur``, ``photo_noise``, ``photo_holes`` | float32 | see ``gpu_params`` |

Use :func:`collate_encoded` as the DataLoader's ``collate_fn``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate

from lightning_pose.data import geometry
from lightning_pose.data.datasets.topdown import TopDownDataset
from lightning_pose.data.records import DataProblem, DatasetError, PersonRecord
from lightning_pose.data.transforms.gpu_params import draw_photometric_params
from lightning_pose.errors import ConfigError

__all__ = ["TopDownBytesDataset", "EncodedImages", "collate_encoded", "ENCODED_KEY", "CPU_KEYS"]

#: sample / batch key of the encoded image bytes
ENCODED_KEY = "encoded_image"


#: per-sample keys that stay on the CPU inside :class:`EncodedImages` (the device path reads them there, no sync)
CPU_KEYS = ("image_size", "downscale", "photo_jitter", "photo_blur", "photo_noise", "photo_holes")


class EncodedImages:
    """The worker-side part of one batch: the encoded images (1-D uint8 CPU tensors), their files and record labels
    (for error messages), and the collated :data:`CPU_KEYS` tensors in ``params`` (``image_size`` ``(B, 2)`` and the
    photometric parameters).

    A plain container on purpose: Lightning's batch transfer moves tensors found in lists and dicts to the
    device, but leaves this object alone, so the bytes stay on the CPU where ``decode_jpeg`` reads them and the
    small parameter tensors can be inspected without a device synchronisation.
    """

    def __init__(
        self,
        data: Sequence[torch.Tensor],
        files: Sequence[str],
        records: Sequence[str] | None = None,
        params: dict[str, torch.Tensor] | None = None,
    ) -> None:
        self.data = list(data)
        self.files = list(files)
        self.records = list(records) if records is not None else [f"image {Path(f).name}" for f in self.files]
        self.params = dict(params or {})

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"EncodedImages({len(self.data)} images, {sum(int(d.numel()) for d in self.data)} bytes)"


def collate_encoded(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``default_collate`` of the fixed-size keys; the variable-length bytes become one :class:`EncodedImages`."""
    encoded = [s[ENCODED_KEY] for s in samples]
    files = [s.get("file", "") for s in samples]
    labels = [
        f"image {int(s['image_id'])}" if "image_id" in s else f"image {Path(f).name}" for s, f in zip(samples, files)
    ]
    cpu = default_collate([{k: s[k] for k in CPU_KEYS if k in s} for s in samples])
    rest = [{k: v for k, v in s.items() if k not in (ENCODED_KEY, "file", *CPU_KEYS)} for s in samples]
    batch = default_collate(rest)
    batch[ENCODED_KEY] = EncodedImages(encoded, files, labels, cpu)
    return batch


class _Streams:
    """What the worker seeder reseeds: the geometry stream (the transform's, exactly as the CPU path) and an
    independent photometric stream, so photometric draws never shift the geometry of the next sample."""

    def __init__(self, dataset: "TopDownBytesDataset") -> None:
        self.dataset = dataset

    def reseed(self, seed: int) -> None:
        self.dataset.transform.reseed(seed)
        self.dataset.photo_rng = np.random.default_rng([int(seed), 0x9E3779B9])


class TopDownBytesDataset(TopDownDataset):
    """Top-down samples for the device augmentation path (same arguments and sample selection as
    :class:`TopDownDataset`; ``image_reader`` is not supported: the device decodes the file itself)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("image_reader") is not None or (len(args) > 5 and args[5] is not None):
            raise ConfigError(
                "augment_on: gpu decodes image files on the device; a custom image_reader cannot be "
                "used with it (use augment_on: cpu)"
            )
        super().__init__(*args, **kwargs)
        self.photo_rng = np.random.default_rng(0)
        self._streams = _Streams(self)

    def read_bytes(self, index: int) -> torch.Tensor:
        """The raw bytes of the image file of sample ``index`` as a 1-D uint8 tensor (DatasetError naming the
        file when it is missing, unreadable or empty)."""
        r = self.records[self.items[index].record]
        p = Path(r.file)
        try:
            data = np.fromfile(p, dtype=np.uint8)
        except OSError as exc:
            kind = "missing_image" if not p.exists() else "unreadable_image"
            problem = "image file does not exist" if not p.exists() else f"cannot read the file: {exc.strerror}"
            raise DatasetError(
                DataProblem(file=str(p), record=f"image {r.image_id}", problem=problem, kind=kind)
            ) from None
        if data.size == 0:
            raise DatasetError(
                DataProblem(
                    file=str(p), record=f"image {r.image_id}", problem="image file is empty", kind="unreadable_image"
                )
            )
        return torch.from_numpy(data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.items):
            raise IndexError(f"sample index {index} out of range 0..{len(self.items) - 1}")
        self._seeder(self._streams)
        t = self.transform
        item = self.items[index]
        record = self.records[item.record]
        k = self.keypoint_set.num_keypoints
        person: PersonRecord | None = record.persons[item.person] if item.person >= 0 else None
        center, scale = self.center_scale(index)
        gt = np.zeros((k, 3), dtype=np.float64) if person is None else np.asarray(person.keypoints, np.float64)
        params = t.sample_params(center, scale, gt if person is not None else None)
        width, height = self.image_size(index)
        if width <= 0 or height <= 0:
            raise DatasetError(
                DataProblem(
                    file=str(record.file),
                    record=f"image {record.image_id}",
                    problem="image size unknown: the record has none and the file header cannot be read",
                    kind="unreadable_image",
                )
            )
        m = t.matrix(params, width)
        downscale = t.decode_downscale(params) if self.reduced_decoding else 1
        kp = np.zeros((k, 3)) if person is None else t.transform_keypoints(gt, m, params.flip)
        photo = draw_photometric_params(t.augmentation, t.input_size, self.photo_rng, t.augmentation.enabled)

        sample: dict[str, Any] = {
            ENCODED_KEY: self.read_bytes(index),
            "file": str(record.file),
            "image_size": torch.tensor([width, height], dtype=torch.int64),
            "downscale": torch.tensor(downscale, dtype=torch.int64),
            "keypoints": torch.from_numpy(kp.astype(np.float32)),
            "crop_to_image": torch.from_numpy(geometry.invert_affine(m)),
        }
        sample.update(self._sample_metadata(index, gt, scale, params.flip))
        sample.update({key: torch.from_numpy(v) for key, v in photo.items()})
        return sample

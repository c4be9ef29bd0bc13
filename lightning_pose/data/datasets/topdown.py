"""``TopDownDataset``: one sample per person box, returning the sample dict of ARCHITECTURE.md."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lightning_pose.data import geometry
from lightning_pose.data.datasets.image_loading import load_record_image
from lightning_pose.data.datasets.seeding import WorkerSeeder
from lightning_pose.data.datasets.tensors import uint8_chw_view
from lightning_pose.data.records import DataProblem, DatasetError, ImageRecord, PersonRecord
from lightning_pose.data.transforms import TopDownAugmentation, TopDownTransform
from lightning_pose.data.transforms.image_io import DecodeBuffer, read_image
from lightning_pose.skeletons import KeypointSet, get_keypoint_set

__all__ = ["TopDownDataset", "TopDownItem"]

_JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")


def _f64(value: Any) -> torch.Tensor:
    """float64 tensor of a number or a tuple of numbers (``torch.from_numpy`` of a numpy array: ~4x cheaper per
    sample than ``torch.tensor``, same values)."""
    return torch.from_numpy(np.array(value, dtype=np.float64))


def _i64(value: int) -> torch.Tensor:
    """int64 0-d tensor (see :func:`_f64`)."""
    return torch.from_numpy(np.array(value, dtype=np.int64))


@dataclass(frozen=True)
class TopDownItem:
    """Where one sample comes from: the image record, and a GT person or a detection.

    Attributes:
        record: index into the dataset's records.
        person: index into ``records[record].persons`` or -1 for a detection sample.
        bbox: ``(4,)`` x, y, w, h image pixels of the box the crop is built from.
        score: 1.0 for GT boxes, the detector score otherwise.
        ann_id: GT annotation id, or the detection's index in its file.
    """

    record: int
    person: int
    bbox: tuple[float, float, float, float]
    score: float
    ann_id: int


def _detection_fields(det: Any) -> tuple[int, np.ndarray, float, int]:
    try:
        return int(det.image_id), np.asarray(det.bbox, dtype=np.float64).reshape(4), float(det.score), int(det.index)
    except (AttributeError, TypeError, ValueError) as exc:
        raise TypeError(f"detections must be Detection objects (image_id, bbox, score, index): {det!r}") from exc


class TopDownDataset(Dataset):
    """Top-down person crops.

    The sample's ``image`` is the crop as ``(3, H_in, W_in)`` **uint8** RGB (grey levels), a channel-first view of
    channel-last pixels (``tensors.uint8_chw_view``: no copy; ``tensors.collate_channels_last``, the datamodules'
    ``collate_fn``, stacks such views into a channels-last batch with one plain copy). The ImageNet
    normalisation runs on the batch's device (``tensors.normalize_batch``, called by the datamodule's
    ``on_after_batch_transfer`` and by the tasks' steps); use ``normalize_batch`` when feeding a network directly.

    Sample selection:

    * ``train=True``: every non-crowd person with at least one labelled keypoint (v > 0).
    * evaluation with GT boxes (``detections=None``): every non-crowd person with a labelled keypoint or
      an annotated MPII centre/scale (MPII test files have no joints); persons without keypoints are not
      evaluated by COCO AP, as in HRNet.
    * evaluation with ``detections``: one sample per detection (``gt_keypoints`` zeros, ``area`` 0,
      ``ann_id`` = the detection's index in its file, ``bbox_score`` = detector score).

    Crop: MPII persons (with annotated ``center``/``scale``) use :func:`geometry.mpii_center_scale`,
    all others :func:`geometry.box_to_center_scale` with ``augmentation.padding`` (1.25).

    Args:
        records: image records (image-frame 0-based pixel coordinates).
        keypoint_set: keypoint set (name, mapping or object) of the records.
        input_size: ``(W_in, H_in)`` pixels.
        augmentation: :class:`TopDownAugmentation` or mapping; ``None`` = no augmentation.
        detections: person detections (``readers.detections.Detection``) for evaluation, or ``None``.
        image_reader: ``path -> (H, W, 3) uint8 RGB``; default ``cv2.imread`` (crop converted BGR->RGB).
        train: sample selection (see above); default: ``True`` iff augmentation is enabled.
        seed: base seed of the augmentation stream (mixed with ``torch.initial_seed()`` per worker).
        reduced_decoding: with the default reader, decode a JPEG at 1/2, 1/4 or 1/8 resolution
            (``cv2.IMREAD_REDUCED_COLOR_*``) when the crop shrinks the image by at least that factor
            (large persons); the crop is then built from the reduced image with the matching matrix, so
            keypoints and ``crop_to_image`` are unchanged and only the resampling differs (it is
            smoother: DCT-domain area averaging instead of bilinear decimation). The image size comes from
            the record or, when the record has none (MPII), from the file header; a full decode is used
            whenever the reduced image does not have the expected size.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        keypoint_set: str | Mapping[str, Any] | KeypointSet,
        input_size: Sequence[int] = (192, 256),
        augmentation: TopDownAugmentation | Mapping[str, Any] | None = None,
        detections: Sequence[Any] | None = None,
        image_reader: Callable[[Path], np.ndarray] | None = None,
        *,
        train: bool | None = None,
        seed: int = 0,
        reduced_decoding: bool = True,
    ) -> None:
        self.records = list(records)
        self.reduced_decoding = bool(reduced_decoding)
        self._sizes: dict[int, tuple[int, int]] = {}
        self._center_scale: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.keypoint_set = get_keypoint_set(keypoint_set)  # type: ignore[arg-type]
        self.transform = TopDownTransform(self.keypoint_set, input_size, augmentation, seed=seed)
        self.input_size = self.transform.input_size
        self.image_reader = image_reader
        self.train = self.transform.augmentation.enabled if train is None else bool(train)
        self._seeder = WorkerSeeder(seed)
        self._decode_buffer = DecodeBuffer()
        k = self.keypoint_set.num_keypoints
        for r in self.records:
            for j, p in enumerate(r.persons):
                if np.shape(p.keypoints) != (k, 3):
                    raise DatasetError(
                        DataProblem(
                            file=str(r.file),
                            record=f"annotation {p.id} (image {r.image_id}, person {j})",
                            problem=f"keypoints have shape {np.shape(p.keypoints)}, expected ({k}, 3) for keypoint set "
                            f"{self.keypoint_set.name!r}",
                            kind="keypoint_count",
                        )
                    )
        self.items: list[TopDownItem] = (
            self._detection_items(detections) if detections is not None else self._gt_items()
        )

    def set_epoch(self, epoch: int) -> None:
        """Key the augmentation stream on the training epoch (0-based; see :mod:`.seeding`), so that a resumed
        run draws what an uninterrupted one draws. Takes effect in DataLoader workers created afterwards (not
        in persistent workers that already exist)."""
        self._seeder.set_epoch(epoch)

    # ------------------------------------------------------------------ indexing
    def _gt_items(self) -> list[TopDownItem]:
        items = []
        for ri, r in enumerate(self.records):
            for pi, p in enumerate(r.persons):
                if p.iscrowd:
                    continue
                has_kp = p.num_keypoints > 0
                has_cs = p.center is not None and p.scale is not None
                if not (has_kp or (not self.train and has_cs)):
                    continue
                if not has_cs:
                    box = np.asarray(p.bbox, dtype=np.float64)
                    if not (np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0):
                        raise DatasetError(
                            DataProblem(
                                file=str(r.file),
                                record=f"annotation {p.id} (image {r.image_id})",
                                problem=f"person box {box.tolist()} has no area; cannot build a crop",
                                kind="empty_box",
                            )
                        )
                items.append(TopDownItem(ri, pi, tuple(float(v) for v in p.bbox), 1.0, int(p.id)))
        return items

    def _detection_items(self, detections: Sequence[Any]) -> list[TopDownItem]:
        by_id = {r.image_id: i for i, r in enumerate(self.records)}
        items = []
        for det in detections:
            image_id, box, score, index = _detection_fields(det)
            if image_id not in by_id:
                raise DatasetError(
                    DataProblem(
                        file="detections",
                        record=f"detection {index}",
                        problem=f"image_id {image_id} is not in the annotation records",
                        kind="unknown_image",
                    )
                )
            if not (np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0):
                raise DatasetError(
                    DataProblem(
                        file="detections",
                        record=f"detection {index} (image {image_id})",
                        problem=f"box {box.tolist()} has no area",
                        kind="empty_box",
                    )
                )
            items.append(TopDownItem(by_id[image_id], -1, tuple(float(v) for v in box), score, index))
        return items

    def __len__(self) -> int:
        return len(self.items)

    def center_scale(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-augmented crop centre and size (image pixels) of sample ``index`` (fresh arrays; computed once per
        sample and cached, as they depend only on the record and the crop settings)."""
        cached = self._center_scale.get(index)
        if cached is None:
            item = self.items[index]
            p = self.records[item.record].persons[item.person] if item.person >= 0 else None
            if p is not None and p.center is not None and p.scale is not None:
                cached = geometry.mpii_center_scale(p.center, float(p.scale), self.transform.aspect_ratio)
            else:
                cached = self.transform.base_center_scale(np.asarray(item.bbox))
            self._center_scale[index] = cached
        return cached[0].copy(), cached[1].copy()

    def image_size(self, index: int) -> tuple[int, int]:
        """``(width, height)`` in pixels of the image of sample ``index``: from the record, else from the
        file header (PIL, no decode; cached), else ``(0, 0)`` when the header is unreadable."""
        ri = self.items[index].record
        r = self.records[ri]
        if r.width > 0 and r.height > 0:
            return int(r.width), int(r.height)
        if ri not in self._sizes:
            try:
                with Image.open(r.file) as im:
                    self._sizes[ri] = (int(im.size[0]), int(im.size[1]))
            except (OSError, ValueError):
                self._sizes[ri] = (0, 0)
        return self._sizes[ri]

    def load_image(self, index: int, downscale: int = 1, reuse_memory: bool = False) -> tuple[np.ndarray, bool, int]:
        """Decode the image of sample ``index``: ``(image, is_bgr, f)`` where the image is decoded at 1/f
        resolution (``f = downscale`` when possible for the default reader and a JPEG file, else 1).

        ``reuse_memory``: decode into this dataset's :class:`~lightning_pose.data.transforms.image_io.DecodeBuffer`
        (faster; the image is overwritten by the next ``load_image(..., reuse_memory=True)`` of the same thread, so
        only ``__getitem__``, which warps it at once, asks for it)."""
        r = self.records[self.items[index].record]
        buffer = self._decode_buffer if reuse_memory else None
        if self.image_reader is None:
            record = f"image {r.image_id}"
            if downscale > 1 and Path(r.file).suffix.lower() in _JPEG_SUFFIXES:
                width, height = self.image_size(index)
                if width > 0 and height > 0:
                    shape = (-(-height // downscale), -(-width // downscale))
                    img, is_bgr = read_image(r.file, record=record, downscale=downscale, buffer=buffer, shape=shape)
                    if img.shape[:2] == shape:
                        return img, is_bgr, downscale
        img, is_bgr = load_record_image(r, self.image_reader, buffer)
        return img, is_bgr, 1

    # ------------------------------------------------------------------ sample
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self.items):
            raise IndexError(f"sample index {index} out of range 0..{len(self.items) - 1}")
        self._seeder(self.transform)
        item = self.items[index]
        record = self.records[item.record]
        k = self.keypoint_set.num_keypoints
        person: PersonRecord | None = record.persons[item.person] if item.person >= 0 else None
        center, scale = self.center_scale(index)
        gt = np.zeros((k, 3), dtype=np.float64) if person is None else np.asarray(person.keypoints, np.float64)
        kp_in = gt if person is not None else None
        params = self.transform.sample_params(center, scale, kp_in)
        want = self.transform.decode_downscale(params) if self.reduced_decoding else 1
        image, is_bgr, f = self.load_image(index, want, reuse_memory=True)
        out = self.transform(
            image,
            center,
            scale,
            kp_in,
            params=params,
            bgr_input=is_bgr,
            source_downscale=f,
            image_width=self.image_size(index)[0] if f > 1 else None,
        )

        sample = {
            "image": uint8_chw_view(out.image),
            "keypoints": torch.from_numpy(out.keypoints.astype(np.float32)),
            "crop_to_image": torch.from_numpy(out.input_to_image),
        }
        sample.update(self._sample_metadata(index, gt, scale, out.params.flip))
        return sample

    def _sample_metadata(self, index: int, gt: np.ndarray, scale: np.ndarray, flipped: bool) -> dict[str, torch.Tensor]:
        """The keys of a sample besides image / keypoints / crop_to_image (see ARCHITECTURE.md): ground truth in the
        image frame, box, OKS areas (image px^2), MPII head size (0.6 x head-box diagonal, px; NaN when unknown) and
        the ids. Shared by the CPU path and the device-augmentation path (:mod:`.topdown_bytes`)."""
        item = self.items[index]
        record = self.records[item.record]
        person: PersonRecord | None = record.persons[item.person] if item.person >= 0 else None
        head_size = math.nan
        if person is not None and person.head_box is not None:
            hb = np.asarray(person.head_box, dtype=np.float64).reshape(2, 2)
            head_size = 0.6 * float(np.linalg.norm(hb[1] - hb[0]))
        return {
            "gt_keypoints": torch.from_numpy(gt.copy()),
            "bbox": _f64(item.bbox),
            "bbox_score": _f64(item.score),
            "area": _f64(float(person.area) if person is not None else 0.0),
            "crop_area": _f64(float(scale[0] * scale[1])),
            "head_size": _f64(head_size),
            "sample_id": _i64(index),
            "image_id": _i64(int(record.image_id)),
            "ann_id": _i64(item.ann_id),
            "source_index": _i64(int(person.source_index) if person is not None else -1),
            "flipped": torch.from_numpy(np.array(bool(flipped))),
        }

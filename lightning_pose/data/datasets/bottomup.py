"""``BottomUpDataset``: one sample per image with all its persons (associative-embedding style methods)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_pose.data.datasets.image_loading import load_record_image
from lightning_pose.data.datasets.seeding import WorkerSeeder
from lightning_pose.data.datasets.tensors import to_normalized_tensor
from lightning_pose.data.records import DataProblem, DatasetError, ImageRecord
from lightning_pose.data.transforms import BottomUpAugmentation, BottomUpTransform, box_polygon
from lightning_pose.skeletons import KeypointSet, get_keypoint_set

__all__ = ["BottomUpDataset", "segmentation_to_ignore"]


def segmentation_to_ignore(segmentation: Any, height: int, width: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    """COCO ``segmentation`` -> ``(polygons, mask)`` for the bottom-up ignore mask.

    Polygons (a list of flat ``[x0, y0, x1, y1, ...]`` lists, image pixels) are returned as ``(M, 2)``
    arrays; RLE (``{"counts", "size"}``, compressed or not, as used for crowds) is decoded with
    pycocotools into an ``(H, W)`` uint8 mask. Returns ``([], None)`` for empty / unknown input.
    """
    if isinstance(segmentation, list):
        polys = []
        for poly in segmentation:
            arr = np.asarray(poly, dtype=np.float64).reshape(-1)
            if arr.size >= 6 and arr.size % 2 == 0 and np.all(np.isfinite(arr)):
                polys.append(arr.reshape(-1, 2))
        return polys, None
    if isinstance(segmentation, dict) and "counts" in segmentation:
        from pycocotools import mask as mask_utils

        rle = segmentation
        if isinstance(rle["counts"], list):
            rle = mask_utils.frPyObjects(rle, height, width)
        m = mask_utils.decode(rle)
        if m.ndim == 3:
            m = m.max(axis=2)
        if m.shape != (height, width):
            return [], None
        return [], m.astype(np.uint8)
    return [], None


class BottomUpDataset(Dataset):
    """Whole images with every person.

    Persons to learn: non-crowd persons with at least one labelled keypoint, most keypoints first, at most
    ``max_persons`` (the rest are masked out like crowds, with a warning once). Ignored regions (mask 0):
    crowd annotations and persons without keypoints — their COCO segmentation when given in
    ``segmentations`` (polygons or RLE), else their box.

    Sample dict: ``image`` float32 ``(3, H_in, W_in)`` (ImageNet-normalised RGB), ``keypoints`` float32
    ``(max_persons, K, 3)`` in the input frame, padded with zeros (v = 0), ``num_persons`` int64 ``()``,
    ``mask`` uint8 ``(H_in, W_in)`` (1 = learn, 0 = ignore), ``image_to_input`` / ``input_to_image``
    float64 ``(2, 3)``, ``image_id`` int64 ``()``, ``sample_id`` int64 ``()`` (dataset index).

    Args:
        records: image records.
        keypoint_set: keypoint set of the records.
        input_size: ``(W_in, H_in)`` pixels.
        augmentation: :class:`BottomUpAugmentation` or mapping; ``None`` = resize + pad only.
        image_reader: ``path -> (H, W, 3) uint8 RGB``; default ``cv2.imread``.
        max_persons: padding size N_max of ``keypoints``.
        train: ``True`` keeps only images with at least one person to learn; default: augmentation enabled.
        segmentations: optional ``{annotation id: COCO segmentation}`` for precise ignore regions.
        seed: base seed of the augmentation stream.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        keypoint_set: str | Mapping[str, Any] | KeypointSet,
        input_size: Sequence[int] = (512, 512),
        augmentation: BottomUpAugmentation | Mapping[str, Any] | None = None,
        image_reader: Callable[[Path], np.ndarray] | None = None,
        *,
        max_persons: int = 30,
        train: bool | None = None,
        segmentations: Mapping[int, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.keypoint_set = get_keypoint_set(keypoint_set)  # type: ignore[arg-type]
        self.transform = BottomUpTransform(self.keypoint_set, input_size, augmentation, seed=seed)
        self.input_size = self.transform.input_size
        self.image_reader = image_reader
        self.max_persons = int(max_persons)
        if self.max_persons < 1:
            raise ValueError(f"max_persons must be >= 1, got {max_persons}")
        self.train = self.transform.augmentation.enabled if train is None else bool(train)
        self.segmentations = dict(segmentations or {})
        self._seeder = WorkerSeeder(seed)
        self._warned_truncation = False
        k = self.keypoint_set.num_keypoints
        for r in records:
            for j, p in enumerate(r.persons):
                if np.shape(p.keypoints) != (k, 3):
                    raise DatasetError(
                        DataProblem(
                            file=str(r.file),
                            record=f"annotation {p.id} (image {r.image_id}, person {j})",
                            problem=f"keypoints have shape {np.shape(p.keypoints)}, expected ({k}, 3)",
                            kind="keypoint_count",
                        )
                    )
        all_records = list(records)
        if self.train:
            all_records = [r for r in all_records if any(not p.iscrowd and p.num_keypoints > 0 for p in r.persons)]
        self.records = all_records

    def set_epoch(self, epoch: int) -> None:
        """Key the augmentation stream on the training epoch (0-based; see :mod:`.seeding`), so that a resumed
        run draws what an uninterrupted one draws. Takes effect in DataLoader workers created afterwards (not
        in persistent workers that already exist)."""
        self._seeder.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, record: ImageRecord) -> tuple[np.ndarray, bool]:
        return load_record_image(record, self.image_reader)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self.records):
            raise IndexError(f"sample index {index} out of range 0..{len(self.records) - 1}")
        self._seeder(self.transform)
        record = self.records[index]
        image, is_bgr = self._load(record)
        h, w = image.shape[:2]
        k = self.keypoint_set.num_keypoints

        learn = [p for p in record.persons if not p.iscrowd and p.num_keypoints > 0]
        learn.sort(key=lambda p: -p.num_keypoints)
        ignore = [p for p in record.persons if p.iscrowd or p.num_keypoints == 0]
        if len(learn) > self.max_persons:
            if not self._warned_truncation:
                warnings.warn(
                    f"{record.file}: image {record.image_id} has {len(learn)} persons with keypoints; "
                    f"keeping {self.max_persons} (max_persons), masking the rest",
                    stacklevel=2,
                )
                self._warned_truncation = True
            ignore += learn[self.max_persons :]
            learn = learn[: self.max_persons]

        polygons: list[np.ndarray] = []
        ignore_mask: np.ndarray | None = None
        for p in ignore:
            seg_polys, seg_mask = segmentation_to_ignore(self.segmentations.get(int(p.id)), h, w)
            if seg_mask is not None:
                ignore_mask = seg_mask if ignore_mask is None else np.maximum(ignore_mask, seg_mask)
            elif seg_polys:
                polygons.extend(seg_polys)
            elif np.all(np.isfinite(p.bbox)) and p.bbox[2] > 0 and p.bbox[3] > 0:
                polygons.append(box_polygon(p.bbox))

        kp = np.stack([np.asarray(p.keypoints, np.float64) for p in learn]) if learn else np.zeros((0, k, 3))
        out = self.transform(image, kp, polygons, ignore_mask, bgr_input=is_bgr)
        padded = np.zeros((self.max_persons, k, 3), dtype=np.float32)
        padded[: len(learn)] = out.keypoints
        return {
            "image": to_normalized_tensor(out.image),
            "keypoints": torch.from_numpy(padded),
            "num_persons": torch.tensor(len(learn), dtype=torch.int64),
            "mask": torch.from_numpy(out.mask),
            "image_to_input": torch.from_numpy(out.image_to_input),
            "input_to_image": torch.from_numpy(out.input_to_image),
            "image_id": torch.tensor(int(record.image_id), dtype=torch.int64),
            "sample_id": torch.tensor(index, dtype=torch.int64),
        }

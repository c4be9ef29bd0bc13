"""Run a trained model on whole images: person boxes -> crops -> keypoints in image pixels.

:class:`PosePredictor` wraps a loaded task (``lightning_pose.load(ckpt)`` returns one). For a top-down model each
person box ``x, y, w, h`` (0-based image pixels) is cropped exactly as at validation time (box grown to the input
aspect ratio, padded by 1.25, warped to ``input_size``), the network runs on batches of crops (flip test as
configured in the checkpoint), the input-frame keypoints are mapped back with each crop's ``crop_to_image`` matrix,
and the instances are rescored (``box score x mean keypoint score above 0.2``) and OKS-NMS'ed per image.
A bottom-up model (``task.is_bottomup``) gets the whole images through ``task.infer_bottomup`` and needs no boxes.

Images are ``(H, W, 3)`` uint8 **RGB** arrays (or paths, decoded with cv2). Every returned coordinate is in pixels of
the original image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["PosePredictor", "ImagePoses", "load"]


@dataclass
class ImagePoses:
    """The people found in one image.

    Attributes:
        keypoints: ``(N, K, 3)`` float64: x, y in original-image pixels (0-based) and the keypoint score.
        scores: ``(N,)`` instance scores (rescored box score for top-down, the model's score for bottom-up).
        boxes: ``(N, 4)`` the person boxes ``x, y, w, h`` in image pixels the crops were built from (bottom-up:
            the keypoints' extent).
        box_scores: ``(N,)`` the detector / box-file scores (1.0 for given boxes without score).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def select(self, keep: np.ndarray) -> ImagePoses:
        """The people where the boolean ``(N,)`` mask ``keep`` is true, in their order."""
        keep = np.asarray(keep, dtype=bool)
        box_scores = self.box_scores[keep] if self.box_scores.shape[0] == len(self) else self.box_scores
        return ImagePoses(self.keypoints[keep], self.scores[keep], self.boxes[keep], box_scores)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"keypoints": self.keypoints, "scores": self.scores, "boxes": self.boxes, "box_scores": self.box_scores}


def _as_rgb(image: Any, index: int) -> np.ndarray:
    if isinstance(image, (str, Path)):
        from lightning_pose.data.transforms.image_io import read_image_rgb

        return read_image_rgb(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image {index}: expected an (H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}")
    return arr


def _as_boxes(boxes: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] in (4, 5):
        arr = arr[None]
    if arr.size == 0:
        return np.zeros((0, 4)), np.zeros(0)
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise ValueError(f"image {index}: boxes must be (N, 4) x, y, w, h or (N, 5) with a score, got {arr.shape}")
    if not np.isfinite(arr).all() or (arr[:, 2] <= 0).any() or (arr[:, 3] <= 0).any():
        raise ValueError(f"image {index}: boxes need finite values and w, h > 0, got {arr[:, :4].tolist()}")
    scores = arr[:, 4].copy() if arr.shape[1] == 5 else np.ones(arr.shape[0])
    return arr[:, :4].copy(), scores


def whole_image_box(image: np.ndarray) -> np.ndarray:
    """The box ``[0, 0, W, H]`` covering the whole image (``x, y, w, h`` image pixels)."""
    h, w = image.shape[:2]
    return np.array([[0.0, 0.0, float(w), float(h)]])


class PosePredictor:
    """Keypoints of the people in whole images, from a loaded task.

    Args:
        task: a :class:`~lightning_pose.tasks.base.PoseTask` (or a bottom-up task with ``infer_bottomup``).
        device: torch device for the network (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        batch_size: crops per forward pass.
        flip_test: override the checkpoint's flip-test setting (``None`` keeps it).
        nms_threshold: OKS above which the lower-scored of two people in one image is dropped (``None``: no NMS).
        keypoint_score_threshold: keypoint scores above it count in the instance rescoring (0.2 as HRNet/mmpose).
        person_score_threshold: people whose instance score (``ImagePoses.scores``) is below it are dropped, in
            both modes (top-down: the rescored box score; bottom-up: the grouping's person score). ``0`` keeps
            everyone, as COCO AP needs.
    """

    def __init__(
        self,
        task: Any,
        device: str = "cpu",
        batch_size: int = 32,
        flip_test: bool | None = None,
        nms_threshold: float | None = 0.9,
        keypoint_score_threshold: float = 0.2,
        person_score_threshold: float = 0.0,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.task = task.to(self.device).eval()
        self.batch_size = int(batch_size)
        self.flip_test = flip_test
        self.nms_threshold = nms_threshold
        self.keypoint_score_threshold = float(keypoint_score_threshold)
        self.person_score_threshold = float(person_score_threshold)
        self._transform = None

    # ------------------------------------------------------------------ properties
    @property
    def keypoint_set(self) -> Any:
        return self.task.keypoint_set

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(W, H)`` in pixels."""
        return tuple(self.task.input_size)

    @property
    def is_bottomup(self) -> bool:
        return bool(getattr(self.task, "is_bottomup", False))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", **kwargs: Any) -> "PosePredictor":
        """Load ``path`` (any lightning_pose task, no config needed) and wrap it."""
        from lightning_pose.tasks.checkpoint import task_from_checkpoint

        return cls(task_from_checkpoint(path, map_location="cpu"), device=device, **kwargs)

    # ------------------------------------------------------------------ top-down pieces
    def _crop_transform(self) -> Any:
        if self._transform is None:
            from lightning_pose.data.transforms import TopDownTransform

            self._transform = TopDownTransform(self.keypoint_set, self.input_size, augmentation=None)
        return self._transform

    def make_crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network inputs of the person ``boxes`` of one RGB image.

        Returns:
            ``crops (N, 3, H_in, W_in)`` float32 ImageNet-normalised, ``crop_to_image (N, 2, 3)`` float64 and the
            crop areas ``(N,)`` (product of the padded crop box sides, image px^2; the OKS-NMS scale).
        """
        from lightning_pose.data.transforms.image_io import normalize_image

        transform = self._crop_transform()
        w_in, h_in = self.input_size
        crops = np.zeros((len(boxes), 3, h_in, w_in), dtype=np.float32)
        mats = np.zeros((len(boxes), 2, 3), dtype=np.float64)
        areas = np.zeros(len(boxes), dtype=np.float64)
        for i, box in enumerate(boxes):
            center, scale = transform.base_center_scale(box)
            res = transform(image, center, scale)
            crops[i] = normalize_image(res.image)
            mats[i] = res.crop_to_image
            areas[i] = float(scale[0] * scale[1])
        return crops, mats, areas

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input-frame keypoints ``(N, K, 2)`` (pixels of the crop) and scores ``(N, K)`` for normalised crops."""
        import torch

        coords, scores = [], []
        for start in range(0, len(crops), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(crops[start : start + self.batch_size])).to(self.device)
            with torch.inference_mode():
                c, s = self.task.predict_keypoints(batch, flip_test=self.flip_test)
            coords.append(c.double().cpu().numpy())
            scores.append(s.double().cpu().numpy())
        k = self.keypoint_set.num_keypoints
        if not coords:
            return np.zeros((0, k, 2)), np.zeros((0, k))
        return np.concatenate(coords), np.concatenate(scores)

    def _postprocess(
        self, kpts: np.ndarray, kscores: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray, areas: np.ndarray
    ) -> ImagePoses:
        from lightning_pose.evaluation.nms import oks_nms, rescore

        inst = rescore(box_scores, kscores, thr=self.keypoint_score_threshold) if len(boxes) else np.zeros(0)
        keep = np.arange(len(boxes))
        sigmas = self.keypoint_set.sigmas
        if self.nms_threshold is not None and len(boxes) > 1 and sigmas is not None:
            keep = np.sort(oks_nms(kpts, inst, areas, np.asarray(sigmas), thr=float(self.nms_threshold)))
        full = np.concatenate([kpts, kscores[..., None]], axis=-1)
        return ImagePoses(full[keep], inst[keep], boxes[keep], box_scores[keep])

    # ------------------------------------------------------------------ public API
    def predict_image(self, image: np.ndarray, boxes: Any = None) -> ImagePoses:
        """People in one ``(H, W, 3)`` uint8 RGB image; ``boxes`` ``(N, 4|5)`` (``None``: the whole image)."""
        return self.predict_batch([image], None if boxes is None else [boxes])[0]

    def predict_batch(self, images: Sequence[np.ndarray], boxes: Sequence[Any] | None = None) -> list[ImagePoses]:
        """People in several RGB images; ``boxes[i]`` are image ``i``'s person boxes (``None`` entries or
        ``boxes=None``: the whole image). Crops of all images share the forward passes."""
        people = self._predict_bottomup(images) if self.is_bottomup else self._predict_topdown(images, boxes)
        if self.person_score_threshold > 0:
            people = [p.select(p.scores >= self.person_score_threshold) for p in people]
        return people

    def _predict_topdown(self, images: Sequence[np.ndarray], boxes: Sequence[Any] | None) -> list[ImagePoses]:
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"got {len(boxes)} box lists for {len(images)} images")
        per_image = []
        all_crops, spans = [], []
        for i, image in enumerate(images):
            given = None if boxes is None else boxes[i]
            b, s = (whole_image_box(image), np.ones(1)) if given is None else _as_boxes(given, i)
            crops, mats, areas = self.make_crops(image, b)
            per_image.append((b, s, mats, areas))
            spans.append((sum(len(c) for c in all_crops), len(b)))
            all_crops.append(crops)
        w_in, h_in = self.input_size
        crops = np.concatenate(all_crops) if all_crops else np.zeros((0, 3, h_in, w_in), np.float32)
        coords_in, kscores = self.predict_crops(crops)
        out = []
        for (start, n), (b, s, mats, areas) in zip(spans, per_image):
            c = coords_in[start : start + n]
            img = np.einsum("nij,nkj->nki", mats[:, :, :2], c) + mats[:, None, :, 2]
            out.append(self._postprocess(img, kscores[start : start + n], b, s, areas))
        return out

    def _predict_bottomup(self, images: Sequence[np.ndarray]) -> list[ImagePoses]:
        results = self.task.infer_bottomup(list(images))
        if len(results) != len(images):
            raise RuntimeError(f"infer_bottomup returned {len(results)} results for {len(images)} images")
        out = []
        k = self.keypoint_set.num_keypoints
        for r in results:
            kp = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, k, 3)
            sc = np.asarray(r["scores"], dtype=np.float64).reshape(-1)
            boxes = np.zeros((len(kp), 4))
            for j, person in enumerate(kp):
                xy = person[:, :2][np.isfinite(person[:, :2]).all(axis=1)]
                if len(xy):
                    lo, hi = xy.min(axis=0), xy.max(axis=0)
                    boxes[j] = [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]
            out.append(ImagePoses(kp, sc, boxes, np.ones(len(kp))))
        return out

    def predict(self, images: Any, boxes: Any = None) -> Any:
        """Keypoints and scores in image pixels.

        Args:
            images: one image (``(H, W, 3)`` uint8 RGB array or a file path) or a list of them.
            boxes: for one image ``(N, 4)`` ``x, y, w, h`` (or ``(N, 5)`` with a score) in image pixels; for a list,
                one such array (or ``None``) per image; ``None``: the whole image is the person box.
                Ignored (with a warning) by bottom-up models.

        Returns:
            For one image a dict ``{"keypoints": (N, K, 3) x, y, score, "scores": (N,), "boxes": (N, 4),
            "box_scores": (N,)}``; for a list, a list of such dicts.
        """
        single = isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim == 3)
        imgs = [images] if single else list(images)
        arrays = [_as_rgb(im, i) for i, im in enumerate(imgs)]
        box_list = None
        if boxes is not None:
            if self.is_bottomup:
                import warnings

                warnings.warn("bottom-up model: the given boxes are ignored", UserWarning, stacklevel=2)
            else:
                box_list = [boxes] if single else list(boxes)
        res = [r.as_dict() for r in self.predict_batch(arrays, box_list)]
        return res[0] if single else res

    def __call__(self, images: Any, boxes: Any = None) -> Any:
        return self.predict(images, boxes)


def load(checkpoint: str | Path, device: str = "cpu", **kwargs: Any) -> PosePredictor:
    """A :class:`PosePredictor` for ``checkpoint`` (see :meth:`PosePredictor.from_checkpoint`)."""
    return PosePredictor.from_checkpoint(checkpoint, device=device, **kwargs)


def iter_batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

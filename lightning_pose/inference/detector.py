"""Person boxes from a torchvision detection model (``predict --detector fasterrcnn_resnet50_fpn``).

Weights: ``weights=None`` (default) asks torchvision for the model's default COCO weights, which it downloads into
the torch hub cache on first use (offline without a cached copy: one clear error line); ``weights=FILE`` loads a
local state dict (``weights_only``); ``weights="random"`` builds the network with random weights (only to test the
wiring, its boxes are meaningless). Boxes are returned as ``x, y, w, h`` in image pixels with the detector score,
persons only (COCO label 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lightning_pose.errors import PoseUserError

__all__ = ["DETECTORS", "DetectorError", "PersonDetector", "build_detector"]

#: torchvision detection builders whose label 1 is the COCO person
DETECTORS = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssd300_vgg16",
    "ssdlite320_mobilenet_v3_large",
    "maskrcnn_resnet50_fpn",
    "keypointrcnn_resnet50_fpn",
)
PERSON_LABEL = 1


class DetectorError(PoseUserError, ValueError):
    """A person detector that cannot be built (unknown name, weights unavailable offline, bad weight file)."""


def build_detector(name: str, weights: str | Path | None = None, **kwargs: Any) -> Any:
    """The torchvision detection model ``name`` in eval mode (see the module docstring for ``weights``);
    ``kwargs`` go to the builder (e.g. ``min_size``, ``box_score_thresh``)."""
    import torch
    import torchvision.models.detection as tvd

    if name not in DETECTORS:
        raise DetectorError(f"--detector {name}: unknown; choose one of {', '.join(DETECTORS)}")
    builder = getattr(tvd, name)
    if weights is not None and str(weights) == "random":
        return builder(weights=None, weights_backbone=None, **kwargs).eval()
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DetectorError(f"--detector-weights {path}: no such file")
        model = builder(weights=None, weights_backbone=None, **kwargs)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one user error
            raise DetectorError(
                f"--detector-weights {path}: cannot be read ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''})"
            ) from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise DetectorError(
                f"--detector-weights {path}: does not fit {name} ({str(exc).splitlines()[0][:200]})"
            ) from None
        return model.eval()
    try:
        return builder(weights="DEFAULT", **kwargs).eval()
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise DetectorError(
            f"--detector {name}: its weights are not in the torch hub cache and could not be downloaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); pass a local file "
            "with --detector-weights FILE, or use --boxes FILE / --boxes image"
        ) from None


class PersonDetector:
    """Person boxes of RGB images from a torchvision detection model.

    Args:
        model: a torchvision detection model (``build_detector``) returning ``boxes`` (x1, y1, x2, y2), ``labels``
            and ``scores`` per image.
        device: torch device.
        score_threshold: keep persons with ``score >= score_threshold``.
    """

    def __init__(self, model: Any, device: str = "cpu", score_threshold: float = 0.0) -> None:
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.score_threshold = float(score_threshold)

    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``(N, 5)`` float64 ``x, y, w, h, score`` per ``(H, W, 3)`` uint8 RGB image (image pixels)."""
        import torch

        tensors = [
            torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255.0).to(self.device)
            for im in images
        ]
        if not tensors:
            return []
        with torch.inference_mode():
            outputs = self.model(tensors)
        result = []
        for out in outputs:
            boxes = out["boxes"].double().cpu().numpy().reshape(-1, 4)
            scores = out["scores"].double().cpu().numpy().reshape(-1)
            labels = out["labels"].cpu().numpy().reshape(-1)
            keep = (labels == PERSON_LABEL) & (scores >= self.score_threshold)
            keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            b, s = boxes[keep], scores[keep]
            xywh = (
                np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], s], axis=1)
                if len(b)
                else np.zeros((0, 5))
            )
            result.append(xywh)
        return result

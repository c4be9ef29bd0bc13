"""lightning_pose: train, evaluate and compare 2D human pose estimation methods.

Importing the package is cheap (no torch); import the subpackages you need.

``lightning_pose.load(ckpt)`` returns a predictor for a trained checkpoint (torch is imported then)::

    model = lightning_pose.load("best.ckpt")
    people = model.predict(image_rgb)            # {"keypoints": (N, K, 3) image px + score, "scores": (N,), ...}
"""

from __future__ import annotations

from typing import Any

from lightning_pose._version import __version__

__all__ = ["load", "__version__"]


def load(checkpoint: Any, device: str = "cpu", **kwargs: Any) -> Any:
    """Load a trained checkpoint (any method, no config file needed) as a
    :class:`~lightning_pose.inference.PosePredictor`; ``predict(images, boxes=None)`` gives keypoints and scores in
    image pixels. ``kwargs``: ``batch_size``, ``flip_test``, ``nms_threshold`` (see the predictor)."""
    from lightning_pose.inference.predictor import load as _load

    return _load(checkpoint, device=device, **kwargs)

"""Using a trained model: :func:`load` a checkpoint into a :class:`PosePredictor`, ``lightning-pose predict
--source`` on images, folders, globs and videos (:mod:`lightning_pose.inference.cli`)."""

from lightning_pose.inference.predictor import ImagePoses, PosePredictor, load

__all__ = ["PosePredictor", "ImagePoses", "load"]

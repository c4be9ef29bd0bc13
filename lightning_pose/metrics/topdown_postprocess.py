"""Moved to :mod:`lightning_pose.evaluation.topdown_postprocess` (numpy only, part of the torch-free core);
re-exported here for old imports."""

from lightning_pose.evaluation.topdown_postprocess import TopDownDetections, postprocess_topdown

__all__ = ["TopDownDetections", "postprocess_topdown"]

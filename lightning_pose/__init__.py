"""lightning_pose: train, evaluate and compare 2D human pose estimation methods.

Importing the package is cheap (no torch); import the subpackages you need.
"""

__version__ = "0.1.0"

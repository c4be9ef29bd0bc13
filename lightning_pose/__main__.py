"""``python -m lightning_pose`` = the ``lightning-pose`` command."""

from lightning_pose.cli import main

main()

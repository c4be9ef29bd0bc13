"""A callback that kills its own process with SIGKILL, for kill-and-resume tests: no cleanup runs (W&B is not
finished, nothing is written on the way out), exactly as with ``kill -9`` or a lost node.

It is armed by the environment, not by its arguments, so that the killed run, its resumption and an uninterrupted
run all have the same resolved config: ``LIGHTNING_POSE_TEST_KILL_AT_EPOCH=N`` kills the process when epoch ``N``
(0-based) starts, i.e. right after the epoch-end checkpoints of epoch ``N - 1`` were written.
"""

from __future__ import annotations

import os
import signal

from lightning.pytorch import Callback

ENV = "LIGHTNING_POSE_TEST_KILL_AT_EPOCH"


class KillAtEpochStart(Callback):
    """SIGKILL this process at the start of epoch ``$LIGHTNING_POSE_TEST_KILL_AT_EPOCH`` (unset: never)."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        epoch = os.environ.get(ENV)
        if epoch is not None and trainer.current_epoch == int(epoch):
            os.kill(os.getpid(), signal.SIGKILL)

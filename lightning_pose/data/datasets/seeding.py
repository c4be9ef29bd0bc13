"""Per-worker random streams for augmentation.

Each dataset owns a transform with its own numpy generator. The stream is (re)seeded whenever
``torch.initial_seed()`` changes: in a DataLoader worker that value is ``base_seed + worker_id`` with a
``base_seed`` drawn anew for every epoch (unless workers are persistent), so workers never share a
stream and epochs differ; in the main process it is the process seed (``seed_everything``), so runs
are reproducible.

The training epoch is mixed in too once :meth:`WorkerSeeder.set_epoch` is called (the datasets' ``set_epoch``, called
by :class:`~lightning_pose.callbacks.resume.ResumeState` at every epoch start): the stream of an epoch then depends
only on the seeds and the epoch number, not on how many samples an earlier epoch drew in this process, so a run
resumed from a checkpoint draws the same augmentation as an uninterrupted one (also with ``num_workers: 0``).
Epoch 0 gives the seeds of a seeder that is never told the epoch.
"""

from __future__ import annotations

from typing import Protocol

import torch

__all__ = ["WorkerSeeder"]


class _Reseedable(Protocol):
    def reseed(self, seed: int) -> None: ...


class WorkerSeeder:
    """Calls ``transform.reseed`` with a seed mixed from ``base_seed`` and ``torch.initial_seed()``
    whenever the latter changes (cheap to call for every sample)."""

    #: odd 64-bit multiplier spreading the epoch number over the seed space
    _EPOCH_MIX = 0x9E3779B97F4A7C15

    def __init__(self, base_seed: int = 0) -> None:
        self.base_seed = int(base_seed)
        self.epoch = 0
        self._key: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Key the stream on the training epoch (0-based) as well: the next sample reseeds when it changed."""
        self.epoch = int(epoch)

    def __call__(self, transform: _Reseedable) -> None:
        key = (int(torch.initial_seed()), self.epoch)
        if key != self._key:
            self._key = key
            transform.reseed((self.base_seed * 1_000_003 + key[0] + key[1] * self._EPOCH_MIX) % (2**63))

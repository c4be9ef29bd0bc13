"""Per-worker random streams for augmentation.

Each dataset owns a transform with its own numpy generator. The stream is (re)seeded whenever
``torch.initial_seed()`` changes: in a DataLoader worker that value is ``base_seed + worker_id`` with a
``base_seed`` drawn anew for every epoch (unless workers are persistent), so workers never share a
stream and epochs differ; in the main process it is the process seed (``seed_everything``), so runs
are reproducible.
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

    def __init__(self, base_seed: int = 0) -> None:
        self.base_seed = int(base_seed)
        self._key: int | None = None

    def __call__(self, transform: _Reseedable) -> None:
        key = int(torch.initial_seed())
        if key != self._key:
            self._key = key
            transform.reseed((self.base_seed * 1_000_003 + key) % (2**63))

"""Shared machinery of the DDP-safe metric wrappers: 1-D float64 cat states and sample-id de-duplication.

Why (docs/metrics.md#distributed-evaluation): torchmetrics concatenates list states across ranks and gives a rank that never called
``update`` a 1-D placeholder of ``self.dtype``. Storing **every** state as a flat float64 vector (reshaped in
``compute`` with the known K) makes an empty rank harmless, and ids up to 2**53 stay exact. DistributedSampler
padding repeats samples, so ``compute`` keeps the first occurrence of each ``sample_id`` and sorts by id, which
makes the result independent of the world size.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

__all__ = ["SampleStateMetric", "batch_array", "first_occurrence_sorted"]


def batch_array(batch: Mapping[str, Any], key: str, owner: str) -> np.ndarray:
    """``batch[key]`` as a float64 numpy array (detached, on CPU); a missing key raises a clear ``KeyError``."""
    if key not in batch:
        raise KeyError(
            f"{owner}.update: the batch has no {key!r} (keys: {sorted(batch)}); "
            "see the top-down sample table in ARCHITECTURE.md"
        )
    value = batch[key]
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def first_occurrence_sorted(ids: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct id, ordered by increasing id."""
    _, first = np.unique(np.asarray(ids), return_index=True)
    return first


class SampleStateMetric(Metric):
    """Base class: per-sample values kept as flat float64 ``cat`` states, de-duplicated by ``sample_id``."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, state_names: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._global_cache: tuple[int, dict[str, np.ndarray]] | None = None
        self._state_names = tuple(state_names)
        for name in self._state_names:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    @property
    def dtype(self) -> torch.dtype:
        """Always float64: the dtype torchmetrics uses for an empty rank's placeholder (must match the states)."""
        return torch.float64

    @contextmanager
    def synced(self) -> Iterator[None]:
        """Gather the states of every rank for the duration of the block (no-op outside DDP or when already
        synced, e.g. inside ``compute``). Under DDP this is a collective: every rank must enter it."""
        if self._is_synced:
            yield
            return
        with self.sync_context():
            yield

    def _global_samples(self, per_sample: Mapping[str, int]) -> dict[str, np.ndarray]:
        """:meth:`_unique_samples` over **all ranks**, for the export methods.

        ``compute()`` leaves a copy of the global, de-duplicated samples behind; as long as no ``update`` came
        after it, that copy is used, so exporting after ``compute()`` is **not** a collective (rank 0 alone may
        call it). Otherwise the states are synced here, which under DDP every rank must do together.
        """
        cache = self._global_cache
        if (
            not self._is_synced
            and cache is not None
            and cache[0] == self._update_count
            and all(k in cache[1] for k in per_sample)
        ):
            return {k: cache[1][k] for k in (*per_sample, "sample_id")}
        with self.synced():
            return self._unique_samples(per_sample)

    def _append(self, name: str, values: np.ndarray) -> None:
        flat = torch.as_tensor(np.ascontiguousarray(values, dtype=np.float64).reshape(-1), device=self.device)
        getattr(self, name).append(flat)

    def _state(self, name: str) -> np.ndarray:
        """The (synced) state as a 1-D float64 numpy array (empty if nothing was stored)."""
        value = getattr(self, name)
        if isinstance(value, list):
            if not value:
                return np.zeros(0, dtype=np.float64)
            value = dim_zero_cat(value)
        return value.detach().to("cpu", torch.float64).numpy().reshape(-1)

    def _unique_samples(self, per_sample: Mapping[str, int]) -> dict[str, np.ndarray]:
        """All states reshaped to ``(N, width)`` (``width`` 1 -> ``(N,)``), de-duplicated by ``sample_id``
        (first occurrence kept) and sorted by ``sample_id``."""
        ids = self._state("sample_id")
        n = ids.shape[0]
        out: dict[str, np.ndarray] = {}
        for name, width in per_sample.items():
            arr = self._state(name)
            if arr.shape[0] != n * width:
                raise RuntimeError(
                    f"{type(self).__name__}: state {name!r} holds {arr.shape[0]} values for {n} "
                    f"samples x {width}; the states are out of step"
                )
            out[name] = arr.reshape(n, width) if width != 1 else arr
        keep = first_occurrence_sorted(ids)
        result = {name: arr[keep] for name, arr in out.items()} | {"sample_id": ids[keep]}
        if self._is_synced or not self._distributed():
            self._global_cache = (self._update_count, result)
        return result

    def _distributed(self) -> bool:
        fn = self.distributed_available_fn
        return bool(fn()) if callable(fn) else False

    def reset(self) -> None:
        super().reset()
        self._global_cache = None

    # ---------------------------------------------------------------------------- exports (native file formats)
    def export_file_names(self, split: str) -> list[str]:
        """Names of the files :meth:`write_exports` writes for ``split``, in order (none by default)."""
        return []

    def write_exports(self, out_dir: Path, split: str) -> list[Path]:
        """Write what this metric evaluated (call before ``reset``) to ``out_dir`` in its dataset's native
        format(s), atomically; returns the written paths (those of :meth:`export_file_names`)."""
        return []

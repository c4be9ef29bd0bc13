"""The Trainer class of the ``lightning-pose`` command: Lightning's ``Trainer`` with the batch-limit options typed so
that the command line and configs read an integer as a number of batches.

Lightning declares ``limit_{train,val,test,predict}_batches`` as ``float | int | None``; a config parser that tries
the types in order (jsonargparse, used by ``LightningCLI``) turns ``--trainer.limit_train_batches 1`` into ``1.0``,
i.e. 100 % of the batches. Here the same options are ``int | float | None``: ``1`` means one batch, ``0.5`` half of
them, ``1.0`` all of them, exactly as when the Trainer is built in Python. ``val_check_interval`` already reads
integers first in Lightning's own signature.

``precision`` also takes ``"auto"`` (:func:`resolve_precision`): bf16 mixed precision where the hardware computes
bfloat16 natively (a CUDA GPU with bf16, or a CPU with AMX-BF16 / AVX512-BF16 matrix instructions, where it runs
convolutions ~2x faster than float32), float32 everywhere else (on a CPU without them, bf16 is emulated and slower).
Nothing else differs from :class:`lightning.pytorch.Trainer`.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.connectors.accelerator_connector import _PRECISION_INPUT

__all__ = ["PoseTrainer", "resolve_precision", "cpu_has_native_bf16"]


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bfloat16 matrix instructions (Intel AMX-BF16 tiles or AVX512-BF16), i.e. oneDNN runs
    bf16 convolutions natively rather than by emulation."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(check()) for check in checks if callable(check))


def resolve_precision(precision: Any, accelerator: Any = "auto") -> Any:
    """``precision`` unchanged unless it is ``"auto"``; then ``"bf16-mixed"`` on a CUDA device that supports bf16
    (``accelerator`` ``gpu``/``cuda``/``auto`` with CUDA available) or on a CPU run (any other accelerator) whose CPU
    has native bf16 (:func:`cpu_has_native_bf16`), else ``"32-true"``."""
    if precision != "auto":
        return precision
    name = str(accelerator if isinstance(accelerator, str) else type(accelerator).__name__).lower()
    on_cuda = torch.cuda.is_available() and (name in ("auto", "gpu", "cuda") or "cuda" in name)
    if on_cuda:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


class PoseTrainer(Trainer):
    """``lightning.pytorch.Trainer`` whose ``limit_*_batches`` read integers as batch counts (see module docstring).

    Args:
        limit_train_batches: training batches per epoch (``int``) or fraction of them (``float`` in [0, 1]).
        limit_val_batches: validation batches per run (``int``) or fraction (``float``).
        limit_test_batches: test batches (``int``) or fraction (``float``).
        limit_predict_batches: prediction batches (``int``) or fraction (``float``).
        precision: any Lightning precision, or ``"auto"`` (:func:`resolve_precision`).
        **kwargs: every other :class:`lightning.pytorch.Trainer` argument.
    """

    def __init__(
        self,
        *,
        limit_train_batches: Union[int, float, None] = None,
        limit_val_batches: Union[int, float, None] = None,
        limit_test_batches: Union[int, float, None] = None,
        limit_predict_batches: Union[int, float, None] = None,
        precision: Union[_PRECISION_INPUT, Literal["auto"], None] = None,
        **kwargs: Any,
    ) -> None:
        self.requested_precision = precision
        super().__init__(
            precision=resolve_precision(precision, kwargs.get("accelerator", "auto")),
            limit_train_batches=limit_train_batches,
            limit_val_batches=limit_val_batches,
            limit_test_batches=limit_test_batches,
            limit_predict_batches=limit_predict_batches,
            **kwargs,
        )

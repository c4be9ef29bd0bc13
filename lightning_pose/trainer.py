"""The Trainer class of the ``lightning-pose`` command: Lightning's ``Trainer`` with the batch-limit options typed so
that the command line and configs read an integer as a number of batches.

Lightning declares ``limit_{train,val,test,predict}_batches`` as ``float | int | None``; a config parser that tries
the types in order (jsonargparse, used by ``LightningCLI``) turns ``--trainer.limit_train_batches 1`` into ``1.0``,
i.e. 100 % of the batches. Here the same options are ``int | float | None``: ``1`` means one batch, ``0.5`` half of
them, ``1.0`` all of them, exactly as when the Trainer is built in Python. ``val_check_interval`` already reads
integers first in Lightning's own signature. Nothing else differs from :class:`lightning.pytorch.Trainer`.
"""

from __future__ import annotations

from typing import Any, Union

from lightning.pytorch import Trainer

__all__ = ["PoseTrainer"]


class PoseTrainer(Trainer):
    """``lightning.pytorch.Trainer`` whose ``limit_*_batches`` read integers as batch counts (see module docstring).

    Args:
        limit_train_batches: training batches per epoch (``int``) or fraction of them (``float`` in [0, 1]).
        limit_val_batches: validation batches per run (``int``) or fraction (``float``).
        limit_test_batches: test batches (``int``) or fraction (``float``).
        limit_predict_batches: prediction batches (``int``) or fraction (``float``).
        **kwargs: every other :class:`lightning.pytorch.Trainer` argument.
    """

    def __init__(
        self,
        *,
        limit_train_batches: Union[int, float, None] = None,
        limit_val_batches: Union[int, float, None] = None,
        limit_test_batches: Union[int, float, None] = None,
        limit_predict_batches: Union[int, float, None] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            limit_train_batches=limit_train_batches,
            limit_val_batches=limit_val_batches,
            limit_test_batches=limit_test_batches,
            limit_predict_batches=limit_predict_batches,
            **kwargs,
        )

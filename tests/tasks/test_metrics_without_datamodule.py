"""Evaluating without a datamodule: one ConfigError line (metrics do not silently vanish), unless the metrics were
set explicitly with ``task.set_metrics`` -- then the numbers equal those of the datamodule's own metrics."""

from __future__ import annotations

import copy

import pytest
import torch
from shared_samples import coco_datamodule

from lightning_pose.errors import ConfigError

torch.set_num_threads(1)


def _trainer():
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=1,
        limit_train_batches=1,
        num_sanity_val_steps=1,
    )


@pytest.fixture(scope="module")
def setup(shared_data):
    import lightning as L

    from lightning_pose.tasks import SimpleBaselineTask

    dm = coco_datamodule(shared_data, (64, 96))
    dm.setup("validate")
    L.seed_everything(0, verbose=False)
    task = SimpleBaselineTask(
        backbone="lcnet_050",
        deconv_channels=(16, 16, 16),
        keypoint_set=dm.keypoint_set,
        input_size=dm.input_size,
        flip_test=False,
    )
    return dm, task


def test_validate_or_test_without_datamodule_is_one_clear_error(setup):
    dm, task = setup
    task = copy.deepcopy(task)
    loader = dm.val_dataloader()
    with pytest.raises(
        ConfigError,
        match=r"SimpleBaselineTask: trainer.validate .* without a datamodule: the 'val' "
        r"metrics come from the datamodule",
    ) as err:
        _trainer().validate(task, dataloaders=loader, verbose=False)
    assert "\n" not in str(err.value) and "set_metrics('val'" in str(err.value)
    with pytest.raises(ConfigError, match=r"trainer.test without a datamodule: the 'test' metrics"):
        _trainer().test(task, dataloaders=loader, verbose=False)
    # fit with validation loaders but no datamodule: refused at the first validation (the sanity check), not after
    with pytest.raises(ConfigError, match="without a datamodule"):
        _trainer().fit(task, train_dataloaders=loader, val_dataloaders=loader)


def test_explicit_metrics_without_datamodule_match_the_datamodule_metrics(setup):
    from lightning_pose.metrics import PCK

    dm, task = setup
    reference = copy.deepcopy(task)
    by_dm = _trainer().validate(reference, datamodule=dm, verbose=False)[0]
    explicit = copy.deepcopy(task)
    explicit.set_metrics("val", {"pck": PCK(dm.keypoint_set, thresholds=(0.05, 0.1, 0.2), normalizer="bbox")})
    logged = _trainer().validate(explicit, dataloaders=dm.val_dataloader(), verbose=False)[0]
    pck_keys = [k for k in by_dm if k.startswith("val/PCK@")]
    assert pck_keys and {k for k in logged if k.startswith("val/PCK@")} == set(pck_keys)
    for key in pck_keys:
        assert logged[key] == pytest.approx(by_dm[key], abs=1e-7), key
    assert "val/AP" in by_dm and "val/AP" not in logged  # only the metrics given

"""Associative Embedding on AI Challenger in bottom-up mode: the shared AIC sample in both of its formats (the
COCO-style conversion and the raw release) through ``AICDataModule(mode="bottomup")``; a tiny fit + validate runs,
and with an oracle network (ideal heatmaps and tags of each batch's annotations, the codec round trip) the logged
COCO-style AP (AIC sigmas) and the official AI Challenger score are exactly 1.0 at the config's 512x512 input (at
320x320 the quarter-heatmap-pixel decoding error of the sample's smallest persons already costs OKS: AP 0.93)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "associative_embedding" / "aic.yaml"
INPUT_SIZE = (512, 512)


def _aic_bottomup(shared_data: Path, fmt: str) -> Any:
    from lightning_pose.data.datamodules import AICDataModule

    images = str(shared_data / "aic")
    ann = str(shared_data / ("aic/test_aic.json" if fmt == "coco" else "aic_raw/keypoint_annotations_sample.json"))
    return AICDataModule(
        root=str(shared_data / "aic"),
        format=fmt,
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=INPUT_SIZE,
        mode="bottomup",
        batch_size=3,
        num_workers=0,
        augmentation={"enabled": False},
    )


def _tiny_task(dm: Any) -> Any:
    from lightning_pose.tasks import AssociativeEmbeddingTask

    network = {
        "class_path": "lightning_pose.models.associative_embedding.HourglassAENet",
        "init_args": {
            "num_stacks": 1,
            "channels": 16,
            "increase": 8,
            "depth": 2,
            "stem_channels": 8,
            "batch_norm": True,
        },
    }
    return AssociativeEmbeddingTask(
        keypoint_set=dm.keypoint_set, input_size=dm.input_size, network=network, flip_test=False
    )


def _trainer(**kw: Any) -> Any:
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


@pytest.mark.parametrize("fmt", ["coco", "raw"])
def test_aic_bottomup_fit_validate_and_oracle_scores(shared_data: Path, fmt: str) -> None:
    from lightning_pose.models.associative_embedding import AEOutput
    from tests.codecs.ae_helpers import ideal_tags

    torch.manual_seed(0)
    dm = _aic_bottomup(shared_data, fmt)
    task = _tiny_task(dm)
    assert task.num_keypoints == 14
    trainer = _trainer(max_steps=1, limit_val_batches=1)
    trainer.fit(task, datamodule=dm)
    m = trainer.callback_metrics
    assert np.isfinite(m["train/loss"].item())
    assert {"val/AP", "val/AIC_score"} <= set(m)
    assert 0.0 <= m["val/AP"].item() <= 1.0 and 0.0 <= m["val/AIC_score"].item() <= 1.0

    # oracle: the network returns the codec's targets of the batch being evaluated (heatmaps) and ideal tags
    codec = task.codec
    current: dict[str, Any] = {}
    evaluate = task._eval_step

    def eval_step(batch: dict, split: str) -> dict:
        current["batch"] = batch
        return evaluate(batch, split)

    def oracle(x: torch.Tensor) -> list:
        batch = current["batch"]
        t = codec.encode(batch["keypoints"].double(), batch["num_persons"], batch["mask"])
        tags = ideal_tags(t["tag_index"], t["tag_valid"], task.num_keypoints, codec.heatmap_size)
        return [AEOutput(t["heatmaps"].float(), tags.reshape(x.shape[0], task.num_keypoints, *tags.shape[-2:]).float())]

    task._eval_step = eval_step  # type: ignore[method-assign]
    task.network.forward = oracle  # type: ignore[method-assign]
    persons = int(sum(int(b["num_persons"].sum()) for b in dm.val_dataloader()))
    assert persons == 9  # the sample's 9 annotated persons reach the bottom-up samples
    scores = _trainer().validate(task, datamodule=dm, verbose=False)[0]
    assert scores["val/AP"] == pytest.approx(1.0, abs=1e-12)
    assert scores["val/AIC_score"] == pytest.approx(1.0, abs=1e-12)


def test_aic_config_parses() -> None:
    """``configs/associative_embedding/aic.yaml`` (over its ``__base__``) parses into the AE task + AIC bottom-up
    data (the network spec is read, not built: ``pretrained: true`` would download)."""
    from lightning_pose.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(CONFIG), "--print_config"])
    assert exc.value.code in (0, None)

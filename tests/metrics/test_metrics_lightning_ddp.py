"""T12: COCOKeypointAP logged from a LightningModule under Trainer(strategy="ddp_spawn", devices=2) on CPU, with a
sanity check and a partial validation (limit_val_batches): the logged AP equals pycocotools on the images seen."""

from __future__ import annotations

import json

import metrics_ddp_helpers as h
import numpy as np
import pytest

from lightning_pose.evaluation.coco import STAT_NAMES


@pytest.mark.slow
def test_ddp_spawn_partial_validation_logs_exact_ap(tmp_path):
    import lightning.pytorch as pl
    from metrics_lightning_toy import SampleListDataset, ToyCOCOModule
    from torch.utils.data import DataLoader

    samples = h.coco_samples()
    gt = h.load_coco_gt()
    seen_file = tmp_path / "seen.json"
    model = ToyCOCOModule(gt, seen_file=str(seen_file))
    loader = DataLoader(SampleListDataset(samples), batch_size=2, shuffle=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}

    # DistributedSampler(shuffle=False) over 17 samples: rank 0 gets 0, 2, 4, ..., rank 1 gets 1, 3, 5, ...;
    # two batches of 2 per rank -> samples 0..7 are the ones evaluated in the (last) validation epoch
    seen = list(range(8))
    images = sorted({int(samples[i]["image_id"]) for i in seen})
    assert json.loads(seen_file.read_text()) == images
    assert len(images) < len(gt["images"])  # a genuinely partial run
    results = []
    for i in seen:
        s = samples[i]
        sc = s["scores"].double().numpy()
        results.append(
            {
                "image_id": int(s["image_id"]),
                "category_id": 1,
                "keypoints": np.concatenate([s["pred"].double().numpy(), sc[:, None]], 1).reshape(-1).tolist(),
                "score": h.hrnet_rescore(float(s["bbox_score"]), sc),
            }
        )
    ref = h.pycocotools_stats(gt, results, images)
    np.testing.assert_allclose([logged[f"val/{k}"] for k in STAT_NAMES], ref, atol=1e-6)  # logged as float32
    assert logged["val/AP"] > 0

"""A picklable toy LightningModule for the ddp_spawn test (T12): the 'network output' is the precomputed
``pred``/``scores`` of each sample, so the logged COCO AP can be checked against pycocotools."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import torch

from lightning_pose.metrics import COCOKeypointAP


class SampleListDataset(torch.utils.data.Dataset):
    def __init__(self, samples: list[dict]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]


class ToyCOCOModule(pl.LightningModule):
    def __init__(self, gt: dict, seen_file: str | None = None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.val_ap = COCOKeypointAP(gt, nms_thr=None)
        self.seen_file = seen_file

    def on_validation_epoch_start(self) -> None:
        self.val_ap.reset()  # ddp_spawn shares metric states between ranks otherwise (docs/ecosystem.md#spawned-metric-states)

    def training_step(self, batch, batch_idx):
        return (self.weight**2).sum() + batch["pred"].sum() * 0

    def validation_step(self, batch, batch_idx):
        self.val_ap.update(batch["pred"] + 0 * self.weight, batch["scores"], batch)

    def on_validation_epoch_end(self) -> None:
        stats = self.val_ap.compute()
        self.log_dict({f"val/{k}": v for k, v in stats.items()})
        det = self.val_ap.detections()  # collective under DDP: every rank calls it
        if self.seen_file and self.trainer.is_global_zero:
            Path(self.seen_file).write_text(json.dumps(sorted(int(i) for i in det.seen_image_ids)))
        self.val_ap.reset()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

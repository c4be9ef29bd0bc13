"""Module-level (picklable) helpers for the metric tests: synthetic top-down samples built from the shared data,
references, a DDP worker for torch.multiprocessing.spawn, and a toy LightningModule for ddp_spawn."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


# ------------------------------------------------------------------------------------------------ samples
# (the Lightning toy module lives in metrics_lightning_toy.py so that DDP workers do not import lightning)
def _sample(
    sid,
    gt_kpts,
    pred,
    scores,
    bbox,
    image_id,
    ann_id,
    bbox_score=1.0,
    area=0.0,
    head_size=float("nan"),
    source_index=-1,
):
    bbox = np.asarray(bbox, dtype=np.float64)
    return {
        "sample_id": torch.tensor(sid, dtype=torch.int64),
        "image_id": torch.tensor(int(image_id), dtype=torch.int64),
        "ann_id": torch.tensor(int(ann_id), dtype=torch.int64),
        "source_index": torch.tensor(int(source_index), dtype=torch.int64),
        "gt_keypoints": torch.as_tensor(np.asarray(gt_kpts, dtype=np.float64)),
        "bbox": torch.as_tensor(bbox),
        "bbox_score": torch.tensor(float(bbox_score), dtype=torch.float64),
        "area": torch.tensor(float(area), dtype=torch.float64),
        "crop_area": torch.tensor(float(bbox[2] * bbox[3] * 1.25**2), dtype=torch.float64),
        "head_size": torch.tensor(float(head_size), dtype=torch.float64),
        "pred": torch.as_tensor(np.asarray(pred, dtype=np.float32)),  # float32 like a network output
        "scores": torch.as_tensor(np.asarray(scores, dtype=np.float32)),
    }


def load_coco_gt() -> dict:
    return json.loads((SHARED / "coco" / "test_coco.json").read_text())


def coco_samples(seed: int = 0) -> list[dict]:
    """One sample per non-crowd GT annotation (GT boxes) + 3 near-duplicate 'detections' (NMS food): 17 samples."""
    gt = load_coco_gt()
    rng = np.random.default_rng(seed)
    out = []
    anns = [a for a in gt["annotations"] if not a["iscrowd"]]
    for a in anns:
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
        pred = kp[:, :2] + rng.normal(0, 3, size=(17, 2))
        sc = rng.uniform(0.05, 1.0, size=17)
        out.append((kp, pred, sc, a["bbox"], a["image_id"], a["id"], 1.0, a["area"]))
    for j, a in enumerate(anns[:3]):
        kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
        pred = kp[:, :2] + rng.normal(0, 1.0, size=(17, 2))
        out.append(
            (
                kp,
                pred,
                rng.uniform(0.05, 1.0, 17),
                a["bbox"],
                a["image_id"],
                900000 + j,
                float(rng.uniform(0.3, 0.9)),
                a["area"],
            )
        )
    while len(out) < 17:
        out.append(out[len(out) % len(anns)])
    return [_sample(i, *s[:4], image_id=s[4], ann_id=s[5], bbox_score=s[6], area=s[7]) for i, s in enumerate(out[:17])]


def mpii_samples(seed: int = 1, n: int = 13) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gt = np.concatenate([rng.uniform(0, 400, (16, 2)), (rng.uniform(size=(16, 1)) > 0.15) * 2.0], axis=1)
        hs = float(rng.uniform(20, 60)) if i != 4 else float("nan")
        pred = gt[:, :2] + rng.normal(0, 1, size=(16, 2)) * rng.uniform(1, 25)
        out.append(
            _sample(
                i,
                gt,
                pred,
                np.ones(16),
                [0, 0, 100, 100],
                image_id=i + 1,
                ann_id=i,
                head_size=hs,
                source_index=n - 1 - i,
            )
        )
    return out


def aic_release_gt() -> list[dict]:
    return json.loads((SHARED / "aic_raw" / "keypoint_annotations_sample.json").read_text())


def aic_samples(seed: int = 2) -> list[dict]:
    """Per AIC GT person (release file; image_id = 1-based position): 9 GT-box samples + 2 extras = 11."""
    rng = np.random.default_rng(seed)
    raw = aic_release_gt()
    out = []
    for img_pos, e in enumerate(raw):
        for name in sorted(e["keypoint_annotations"]):
            kp = np.asarray(e["keypoint_annotations"][name], dtype=np.float64).reshape(14, 3)
            x1, y1, x2, y2 = e["human_annotations"][name]
            pred = kp[:, :2] + rng.normal(0, 4, size=(14, 2))
            out.append((kp, pred, rng.uniform(0.1, 1, 14), [x1, y1, x2 - x1, y2 - y1], img_pos + 1, len(out)))
    for j in range(2):  # a far-off false positive per image 1 and 2
        kp, _, _, box, img, _ = out[j * 3]
        out.append((kp, kp[:, :2] + 150.0, rng.uniform(0.1, 1, 14), box, img, 1000 + j))
    return [_sample(i, s[0], s[1], s[2], s[3], image_id=s[4], ann_id=s[5]) for i, s in enumerate(out)]


# ------------------------------------------------------------------------------------------------ metrics
def build_metrics(**kwargs) -> dict:
    from lightning_pose.metrics import PCK, AICScore, COCOKeypointAP, PCKh

    return {
        "pck": (PCK("coco", thresholds=(0.05, 0.2), **kwargs), coco_samples()),
        "pckh": (PCKh(**kwargs), mpii_samples()),
        "coco": (COCOKeypointAP(load_coco_gt(), **kwargs), coco_samples()),
        "aic": (AICScore(aic_release_gt(), **kwargs), aic_samples()),
    }


def collate(samples: list[dict]) -> dict:
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def feed(metric, samples: list[dict], indices: list[int], batch_size: int = 4) -> None:
    for start in range(0, len(indices), batch_size):
        batch = collate([samples[i] for i in indices[start : start + batch_size]])
        metric.update(batch["pred"], batch["scores"], batch)


def single_process_results() -> dict:
    out = {}
    for name, (metric, samples) in build_metrics().items():
        feed(metric, samples, list(range(len(samples))))
        out[name] = metric.compute()
        if name == "coco":
            out["coco_results"] = metric.results()
        if name == "pckh":
            out["mpii_preds"] = metric.mpii_preds().tolist()
    return out


#: (tag, world size, split): world 2 runs on the sub-group of ranks {0, 1}, so one 3-process spawn covers all
DDP_RUNS: tuple[tuple[str, int, str], ...] = (
    ("world3_sampler", 3, "sampler"),
    ("world3_empty_rank", 3, "empty_rank"),
    ("world2_sampler", 2, "sampler"),
)


def ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    """For every run of :data:`DDP_RUNS`, feed each metric this rank's share and write rank 0's outputs to
    ``out_dir/<tag>.json``. Splits: ``sampler`` (DistributedSampler, drop_last=False, so padded duplicates) and
    ``empty_rank`` (the last rank never calls update; the others split everything, plus a duplicate)."""
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=timedelta(seconds=90)
    )
    try:
        groups = {w: (None if w == world else dist.new_group(list(range(w)))) for _, w, _ in DDP_RUNS}
        for tag, w, split in DDP_RUNS:
            if rank >= w:
                continue
            out = {}
            for name, (metric, samples) in build_metrics(process_group=groups[w]).items():
                n = len(samples)
                if split == "sampler":
                    idx = list(DistributedSampler(range(n), num_replicas=w, rank=rank, shuffle=False, drop_last=False))
                else:
                    idx = [] if rank == w - 1 else [i for i in range(n) if i % (w - 1) == rank] + [0]
                feed(metric, samples, idx, batch_size=3)
                out[name] = metric.compute()
                # exports after compute() reuse its global samples: rank 0 alone may call them (no collective;
                # if they tried to sync, rank 0 would block until the gloo timeout below)
                if name == "coco" and rank == 0:
                    out["coco_results"] = metric.results()
                if name == "pckh" and rank == 0:
                    out["mpii_preds"] = metric.mpii_preds().tolist()
            if rank == 0:
                Path(out_dir, f"{tag}.json").write_text(json.dumps(out))
        dist.barrier()
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------ references
def pycocotools_stats(gt: dict, results: list[dict], img_ids: list[int]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
        ev.params.imgIds = sorted(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def hrnet_rescore(bbox_score: float, kpt_scores: np.ndarray, thr: float = 0.2) -> float:
    """HRNet/mmpose 'bbox_keypoint' rescoring: bbox score x mean of the keypoint scores above thr (0 if none)."""
    above = kpt_scores[kpt_scores > thr]
    return float(bbox_score * above.mean()) if above.size else 0.0

"""``AssociativeEmbeddingTask``: bottom-up multi-person pose estimation (Newell, Huang & Deng, NeurIPS 2017).

Shares :class:`~lightning_pose.tasks.base.PoseTask`'s optimizer / scheduler / warm-up, training step, logging and
export; differs in what a sample is (a whole image with every person, ``data.mode: bottomup``) and in evaluation:

* loss per supervised output (hourglass stacks; HigherHRNet's two resolutions): ``heatmap_weight`` x masked
  heatmap MSE + ``push_weight`` x push + ``pull_weight`` x pull (tags only where the output has them), averaged
  (``loss_aggregate="mean"``, pose-ae-train) or summed (``"sum"``, HigherHRNet) over outputs;
* inference: final heatmaps and tags (HigherHRNet: the stride-4 maps resampled to the stride-2 grid and averaged
  with the stride-2 heatmaps), flip test (heatmaps averaged, tags concatenated), multi-scale test (``test_scales``;
  heatmaps averaged, tags of scale 1), grouping and refinement by
  :class:`~lightning_pose.codecs.associative_embedding.AssociativeEmbeddingCodec`, then the bottom-up transform's
  exact inverse (``input_to_image``) to original-image pixels;
* validation/test on whole images with the exact COCO keypoint AP (person score as instance score, no NMS,
  every image evaluated) and the AI Challenger score on AIC; ``export_dir`` writes the COCO results (and AIC
  predictions) that ``lightning-pose evaluate`` re-scores to the logged numbers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_pose.codecs.associative_embedding import (
    SUBPIXEL_KINDS,
    AEPersons,
    AssociativeEmbeddingCodec,
    merge_scales,
    resample_maps,
    split_tags,
)
from lightning_pose.errors import ConfigError
from lightning_pose.losses.associative_embedding import PUSH_KINDS, ae_grouping_loss, masked_heatmap_mse
from lightning_pose.tasks.base import PoseTask
from lightning_pose.tasks.network import NetworkSpec, network_int
from lightning_pose.tasks.network_args import drop_legacy_hparams, network_from_legacy_args, override_network_args

__all__ = ["AssociativeEmbeddingTask", "build_bottomup_metrics", "persons_to_metric_inputs"]

#: hyper-parameters our checkpoints store for W&B that are not constructor options
_CHECKPOINT_EXTRAS = ("num_keypoints", "method", "optimizer_config", "scheduler_config")
_HOURGLASS_NET = "lightning_pose.models.associative_embedding.HourglassAENet"
_HRNET_NET = "lightning_pose.models.associative_embedding.HigherHRNetAENet"
#: the older network arguments (model.init_args.network replaces them)
_LEGACY = (
    "backbone",
    "num_stacks",
    "channels",
    "increase",
    "depth",
    "stem_channels",
    "batch_norm",
    "pretrained",
    "out_indices",
    "head_channels",
    "num_blocks",
    "deconv",
)
#: person slots per image in the metric sample ids (``sample_id * _PERSON_SLOTS + person``)
_PERSON_SLOTS = 1000


def build_bottomup_metrics(datamodule: Any, split: str, keypoint_set: Any) -> dict[str, Any]:
    """The bottom-up variants of the metrics the datamodule declares (``metric_specs``): COCO AP on COCO / demo /
    AIC (AIC sigmas, ``0.53 w h`` areas) and the AIC score on AIC (:mod:`lightning_pose.metrics.registry`)."""
    from lightning_pose.metrics.registry import build_metrics

    return build_metrics(datamodule, split, keypoint_set, bottomup=True)


def persons_to_metric_inputs(
    persons: Sequence[dict], sample_ids: Tensor, image_ids: Tensor
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Per-image ``{"keypoints" (P, K, 3), "scores" (P,)}`` (image frame) -> flat metric inputs.

    Returns ``preds (P_total, K, 2)``, ``scores (P_total, K)`` and the per-person batch dict of
    :mod:`lightning_pose.metrics.bottomup`.
    """
    k = persons[0]["keypoints"].shape[1] if persons else 0
    kps = [p["keypoints"] for p in persons]
    allk = np.concatenate(kps, axis=0) if kps else np.zeros((0, k, 3))
    sid, iid, aid, score = [], [], [], []
    for i, p in enumerate(persons):
        n = p["keypoints"].shape[0]
        sid.extend(int(sample_ids[i]) * _PERSON_SLOTS + j for j in range(n))
        iid.extend([int(image_ids[i])] * n)
        aid.extend(range(n))
        score.extend(float(s) for s in p["scores"])
    batch = {
        "sample_id": torch.tensor(sid, dtype=torch.float64),
        "image_id": torch.tensor(iid, dtype=torch.float64),
        "ann_id": torch.tensor(aid, dtype=torch.float64),
        "bbox_score": torch.tensor(score, dtype=torch.float64),
        "crop_area": torch.zeros(len(sid), dtype=torch.float64),
        "seen_image_ids": image_ids.detach().to("cpu", torch.float64).reshape(-1),
    }
    t = torch.from_numpy(np.ascontiguousarray(allk))
    return t[..., :2], t[..., 2], batch


class AssociativeEmbeddingTask(PoseTask):
    """Associative Embedding (bottom-up). Pair it with a datamodule in ``mode: bottomup``.

    Network (``network``): ``{class_path: lightning_pose.models.associative_embedding.HourglassAENet, init_args:
    {num_stacks, channels, increase, depth, stem_channels, batch_norm}}`` or ``HigherHRNetAENet`` (``backbone`` a timm
    name, ``pretrained``, ``out_indices``, ``channels``, ``num_blocks``, ``deconv``) or ``SimpleBaselineAENet``
    (``backbone``, ``pretrained``, ``feature_index``, ``deconv_channels``, ``final_kernel``): any network taking
    ``(num_keypoints, tag_dim=...)`` (``tag_dim`` always set from the task's) and returning a list of ``AEOutput``,
    with ``stride`` and ``size_divisor`` attributes. Without ``network``, the older arguments build one:
    ``backbone="hourglass"`` (default) an ``HourglassAENet`` from ``num_stacks``, ``channels``, ``increase``,
    ``depth``, ``stem_channels``, ``batch_norm``; any other ``backbone`` a ``HigherHRNetAENet`` from ``pretrained``,
    ``out_indices``, ``head_channels``, ``num_blocks``, ``deconv``.

    Args:
        tag_dim: L, tag dimensions per joint.
        sigma: target Gaussian sigma in heatmap px (2 at stride 4 for 512 input in the paper).
        unbiased: sub-pixel Gaussian centres (quarter-pixel decoding accuracy); ``False`` = nearest pixel.
        heatmap_weight, push_weight, pull_weight: loss factors (1, 1e-3, 1e-3 in pose-ae-train / HigherHRNet).
        heatmap_pos_weight: extra heatmap-loss weight of the target peaks (pixel weight ``1 + w * target``; 0 =
            the plain MSE of the paper; see :func:`~lightning_pose.losses.associative_embedding.masked_heatmap_mse`).
        push_kind: ``"exp"`` (paper) or ``"max"`` (max-margin).
        loss_aggregate: ``"mean"`` or ``"sum"`` over the supervised outputs.
        max_detections: most persons kept per image (highest scores first).
        top_k, nms_kernel, detection_threshold, tag_threshold, refine, subpixel: decoding (see the codec;
            ``subpixel="log_parabola"`` locates peaks more precisely than the paper's ``"quarter"`` offset).
        test_scales: input scales of the multi-scale test (must contain 1.0; ``(1.0,)`` = single scale).
        **kwargs: :class:`PoseTask` options (``keypoint_set``, ``input_size``, ``optimizer``, ``scheduler``,
            ``warmup_steps``, ``flip_test``, ``export_dir``, ...).
    """

    method_name = "associative_embedding"
    #: this task consumes bottom-up (whole-image) samples; the CLI refuses a top-down datamodule
    is_bottomup = True

    def __init__(
        self,
        backbone: str | None = None,
        num_stacks: int | None = None,
        channels: int | None = None,
        increase: int | None = None,
        depth: int | None = None,
        stem_channels: int | None = None,
        batch_norm: bool | None = None,
        pretrained: bool | None = None,
        out_indices: tuple[int, ...] | None = None,
        head_channels: int | None = None,
        num_blocks: int | None = None,
        deconv: bool | None = None,
        tag_dim: int = 1,
        sigma: float = 2.0,
        unbiased: bool = True,
        heatmap_weight: float = 1.0,
        heatmap_pos_weight: float = 0.0,
        push_weight: float = 1e-3,
        pull_weight: float = 1e-3,
        push_kind: str = "exp",
        loss_aggregate: str = "mean",
        max_detections: int = 30,
        top_k: int = 30,
        nms_kernel: int = 5,
        detection_threshold: float = 0.1,
        tag_threshold: float = 1.0,
        refine: bool = True,
        subpixel: str = "quarter",
        test_scales: tuple[float, ...] = (1.0,),
        network: NetworkSpec | None = None,
        **kwargs: Any,
    ) -> None:
        for key in _CHECKPOINT_EXTRAS:  # present when re-created by load_from_checkpoint
            kwargs.pop(key, None)
        # arguments of the other network family are ignored (older checkpoints store every one of them)
        if backbone in (None, "hourglass"):
            legacy: dict[str, Any] = dict(
                num_stacks=num_stacks,
                channels=channels,
                increase=increase,
                depth=depth,
                stem_channels=stem_channels,
                batch_norm=batch_norm,
            )
            class_path, renames = _HOURGLASS_NET, None
            if backbone is not None and network is not None:
                legacy["backbone"] = backbone  # refused together with network, as the other old arguments
        else:
            legacy = dict(
                backbone=backbone,
                pretrained=pretrained,
                out_indices=out_indices,
                head_channels=head_channels,
                num_blocks=num_blocks,
                deconv=deconv,
            )
            class_path, renames = _HRNET_NET, {"head_channels": "channels"}
        network = network_from_legacy_args(type(self).__name__, network, class_path, legacy, renames)
        super().__init__(network=network, **kwargs)
        drop_legacy_hparams(self, _LEGACY)
        if push_kind not in PUSH_KINDS:
            raise ConfigError(f"model.init_args.push_kind must be one of {PUSH_KINDS}, got {push_kind!r}")
        if subpixel not in SUBPIXEL_KINDS:
            raise ConfigError(f"model.init_args.subpixel must be one of {SUBPIXEL_KINDS}, got {subpixel!r}")
        if loss_aggregate not in ("mean", "sum"):
            raise ConfigError(f"model.init_args.loss_aggregate must be 'mean' or 'sum', got {loss_aggregate!r}")
        scales = tuple(float(s) for s in test_scales)
        if 1.0 not in scales or any(s <= 0 for s in scales):
            raise ConfigError(f"model.init_args.test_scales must be positive and contain 1.0, got {list(scales)}")
        self.test_scales = scales
        self.heatmap_weight, self.push_weight, self.pull_weight = (
            float(heatmap_weight),
            float(push_weight),
            float(pull_weight),
        )
        if heatmap_pos_weight < 0:
            raise ConfigError(f"model.init_args.heatmap_pos_weight must be >= 0, got {heatmap_pos_weight}")
        self.heatmap_pos_weight = float(heatmap_pos_weight)
        self.push_kind = push_kind
        self.loss_aggregate = loss_aggregate
        self.tag_dim = int(tag_dim)
        k = self.num_keypoints
        assert self.network_spec is not None
        self.network_spec = override_network_args(self.network_spec, tag_dim=self.tag_dim)  # the task's tag_dim
        self.network: nn.Module = self.make_network()
        stride = network_int(self.network, "stride")
        div = network_int(self.network, "size_divisor")
        w, h = self.input_size
        if w % div or h % div:
            raise ConfigError(
                f"input size {list(self.input_size)} (data.init_args.input_size) must be a multiple of "
                f"{div} for this network"
            )
        self.codec = AssociativeEmbeddingCodec(
            self.input_size,
            (w // stride, h // stride),
            k,
            sigma=sigma,
            unbiased=unbiased,
            max_people=max_detections,
            top_k=top_k,
            nms_kernel=nms_kernel,
            detection_threshold=detection_threshold,
            tag_threshold=tag_threshold,
            refine=refine,
            subpixel=subpixel,
        )

    # ------------------------------------------------------------------ network and loss
    def forward(self, images: Tensor) -> list:
        """Per-output ``AEOutput(heatmaps (B, K, h, w), tags (B, K * L, h, w) | None)``."""
        return self.network(images)

    def compute_loss(self, outputs: list, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        if "num_persons" not in batch or batch["keypoints"].dim() != 4:
            raise ConfigError("AssociativeEmbeddingTask needs bottom-up samples: set data.init_args.mode: bottomup")
        kp = batch["keypoints"].float()
        targets: dict[tuple[int, int], Any] = {}
        totals: list[Tensor] = []
        parts: dict[str, Tensor] = {}
        for out in outputs:
            size = (int(out.heatmaps.shape[-1]), int(out.heatmaps.shape[-2]))
            if size not in targets:
                targets[size] = self.codec.encode(kp, batch["num_persons"], batch["mask"], heatmap_size=size)
            t = targets[size]
            hm = masked_heatmap_mse(out.heatmaps, t["heatmaps"], t["mask"], self.heatmap_pos_weight)
            total = self.heatmap_weight * hm
            parts["loss_heatmap"] = hm.detach()  # the last output's values are logged
            if out.tags is not None:
                push, pull = ae_grouping_loss(
                    split_tags(out.tags, self.num_keypoints), t["tag_index"], t["tag_valid"], self.push_kind
                )
                total = total + self.push_weight * push + self.pull_weight * pull
                parts.update(loss_push=push.detach(), loss_pull=pull.detach())
            totals.append(total)
        stacked = torch.stack(totals)
        loss = stacked.mean() if self.loss_aggregate == "mean" else stacked.sum()
        return loss, parts

    # ------------------------------------------------------------------ inference
    def _final_maps(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Final heatmaps ``(B, K, h, w)`` and tags ``(B, K, L, h, w)`` on the finest output's grid."""
        outputs = self(images)
        tagged = [o for o in outputs if o.tags is not None][-1]
        finest = max(outputs, key=lambda o: o.heatmaps.shape[-1])
        if finest is tagged or finest.heatmaps.shape[-1] == tagged.heatmaps.shape[-1]:
            return outputs[-1].heatmaps, split_tags(tagged.tags, self.num_keypoints)
        w_in, h_in = images.shape[-1], images.shape[-2]
        src = (w_in / tagged.heatmaps.shape[-1], h_in / tagged.heatmaps.shape[-2])
        dst = (w_in / finest.heatmaps.shape[-1], h_in / finest.heatmaps.shape[-2])
        size = (finest.heatmaps.shape[-1], finest.heatmaps.shape[-2])
        hm = 0.5 * (resample_maps(tagged.heatmaps, src, dst, size) + finest.heatmaps)
        tags = resample_maps(split_tags(tagged.tags, self.num_keypoints), src, dst, size)
        return hm, tags

    @torch.no_grad()
    def predict_maps(self, images: Tensor, flip_test: bool | None = None) -> tuple[Tensor, Tensor]:
        """Heatmaps and tags used for grouping (flip and multi-scale tests applied), on the scale-1 grid."""
        flip = self.flip_test if flip_test is None else flip_test
        w_in, h_in = images.shape[-1], images.shape[-2]
        base_hm, base_tags = None, None
        scaled: list[Tensor] = []
        for s in self.test_scales:
            if s == 1.0:
                x = images
            else:
                div = network_int(self.network, "size_divisor")
                size = (max(div, int(round(h_in * s / div)) * div), max(div, int(round(w_in * s / div)) * div))
                x = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            hm, tags = self._final_maps(x)
            if flip:
                hm_f, tags_f = self._final_maps(x.flip(-1))
                hm, tags = self.codec.merge_flip(hm, tags, hm_f, tags_f, self.flip_indices, input_width=x.shape[-1])
            if s == 1.0:
                base_hm, base_tags = hm, tags
            scaled.append((hm, x.shape[-1], x.shape[-2]))
        assert base_hm is not None and base_tags is not None
        size = (base_hm.shape[-1], base_hm.shape[-2])
        stride = (w_in / size[0], h_in / size[1])
        maps = []
        for hm, w_s, h_s in scaled:
            if (w_s, h_s) == (w_in, h_in):
                maps.append(hm.float())
            else:
                r = (w_s / w_in, h_s / h_in)
                maps.append(resample_maps(hm.float(), (w_s / hm.shape[-1], h_s / hm.shape[-2]), stride, size, r))
        return merge_scales(maps), base_tags

    @torch.no_grad()
    def predict_persons(self, images: Tensor, input_to_image: Tensor | None = None) -> list[dict]:
        """Persons of every image: ``{"keypoints": (P, K, 3) float64 [x, y, score], "scores": (P,)}``, in the
        original image frame when ``input_to_image (B, 2, 3)`` is given, else in the input frame."""
        hm, tags = self.predict_maps(images)
        persons: list[AEPersons] = self.codec.decode_persons(hm, tags)
        out = []
        for i, p in enumerate(persons):
            kp = p.keypoints.copy()
            if input_to_image is not None and len(kp):
                a = input_to_image[i].detach().cpu().double().numpy()
                found = kp[..., 2] > 0
                xy = kp[..., :2] @ a[:, :2].T + a[:, 2]
                kp[..., :2] = np.where(found[..., None], xy, 0.0)
            out.append({"keypoints": kp, "scores": p.scores.copy()})
        return out

    @torch.no_grad()
    def infer_bottomup(self, images: list[np.ndarray]) -> list[dict]:
        """Persons in plain RGB images (no annotations).

        Args:
            images: RGB uint8 ``(H, W, 3)`` arrays of any size; each is resized (aspect kept) and padded to
                ``input_size`` like the validation images.

        Returns:
            per image ``{"keypoints": float64 (N, K, 3) [x, y, score] in 0-based original-image pixels,
            "scores": float64 (N,) person scores}`` (persons by decreasing score; missing joints are zeros).
        """
        from lightning_pose.data.datasets.tensors import to_normalized_tensor
        from lightning_pose.data.transforms import BottomUpTransform

        transform = BottomUpTransform(self.keypoint_set, self.input_size, None)
        empty = np.zeros((0, self.num_keypoints, 3))
        results: list[dict] = []
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(images), 8):
                chunk = images[start : start + 8]
                tensors, mats = [], []
                for j, img in enumerate(chunk):
                    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                        raise ValueError(
                            f"infer_bottomup: image {start + j} must be an (H, W, 3) uint8 RGB array, "
                            f"got {getattr(img, 'shape', None)} {getattr(img, 'dtype', type(img))}"
                        )
                    r = transform(img, empty)
                    tensors.append(to_normalized_tensor(r.image))
                    mats.append(torch.from_numpy(r.input_to_image))
                x = torch.stack(tensors).to(self.device)
                results.extend(self.predict_persons(x, torch.stack(mats)))
        finally:
            self.train(was_training)
        return results

    # ------------------------------------------------------------------ evaluation
    def setup(self, stage: str) -> None:
        from lightning_pose.tasks.metric_wiring import metric_datamodule, splits_for_stage

        dm = metric_datamodule(self, stage, evaluated=self._metrics)  # validate/test without one: ConfigError
        if dm is None:
            return
        if getattr(dm, "mode", "bottomup") != "bottomup":
            raise ConfigError(
                f"{type(self).__name__} is a bottom-up method but the datamodule "
                f"{type(dm).__name__} is in mode {dm.mode!r}; set data.init_args.mode: bottomup"
            )
        for split in splits_for_stage(stage):
            if split in self._metrics:
                continue
            module_dict = nn.ModuleDict(build_bottomup_metrics(dm, split, self.keypoint_set))
            self._metrics[split] = module_dict
            self.add_module(f"metrics_{split}", module_dict)

    def _eval_step(self, batch: dict[str, Tensor], split: str) -> dict[str, Tensor]:
        images = batch["image"]
        loss, _ = self.compute_loss(self(images), batch)
        self.log(f"{split}/loss", loss, batch_size=images.shape[0], sync_dist=True)
        persons = self.predict_persons(images, batch["input_to_image"])
        preds, scores, flat = persons_to_metric_inputs(persons, batch["sample_id"], batch["image_id"])
        for metric in self._metrics.get(split, {}).values():
            metric.update(preds, scores, flat)
        return {"loss": loss.detach(), "num_persons_found": torch.tensor([len(p["scores"]) for p in persons])}

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> list[dict]:
        persons = self.predict_persons(batch["image"], batch.get("input_to_image"))
        for p, image_id in zip(persons, batch["image_id"].tolist()):
            p["image_id"] = int(image_id)
        return persons

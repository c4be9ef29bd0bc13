"""The CPU top-down path hands uint8 crops to the loader; the batch is ImageNet-normalised on its device.

Contract (ARCHITECTURE.md, top-down sample): ``TopDownDataset`` samples carry ``image`` as ``(3, H_in, W_in)`` uint8
RGB grey levels; ``normalize_batch`` (called by the datamodule's ``on_after_batch_transfer`` and by the tasks' steps
for loaders used without their datamodule) gives the float32 ``(x / 255 - mean) / std`` the networks were always fed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lightning_pose.data.datasets.tensors import normalize_batch, normalize_images, to_normalized_tensor
from lightning_pose.data.transforms import denormalize_image, normalize_image

torch.set_num_threads(1)


def _coco_datamodule(shared: Path, **kwargs: object):
    from lightning_pose.data.datamodules import COCODataModule

    ann, images = str(shared / "coco" / "test_coco.json"), str(shared / "coco")
    return COCODataModule(
        root="unused",
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        num_workers=0,
        batch_size=4,
        input_size=(96, 128),
        augmentation={"occlusion_prob": 0.5, "noise_prob": 0.5},
        **kwargs,
    )


def test_training_batch_through_the_datamodule_hook_is_the_old_normalised_tensor(shared_data: Path) -> None:
    dm = _coco_datamodule(shared_data)
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 3, 128, 96)
    raw = batch["image"].clone()
    out = dm.on_after_batch_transfer(batch, 0)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (4, 3, 128, 96)
    # the old sample image: the numpy formula on the (H, W, 3) crop
    old = np.stack([normalize_image(np.ascontiguousarray(im.numpy().transpose(1, 2, 0))) for im in raw])
    np.testing.assert_allclose(out["image"].numpy(), old, rtol=0, atol=1e-6)
    # and bit for bit what the worker used to compute (to_normalized_tensor)
    assert torch.equal(out["image"], torch.stack([to_normalized_tensor(im.numpy().transpose(1, 2, 0)) for im in raw]))
    assert all(out[k] is batch[k] for k in batch if k != "image")  # nothing else touched
    assert torch.equal(batch["image"], raw)  # the input batch is not modified
    # a second call (e.g. the task's guard after the datamodule hook) changes nothing
    again = normalize_batch(out)
    assert again is out


def test_bottomup_and_float_batches_pass_unchanged(shared_data: Path) -> None:
    dm = _coco_datamodule(shared_data, mode="bottomup")
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].dtype == torch.float32  # bottom-up samples are still normalised in the worker
    assert dm.on_after_batch_transfer(batch, 0) is batch
    assert normalize_batch([1, 2]) == [1, 2]


def test_normalize_images_checks_and_round_trips() -> None:
    img = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 4), dtype=np.uint8)
    out = normalize_images(torch.from_numpy(img))
    for i in range(2):
        assert np.array_equal(denormalize_image(out[i].numpy()), img[i].transpose(1, 2, 0))
        # uint8 images are taken as never normalised: only transposed
        assert np.array_equal(denormalize_image(img[i]), img[i].transpose(1, 2, 0))
    with pytest.raises(ValueError, match="uint8"):
        normalize_images(out)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        normalize_images(torch.zeros(2, 4, 5, 5, dtype=torch.uint8))


class _MeanNet(nn.Module):
    """Heatmaps from a 1x1 conv at stride 4 (enough to make the loss depend on the input values)."""

    stride = 4

    def __init__(self, num_keypoints: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(4)
        self.head = nn.Conv2d(3, num_keypoints, 1)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(self.pool(images))]


def test_task_steps_normalise_uint8_batches_without_a_datamodule(shared_data: Path) -> None:
    from lightning_pose.tasks import HeatmapTask

    dm = _coco_datamodule(shared_data)
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    task = HeatmapTask(network=_MeanNet, keypoint_set="coco", input_size=(96, 128), sigma=2.0)
    task.log = lambda *a, **k: None  # type: ignore[method-assign]  # no trainer attached
    torch.manual_seed(1)
    loss_uint8 = task.training_step(batch, 0)
    torch.manual_seed(1)
    loss_float = task.training_step(dm.on_after_batch_transfer(batch, 0), 0)
    assert batch["image"].dtype == torch.uint8
    assert torch.equal(loss_uint8, loss_float)
    task.eval()
    a = task.predict_step(batch, 0)
    b = task.predict_step(dm.on_after_batch_transfer(batch, 0), 0)
    assert torch.equal(a["keypoints"], b["keypoints"]) and torch.equal(a["scores"], b["scores"])


@pytest.mark.parametrize("shape", [(256, 192, 3), (1, 1, 3), (7, 5, 3)])
def test_uint8_tensor_is_the_channel_first_copy(shape: tuple) -> None:
    from lightning_pose.data.datasets.tensors import to_uint8_tensor

    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    for view in (img, img[:, ::-1], img[::2]):
        out = to_uint8_tensor(view)
        assert out.dtype == torch.uint8 and out.is_contiguous() and out.shape == (3, view.shape[0], view.shape[1])
        assert np.array_equal(out.numpy(), view.transpose(2, 0, 1))
    with pytest.raises(ValueError, match="uint8"):
        to_uint8_tensor(img.astype(np.float32))


def test_sample_image_is_a_view_and_the_batch_is_channels_last(shared_data: Path) -> None:
    """The CPU path's sample image is a (3, H, W) view of the (H, W, 3) crop (no copy); the datamodule's collate stacks
    such views into a channels-last batch equal, value for value, to stacking channel-first copies; in a DataLoader
    worker the stack is in shared memory; mixed or float images fall back to default_collate."""
    from torch.utils.data import DataLoader, default_collate

    from lightning_pose.data.datasets.tensors import collate_channels_last, to_uint8_tensor, uint8_chw_view

    dm = _coco_datamodule(shared_data)
    dm.setup("fit")
    ds = dm.dataset("train")
    sample = ds[0]
    img = sample["image"]
    assert img.dtype == torch.uint8 and img.shape == (3, 128, 96) and not img.is_contiguous()
    assert img.permute(1, 2, 0).is_contiguous()  # channel-last memory
    samples = [ds[i] for i in range(4)]
    batch = collate_channels_last(samples)
    ref = default_collate([{**s, "image": s["image"].contiguous()} for s in samples])
    assert list(batch) == list(ref)
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    for k in ref:  # exact (head_size is NaN on COCO)
        torch.testing.assert_close(batch[k], ref[k], rtol=0, atol=0, equal_nan=True, msg=k)
    loader = DataLoader(ds, batch_size=4, num_workers=1, collate_fn=collate_channels_last)
    from_worker = next(iter(loader))
    assert from_worker["image"].is_shared() and from_worker["image"].shape == (4, 3, 128, 96)
    assert dm.train_dataloader().collate_fn is collate_channels_last
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (5, 4, 3), dtype=np.uint8) for _ in range(2)]
    view = uint8_chw_view(arrays[0])
    assert torch.equal(view, to_uint8_tensor(arrays[0])) and view.data_ptr() == arrays[0].ctypes.data
    mixed = [{"image": uint8_chw_view(arrays[0])}, {"image": to_uint8_tensor(arrays[1])}]
    assert torch.equal(collate_channels_last(mixed)["image"], torch.stack([m["image"] for m in mixed]))
    floats = [{"image": torch.rand(3, 5, 4)} for _ in range(2)]
    assert torch.equal(collate_channels_last(floats)["image"], torch.stack([f["image"] for f in floats]))
    strided = arrays[1][:, ::-1]  # a non-contiguous crop is copied first
    assert torch.equal(uint8_chw_view(strided), to_uint8_tensor(np.ascontiguousarray(strided)))

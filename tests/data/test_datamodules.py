"""Datamodules: attributes without setup, default layouts, loaders, ground truth, CLI introspection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import RandomSampler, SequentialSampler

from lightning_pose.data.datamodules import (
    AICDataModule,
    COCODataModule,
    DemoDataModule,
    MPIIDataModule,
    PoseDataModule,
)
from lightning_pose.data.records import DatasetError
from lightning_pose.skeletons import AIC, COCO, MPII


def _coco_dm(shared_data: Path, **kw) -> COCODataModule:
    ann, images = str(shared_data / "coco" / "test_coco.json"), str(shared_data / "coco")
    return COCODataModule(
        root="unused",
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        test_ann=ann,
        test_images=images,
        num_workers=0,
        **kw,
    )


def test_linked_attributes_exist_before_setup(tmp_path: Path) -> None:
    dm = COCODataModule(root=str(tmp_path))  # nothing on disk: nothing is read in __init__
    assert dm.keypoint_set is COCO and dm.num_keypoints == 17 and dm.flip_indices == COCO.flip_indices
    assert dm.input_size == (192, 256) and dm.dataset_name == "coco"
    m = MPIIDataModule(root=str(tmp_path))
    assert m.keypoint_set is MPII and m.input_size == (256, 256) and m.dataset_name == "mpii"
    a = AICDataModule(root=str(tmp_path))
    assert a.keypoint_set is AIC and a.num_keypoints == 14 and a.dataset_name == "aic"
    d = DemoDataModule(cache_root=str(tmp_path))
    assert d.dataset_name == "demo" and d.num_keypoints == 17
    assert not any(tmp_path.iterdir())  # the demo data is generated lazily
    with pytest.raises(TypeError, match="base class"):
        PoseDataModule()


def test_default_layouts(tmp_path: Path) -> None:
    dm = COCODataModule(root=str(tmp_path))
    assert dm.paths("train") == (tmp_path / "annotations/person_keypoints_train2017.json", tmp_path / "train2017")
    assert dm.paths("val") == (tmp_path / "annotations/person_keypoints_val2017.json", tmp_path / "val2017")
    assert dm.paths("test") == dm.paths("val")
    m = MPIIDataModule(root=str(tmp_path))
    assert m.paths("train") == (tmp_path / "annot/train.json", tmp_path / "images")
    assert m.paths("val") == (tmp_path / "annot/valid.json", tmp_path / "images")
    assert m.headbox_file("val") is None  # default gt_valid.mat absent
    (tmp_path / "annot").mkdir()
    (tmp_path / "annot" / "gt_valid.mat").write_bytes(b"")
    assert m.headbox_file("val") == tmp_path / "annot/gt_valid.mat" and m.headbox_file("train") is None
    a = AICDataModule(root=str(tmp_path))
    assert a.paths("val")[0] == tmp_path / "annotations/aic_val.json"
    raw = AICDataModule(root=str(tmp_path), format="raw")
    assert raw.paths("train")[0].name == "keypoint_train_annotations_20170909.json"
    assert raw.paths("val")[1] == a.paths("val")[1]
    explicit = COCODataModule(root=str(tmp_path), val_ann="/x/a.json", val_images="/x/img")
    assert explicit.paths("val") == (Path("/x/a.json"), Path("/x/img"))


def test_missing_files_raise_dataset_error(tmp_path: Path) -> None:
    dm = COCODataModule(root=str(tmp_path), num_workers=0)
    with pytest.raises(DatasetError, match="person_keypoints_val2017.json.*not found"):
        dm.setup("validate")


def test_bad_arguments_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        COCODataModule(root=str(tmp_path), mode="sideways")
    with pytest.raises(ValueError, match="unknown top-down augmentation option"):
        COCODataModule(root=str(tmp_path), augmentation={"rotate": 3})
    with pytest.raises(ValueError, match="format"):
        AICDataModule(root=str(tmp_path), format="xml")
    with pytest.raises(ValueError, match="topdown"):
        COCODataModule(root=str(tmp_path), mode="bottomup", val_boxes="dets.json")


def test_coco_loaders_and_ground_truth(shared_data: Path) -> None:
    dm = _coco_dm(shared_data, batch_size=4, val_boxes=str(shared_data / "coco" / "test_coco_det_AP_H_56.json"))
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert isinstance(train.sampler, RandomSampler) and train.drop_last
    assert isinstance(val.sampler, SequentialSampler) and not val.drop_last
    assert len(dm.dataset("train")) == 12 and len(train) == 3
    assert len(dm.dataset("val")) == 118  # one sample per detection
    batch = next(iter(train))
    assert batch["image"].shape == (4, 3, 256, 192) and batch["keypoints"].shape == (4, 17, 3)
    vb = next(iter(val))
    assert vb["sample_id"].tolist() == [0, 1, 2, 3]
    raw = json.loads((shared_data / "coco" / "test_coco.json").read_text())
    gt = dm.ground_truth("val")
    assert gt is dm.ground_truth("val")  # cached
    assert {a["id"] for a in gt["annotations"]} == {a["id"] for a in raw["annotations"]}
    assert {i["id"] for i in gt["images"]} == {i["id"] for i in raw["images"]}
    assert len(dm.records("val")) == 4


def test_small_train_split_keeps_partial_batch(shared_data: Path) -> None:
    dm = _coco_dm(shared_data, batch_size=64)
    dm.setup("fit")
    with pytest.warns(UserWarning, match="fewer than batch_size"):
        loader = dm.train_dataloader()
    assert not loader.drop_last and len(loader) == 1


def test_augmentation_dict_reaches_the_dataset(shared_data: Path) -> None:
    dm = _coco_dm(shared_data, augmentation={"flip_prob": 1.0, "rotation_factor": 0.0})
    ds = dm.dataset("train")
    assert ds.transform.augmentation.flip_prob == 1.0 and ds.transform.augmentation.scale_factor == 0.35
    assert bool(ds[0]["flipped"])
    val = dm.dataset("val")
    assert not val.transform.augmentation.enabled and not bool(val[0]["flipped"])
    m = MPIIDataModule(root="x", augmentation={"flip_prob": 0.0})
    assert m.train_augmentation.scale_factor == 0.25 and m.train_augmentation.half_body_prob == 0.0


def test_custom_keypoint_set_override(shared_data: Path) -> None:
    custom = {
        "name": "coco-custom",
        "keypoints": list(COCO.keypoints),
        "flip_pairs": [list(p) for p in COCO.flip_pairs],
        "upper_body": list(COCO.upper_body),
    }
    dm = _coco_dm(shared_data, keypoint_set=custom)
    assert dm.keypoint_set.name == "coco-custom" and dm.flip_indices == COCO.flip_indices
    dm.setup("validate")
    assert len(dm.dataset("val")) == 12


def test_mpii_datamodule_on_shared_sample(shared_data: Path) -> None:
    mp = shared_data / "mpii"
    dm = MPIIDataModule(
        root="x",
        val_ann=str(mp / "test_mpii.json"),
        val_images=str(mp),
        val_headboxes=str(mp / "mpii_gt_val.mat"),
        num_workers=0,
        batch_size=5,
    )
    assert dm.headbox_file("val") == mp / "mpii_gt_val.mat"
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (5, 3, 256, 256)
    assert torch.isfinite(batch["head_size"]).all() and batch["source_index"].tolist() == [0, 1, 2, 3, 4]
    assert dm.hparams["val_headboxes"] == str(mp / "mpii_gt_val.mat")


def test_aic_formats_agree(shared_data: Path) -> None:
    coco_style = AICDataModule(
        root="x", val_ann=str(shared_data / "aic" / "test_aic.json"), val_images=str(shared_data / "aic"), num_workers=0
    )
    raw_ann = shared_data / "aic_raw" / "keypoint_annotations_sample.json"
    raw = AICDataModule(
        root="x", format="raw", val_ann=str(raw_ann), val_images=str(shared_data / "aic"), num_workers=0
    )
    a, b = coco_style.dataset("val"), raw.dataset("val")
    assert len(a) == len(b) == 9
    ka = sorted(tuple(s["gt_keypoints"].flatten().tolist()) for s in (a[i] for i in range(9)))
    kb = sorted(tuple(s["gt_keypoints"].flatten().tolist()) for s in (b[i] for i in range(9)))
    assert ka == kb


def test_bottomup_mode_batches(shared_data: Path) -> None:
    dm = _coco_dm(shared_data, mode="bottomup", input_size=(128, 128), batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["keypoints"].shape == (2, 30, 17, 3) and batch["mask"].shape == (2, 128, 128)
    assert batch["num_persons"].min() >= 1


def test_demo_datamodule_generates_and_reads(tmp_path: Path) -> None:
    dm = DemoDataModule(cache_root=str(tmp_path), num_train=4, num_val=2, batch_size=2, num_workers=0)
    dm.prepare_data()
    root = dm.demo_dir()
    assert root.parent == tmp_path and (root / "annotations" / "person_keypoints_train.json").is_file()
    assert dm.paths("val") == (root / "annotations" / "person_keypoints_val.json", root / "val")
    dm.setup("fit")
    raw = json.loads((root / "annotations" / "person_keypoints_train.json").read_text())
    expected = sum(1 for a in raw["annotations"] if not a.get("iscrowd") and a["num_keypoints"] > 0)
    assert len(dm.dataset("train")) == expected
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 256, 192)
    assert len(dm.ground_truth("test")["images"]) == 2


def test_lightning_cli_can_introspect_the_signatures(tmp_path: Path) -> None:
    from jsonargparse import ArgumentParser

    for cls in (COCODataModule, MPIIDataModule, AICDataModule, DemoDataModule):
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, "data")
        cfg = parser.parse_args(["--data.input_size", "[128, 160]", "--data.augmentation", '{"flip_prob": 0.2}'])
        init = parser.instantiate_classes(cfg)["data"]
        assert isinstance(init, cls) and init.input_size == (128, 160)
        assert init.train_augmentation.flip_prob == 0.2

"""The thin datamodule constructors (only what differs declared, the rest forwarded with ``**kwargs``) still offer the
CLI every option with the same default: jsonargparse follows ``super().__init__(**kwargs)`` into
:class:`PoseDataModule`, so ``--print_config`` / ``--help`` list what the full signatures listed before (issue 10)."""

from __future__ import annotations

import pytest
from jsonargparse import ArgumentParser

from lightning_pose.data.datamodules import AICDataModule, COCODataModule, DemoDataModule, MPIIDataModule

#: the options every datamodule took before the refactor, with their defaults (PoseDataModule's signature)
COMMON = {
    "train_ann": None,
    "train_images": None,
    "val_ann": None,
    "val_images": None,
    "test_ann": None,
    "test_images": None,
    "input_size": (192, 256),
    "batch_size": 32,
    "val_batch_size": None,
    "num_workers": 2,
    "augmentation": None,
    "val_boxes": "gt",
    "test_boxes": "gt",
    "mode": "topdown",
    "skip_invalid": False,
    "keypoint_set": None,
    "pin_memory": False,
    "persistent_workers": False,
    "max_persons": 30,
    "seed": 0,
    "check_images": True,
    "prefetch_factor": None,
    "augment_on": "cpu",
}
_NO_PATHS = ("train_ann", "train_images", "val_ann", "val_images", "test_ann", "test_images")

EXPECTED = {
    COCODataModule: {**COMMON, "root": "data/coco"},
    AICDataModule: {**COMMON, "root": "data/aic", "format": "coco"},
    # MPII has no detection boxes; 256x256 input; head boxes for PCKh
    MPIIDataModule: {
        **{k: v for k, v in COMMON.items() if k not in ("val_boxes", "test_boxes")},
        "root": "data/mpii",
        "input_size": (256, 256),
        "train_headboxes": None,
        "val_headboxes": None,
        "test_headboxes": None,
    },
    # the demo files live in the generated folder: no root / paths / boxes / keypoint set options
    DemoDataModule: {
        **{k: v for k, v in COMMON.items() if k not in (*_NO_PATHS, "val_boxes", "test_boxes", "keypoint_set")},
        "cache_root": None,
        "demo_seed": 0,
        "num_train": 1200,
        "num_val": 200,
        "image_size": (256, 256),
        "max_people": 3,
    },
}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_cli_sees_every_option_with_its_default(cls: type) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    assert parser.get_defaults().data.as_dict() == EXPECTED[cls]


@pytest.mark.parametrize(
    "cls, option",
    [
        (MPIIDataModule, "val_boxes"),
        (DemoDataModule, "root"),
        (DemoDataModule, "train_ann"),
        (DemoDataModule, "keypoint_set"),
    ],
)
def test_options_a_dataset_does_not_offer_are_refused(cls: type, option: str, tmp_path) -> None:
    with pytest.raises(TypeError, match=option):
        cls(**{option: str(tmp_path)})


def test_forwarded_options_reach_the_base(tmp_path) -> None:
    dm = MPIIDataModule(root=str(tmp_path), batch_size=4, val_batch_size=2, seed=7, val_headboxes="h.mat")
    assert (dm.batch_size, dm.val_batch_size, dm.seed, dm.input_size) == (4, 2, 7, (256, 256))
    assert dm.hparams["val_headboxes"] == "h.mat" and dm.hparams["batch_size"] == 4
    demo = DemoDataModule(cache_root=str(tmp_path), num_train=10, input_size=(64, 96), mode="bottomup")
    assert (demo.num_train, demo.input_size, demo.mode, str(demo.root)) == (10, (64, 96), "bottomup", str(tmp_path))
    assert demo.hparams["root"] == str(tmp_path) and demo.hparams["num_train"] == 10

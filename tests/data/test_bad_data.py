"""Bad data is caught before training with one clear line, dropped (and counted once) with skip_invalid, and reported
by `lightning-pose data check`: real files damaged in tmp_path (issue 8, section 4)."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from lightning_pose.data.check import main as check_main
from lightning_pose.data.datamodules import COCODataModule, MPIIDataModule
from lightning_pose.data.readers import read_coco
from lightning_pose.data.readers.image_files import check_image_file
from lightning_pose.data.records import DatasetError
from lightning_pose.errors import ConfigError

#: the damaged image: COCO val2017 40083 (500x333 in the annotation, 3 persons)
VICTIM = "000000040083.jpg"


@pytest.fixture()
def coco_copy(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """``(annotation file, image folder)``: a writable copy of the COCO sample in tmp_path."""
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for f in (shared_data / "coco").glob("*.jpg"):
        shutil.copyfile(f, img_dir / f.name)
    ann = tmp_path / "ann.json"
    shutil.copyfile(shared_data / "coco" / "test_coco.json", ann)
    return ann, img_dir


def _set_file_name(ann: Path, old: str, new: str) -> None:
    data = json.loads(ann.read_text())
    for im in data["images"]:
        if im["file_name"] == old:
            im["file_name"] = new
    ann.write_text(json.dumps(data))


def _truncate(img: Path, ann: Path) -> None:
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])


def _zero_middle(img: Path, ann: Path) -> None:
    data = bytearray(img.read_bytes())
    n = len(data)
    data[n // 3 : 2 * n // 3] = bytes(2 * n // 3 - n // 3)
    img.write_bytes(bytes(data))


def _zero_one_sector(img: Path, ann: Path) -> None:
    data = bytearray(img.read_bytes())
    start = len(data) // 2 // 512 * 512
    data[start : start + 512] = bytes(512)
    img.write_bytes(bytes(data))


def _all_zero(img: Path, ann: Path) -> None:
    img.write_bytes(bytes(img.stat().st_size))


def _resize(img: Path, ann: Path) -> None:
    with Image.open(img) as im:
        im.resize((320, 240)).save(img, quality=90)


def _dangling_link(img: Path, ann: Path) -> None:
    img.unlink()
    img.symlink_to(img.parent.parent / "annex" / "objects" / "SHA256E-s1234--abc.jpg")


def _link_to_folder(img: Path, ann: Path) -> None:
    img.unlink()
    (img.parent.parent / "a_folder").mkdir()
    img.symlink_to(img.parent.parent / "a_folder", target_is_directory=True)


def _png(img: Path, damage: Callable[[bytes], bytes]) -> None:
    buf = io.BytesIO()
    with Image.open(img) as im:
        im.save(buf, "PNG")
    img.with_suffix(".png").write_bytes(damage(buf.getvalue()))
    img.unlink()


def _png_zeroed(img: Path, ann: Path) -> None:
    def zero(b: bytes) -> bytes:
        n = len(b)
        return b[: n // 2] + bytes(1024) + b[n // 2 + 1024 :]

    _png(img, zero)
    _set_file_name(ann, VICTIM, VICTIM.replace(".jpg", ".png"))


def _png_truncated(img: Path, ann: Path) -> None:
    _png(img, lambda b: b[: len(b) * 2 // 3])
    _set_file_name(ann, VICTIM, VICTIM.replace(".jpg", ".png"))


#: case -> (damage(image, annotation), kind, substring of the problem)
BAD_IMAGES: dict[str, tuple[Callable[[Path, Path], None], str, str]] = {
    "missing": (lambda img, ann: img.unlink(), "missing_image", "image file not found"),
    "truncated_half": (_truncate, "unreadable_image", "ends without its end marker"),
    "zeroed_middle_third": (_zero_middle, "unreadable_image", "zero bytes"),
    "zeroed_one_sector": (_zero_one_sector, "unreadable_image", "Corrupt JPEG data"),
    "all_zero_bytes": (_all_zero, "unreadable_image", "header unreadable"),
    "size_differs_from_annotation": (_resize, "size_mismatch", "320x240 px but the annotation says 500x333"),
    "dangling_symlink": (_dangling_link, "missing_image", "git annex get"),
    "symlink_to_a_folder": (_link_to_folder, "missing_image", "not a regular file"),
    "png_zeroed": (_png_zeroed, "unreadable_image", "CRC"),
    "png_truncated": (_png_truncated, "unreadable_image", "IEND"),
}


def _damage(case: str, ann: Path, img_dir: Path) -> Path:
    """Apply ``case`` to the victim image; returns the image path the annotation now names."""
    damage = BAD_IMAGES[case][0]
    damage(img_dir / VICTIM, ann)
    return img_dir / (VICTIM.replace(".jpg", ".png") if case.startswith("png") else VICTIM)


def _dm(ann: Path, img_dir: Path, **kw) -> COCODataModule:
    return COCODataModule(
        root=str(ann.parent),
        train_ann=str(ann),
        train_images=str(img_dir),
        val_ann=str(ann),
        val_images=str(img_dir),
        input_size=(64, 64),
        batch_size=2,
        num_workers=0,
        **kw,
    )


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_one_line_before_training(case: str, coco_copy: tuple[Path, Path]) -> None:
    ann, img_dir = coco_copy
    path = _damage(case, ann, img_dir)
    _, kind, text = BAD_IMAGES[case]
    dm = _dm(ann, img_dir)
    with pytest.raises(DatasetError) as ei:
        dm.check_inputs("fit")
    msg = str(ei.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{path}: image 40083 ({path.name}): ") and text in msg
    assert [p.kind for p in ei.value.problems] == [kind]


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_skip_invalid_drops_bad_image_and_counts_it_once(case: str, coco_copy: tuple[Path, Path]) -> None:
    ann, img_dir = coco_copy
    _damage(case, ann, img_dir)
    dm = _dm(ann, img_dir, skip_invalid=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.check_inputs("validate")
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1 and "(1 images, 3 persons)" in skipped[0] and BAD_IMAGES[case][1] in skipped[0]
    assert sorted(r.image_id for r in dm.records("val")) == [785, 196141, 197388]
    assert len(dm.dataset("val")) > 0


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_data_check_reports_bad_image(case: str, coco_copy: tuple[Path, Path]) -> None:
    ann, img_dir = coco_copy
    path = _damage(case, ann, img_dir)
    _, kind, text = BAD_IMAGES[case]
    out, err = io.StringIO(), io.StringIO()
    code = check_main(["coco", "--ann", str(ann), "--images", str(img_dir)], out=out, err=err)
    report = out.getvalue()
    assert code == 1, report + err.getvalue()
    assert f"PROBLEMS: 1 ({kind} 1)" in report
    line = next(ln for ln in report.splitlines() if ln.startswith(f"  [{kind}]"))
    assert str(path) in line and "image 40083" in line and text in line
    assert "images: 3" in report  # what training keeps


def test_healthy_flat_and_progressive_jpegs_are_not_flagged(tmp_path: Path) -> None:
    # flat black regions compress to long zero runs with optimised / progressive Huffman tables
    black = np.zeros((480, 640, 3), np.uint8)
    letterbox = black.copy()
    letterbox[60:420] = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    cases = {
        "black_opt.jpg": (black, {"optimize": True}),
        "black_prog.jpg": (black, {"progressive": True}),
        "letterbox_prog.jpg": (letterbox, {"progressive": True}),
    }
    for name, (pixels, opts) in cases.items():
        Image.fromarray(pixels).save(tmp_path / name, quality=90, **opts)
        data = (tmp_path / name).read_bytes()
        assert b"\x00" * 64 in data[data.find(b"\xff\xda") :], name  # the suspicious pattern is really there
        result = check_image_file(tmp_path / name, 640, 480)
        assert result.ok and result.size == (640, 480), (name, result.problem)


def test_symlink_farm_trains_and_checks_clean(coco_copy: tuple[Path, Path], tmp_path: Path) -> None:
    """DVC / git-annex layouts: every image a symlink (absolute or relative) to a store outside the image folder."""
    ann, img_dir = coco_copy
    store = tmp_path / "store" / "objects"
    store.mkdir(parents=True)
    for i, f in enumerate(sorted(img_dir.glob("*.jpg"))):
        shutil.move(f, store / f.name)
        f.symlink_to(store / f.name if i % 2 else os.path.relpath(store / f.name, img_dir))
    out = io.StringIO()
    assert check_main(["coco", "--ann", str(ann), "--images", str(img_dir)], out=out, err=io.StringIO()) == 0
    assert "OK: no problems found" in out.getvalue()
    dm = _dm(ann, img_dir)
    dm.check_inputs("fit")
    assert len(dm.records("train")) == 4
    sample = dm.dataset("val")[0]
    assert tuple(sample["image"].shape) == (3, 64, 64)
    # names in the annotation still cannot leave the image folder, symlinks or not
    _set_file_name(ann, VICTIM, f"../store/objects/{VICTIM}")
    _set_file_name(ann, "000000000785.jpg", str(store / "000000000785.jpg"))
    with pytest.raises(DatasetError) as ei:
        _dm(ann, img_dir).check_inputs("fit")
    assert sorted(p.kind for p in ei.value.problems) == ["path_escape", "path_escape"]
    assert "contains '..'" in str(ei.value) and "is absolute" in str(ei.value)


def test_load_time_size_check_when_images_are_not_prechecked(coco_copy: tuple[Path, Path]) -> None:
    ann, img_dir = coco_copy
    _resize(img_dir / VICTIM, ann)
    dm = _dm(ann, img_dir, check_images=False)
    dm.check_inputs("validate")  # only the annotations are checked
    ds = dm.dataset("val")
    index = next(i for i, it in enumerate(ds.items) if ds.records[it.record].image_id == 40083)
    with pytest.raises(DatasetError, match=r"decoded image is 320x240 px but the annotation says 500x333 px") as ei:
        ds[index]
    assert str(img_dir / VICTIM) in str(ei.value) and "\n" not in str(ei.value)


def test_reader_without_image_check_still_refuses_escapes(coco_copy: tuple[Path, Path]) -> None:
    ann, img_dir = coco_copy
    _set_file_name(ann, VICTIM, "sub/../../x.jpg")
    with pytest.raises(DatasetError, match=r"image 40083 \(sub/../../x.jpg\): image path 'sub/../../x.jpg' contains"):
        read_coco(ann, img_dir)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": -4}, "batch_size must be an integer >= 1"),
        ({"val_batch_size": 0}, "val_batch_size must be an integer >= 1"),
        ({"num_workers": -1}, "num_workers must be an integer >= 0"),
        ({"input_size": (0, 64)}, "input_size must be two positive integers"),
        ({"input_size": (64,)}, "input_size must be two positive integers"),
        ({"mode": "sideways"}, "mode must be one of"),
    ],
)
def test_bad_options_are_config_errors(kwargs: dict, text: str, tmp_path: Path) -> None:
    args = {"root": str(tmp_path), "num_workers": 0, **kwargs}
    with pytest.raises(ConfigError, match=text) as ei:
        COCODataModule(**args)
    assert str(ei.value).startswith("COCODataModule: ") and "\n" not in str(ei.value)


@pytest.mark.parametrize(
    "layout, text",
    [
        ("no_root", "data root of MPIIDataModule not found"),
        ("no_annotation", "annotation file of the 'train' split of MPIIDataModule not found (default location under"),
        ("no_image_folder", "image folder of the 'train' split of MPIIDataModule not found (default location under"),
        (
            "explicit_annotation",
            "annotation file of the 'train' split of MPIIDataModule not found (given as train_ann)",
        ),
    ],
)
def test_missing_paths_are_one_line(layout: str, text: str, shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "mpii"
    kw: dict = {}
    if layout != "no_root":
        (root / "annot").mkdir(parents=True)
        (root / "images").mkdir()
        shutil.copyfile(shared_data / "mpii" / "test_mpii.json", root / "annot" / "train.json")
        shutil.copyfile(shared_data / "mpii" / "test_mpii.json", root / "annot" / "valid.json")
    if layout == "no_annotation":
        (root / "annot" / "train.json").unlink()
    if layout == "no_image_folder":
        (root / "images").rmdir()
    if layout == "explicit_annotation":
        kw["train_ann"] = str(root / "annot" / "train_typo.json")
    dm = MPIIDataModule(root=str(root), num_workers=0, **kw)
    with pytest.raises(DatasetError) as ei:
        dm.check_inputs("fit")
    msg = str(ei.value)
    assert text in msg and "\n" not in msg
    assert msg.startswith(str(root) if layout != "explicit_annotation" else kw["train_ann"])


def test_pretrained_offline_fails_fast_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    from lightning_pose.models.backbones import create_backbone

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as on a machine without network ...
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # ... and without cached weights
    start = time.perf_counter()
    with pytest.raises(ConfigError) as ei:
        create_backbone("resnet18", pretrained=True)
    assert time.perf_counter() - start < 20
    msg = str(ei.value)
    assert "\n" not in msg and "'resnet18' could not be downloaded" in msg and "seems offline" in msg
    assert "pretrained: false" in msg and str(tmp_path / "hf-cache") in msg
    assert constants.HF_HUB_OFFLINE is True  # restored as it was

"""`lightning-pose fit` with bad options or bad data: one `lightning-pose: error: ...` line, exit status 2, no
traceback, and no W&B run created (the checks run before the trainer and its logger exist). Issue 8, section 4."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import lightning.pytorch  # noqa: F401  (imported here, its log handler binds to the session's stderr, not to capsys)
import pytest

from lightning_pose.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")
VICTIM = "000000040083.jpg"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_cache: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lightning-pose"])
    monkeypatch.setenv("WANDB_MODE", "offline")  # a created run would leave runs/wandb/offline-run-* behind
    return tmp_path


def _coco(tmp_path: Path, shared_data: Path, damage: str | None = None) -> list[str]:
    img_dir = tmp_path / "coco" / "images"
    img_dir.mkdir(parents=True)
    for f in (shared_data / "coco").glob("*.jpg"):
        shutil.copyfile(f, img_dir / f.name)
    ann = tmp_path / "coco" / "ann.json"
    shutil.copyfile(shared_data / "coco" / "test_coco.json", ann)
    if damage == "truncated":
        data = (img_dir / VICTIM).read_bytes()
        (img_dir / VICTIM).write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        (img_dir / VICTIM).unlink()
    return [
        "--data=COCODataModule",
        f"--data.init_args.root={tmp_path / 'coco'}",
        f"--data.init_args.train_ann={ann}",
        f"--data.init_args.train_images={img_dir}",
        f"--data.init_args.val_ann={ann}",
        f"--data.init_args.val_images={img_dir}",
        "--data.init_args.input_size=[64,64]",
        "--data.init_args.num_workers=0",
    ]


def _error_line(capsys: pytest.CaptureFixture, argv: list[str], tmp_path: Path) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", TINY, *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text, text
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("lightning-pose: error: ")]
    assert len(errors) == 1, captured.err
    # the logger object may exist (jsonargparse builds it with the config), but its W&B run must not
    assert not list(tmp_path.glob("runs/wandb/*run-*")), "a W&B run was created before the error"
    return errors[0]


#: case -> (extra arguments (or a builder using tmp_path / shared_data), substrings of the one error line)
CASES = {
    "batch_size_0": (
        ["--data.init_args.batch_size=0"],
        ["DemoDataModule: batch_size must be an integer >= 1", "got 0"],
    ),
    "batch_size_negative": (["--data.init_args.batch_size=-2"], ["batch_size must be an integer >= 1", "got -2"]),
    "stride": (
        ["--data.init_args.input_size=[70,70]"],
        ["SimpleBaselineTask: input_size [70, 70]", "not a multiple of the network stride 8", "64 or 72"],
    ),
    "hourglass_too_small": (
        ["--model=StackedHourglassTask", "--data.init_args.input_size=[32,32]"],
        ["StackedHourglassTask: input_size [32, 32]", "at least 64 px"],
    ),
    "missing_root": (
        ["--data=COCODataModule", "--data.init_args.root=/nonexistent/coco"],
        ["/nonexistent/coco: data root of COCODataModule not found", "set root"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_option_errors_are_one_line(case: str, in_tmp: Path, capsys: pytest.CaptureFixture) -> None:
    argv, texts = CASES[case]
    line = _error_line(capsys, argv, in_tmp)
    for text in texts:
        assert text in line, line


@pytest.mark.parametrize(
    "damage, texts",
    [
        ("truncated", ["ends without its end marker", "skip_invalid"]),
        ("missing", ["image file not found"]),
    ],
)
def test_bad_image_is_one_line_before_the_run(
    damage: str, texts: list[str], in_tmp: Path, shared_data: Path, capsys: pytest.CaptureFixture
) -> None:
    line = _error_line(capsys, _coco(in_tmp, shared_data, damage), in_tmp)
    assert f"{in_tmp / 'coco' / 'images' / VICTIM}: image 40083 ({VICTIM}): " in line
    for text in texts:
        assert text in line, line


def test_missing_annotation_file_names_it(in_tmp: Path, shared_data: Path, capsys: pytest.CaptureFixture) -> None:
    argv = _coco(in_tmp, shared_data) + [f"--data.init_args.val_ann={in_tmp / 'coco' / 'val_typo.json'}"]
    line = _error_line(capsys, argv, in_tmp)
    assert f"{in_tmp / 'coco' / 'val_typo.json'}: annotation file of the 'val' split" in line
    assert "given as val_ann" in line


def test_pretrained_offline_is_one_line(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(in_tmp / "empty-hf-cache"))
    line = _error_line(capsys, ["--model.init_args.pretrained=true"], in_tmp)
    assert "pretrained: true: the ImageNet weights of timm backbone 'resnet18' could not be downloaded" in line
    assert "pretrained: false" in line and "seems offline" in line


@pytest.mark.slow
def test_skip_invalid_trains_without_the_bad_image(
    in_tmp: Path, shared_data: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = _coco(in_tmp, shared_data, "truncated") + [
        "--data.init_args.skip_invalid=true",
        "--trainer.logger=false",
        "--trainer.limit_train_batches=1",
        "--trainer.limit_val_batches=1",
    ]
    with pytest.warns(UserWarning, match=r"skipped 4 records \(1 images, 3 persons\).*unreadable_image: 1"):
        assert main(["fit", "--config", TINY, *argv]) is None
    captured = capsys.readouterr()
    assert "Premature end of JPEG" not in captured.err and "error:" not in captured.err
    assert sorted(in_tmp.rglob("*.ckpt")), "the run saved no checkpoint"

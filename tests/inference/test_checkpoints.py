"""Checkpoints: the model description they carry, loading every method without a config, and one-line
CheckpointErrors naming the file (missing, empty, truncated, unsafe, other keypoint count, other input size)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ckpt_helpers import INPUT_SIZE, METHODS, make_task, save_checkpoint  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sb_ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(make_task("simple_baseline"), tmp_path_factory.mktemp("ckpt") / "sb.ckpt")


def _load_both_ways(method: str, tmp_path: Path) -> None:
    from lightning_pose.tasks.base import PoseTask

    task = make_task(method).eval()
    path = save_checkpoint(task, tmp_path / f"{method}.ckpt")
    by_class = type(task).load_from_checkpoint(path)
    by_base = PoseTask.load_from_checkpoint(path)
    assert type(by_class) is type(task) and type(by_base) is type(task)
    assert not by_class.training
    images = torch.randn(2, 3, INPUT_SIZE[1], INPUT_SIZE[0], generator=torch.Generator().manual_seed(1))
    want = task.predict_keypoints(images)
    for loaded in (by_class, by_base):
        got = loaded.predict_keypoints(images)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    state = task.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in by_class.state_dict().items())


def test_simple_baseline_loads_without_config(tmp_path):
    _load_both_ways("simple_baseline", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m != "simple_baseline"])
def test_every_method_loads_without_config(method, tmp_path):
    _load_both_ways(method, tmp_path)


def test_checkpoint_carries_model_description(sb_ckpt):
    ckpt = torch.load(sb_ckpt, weights_only=True)  # plain types only
    meta = ckpt["lightning_pose"]
    assert meta["class_path"] == "lightning_pose.tasks.heatmap.SimpleBaselineTask"
    assert meta["input_size"] == [64, 64] and meta["num_keypoints"] == 17
    assert meta["keypoint_set"]["name"] == "coco" and len(meta["keypoint_set"]["keypoints"]) == 17
    assert meta["init_args"]["deconv_channels"] == [16, 16, 16] and meta["init_args"]["backbone"] == "lcnet_050"
    assert meta["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["normalization"]["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert "optimizer" not in meta["init_args"] and "num_keypoints" not in meta["init_args"]


def test_wrong_task_class_is_refused(sb_ckpt):
    from lightning_pose.errors import CheckpointError
    from lightning_pose.tasks import DeepPoseTask

    with pytest.raises(CheckpointError, match=r"sb\.ckpt.*holds a SimpleBaselineTask, not a DeepPoseTask"):
        DeepPoseTask.load_from_checkpoint(sb_ckpt)


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "garbage"])
def test_unreadable_checkpoint_is_one_line_naming_the_file(kind, sb_ckpt, tmp_path):
    from lightning_pose.errors import CheckpointError
    from lightning_pose.tasks import SimpleBaselineTask

    path = tmp_path / f"{kind}.ckpt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = sb_ckpt.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(b"not a checkpoint at all\n" * 10)
    expected = {
        "missing": "does not exist",
        "empty": r"empty \(0 bytes\)",
        "truncated": "truncated",
        "garbage": "truncated or in another format",
    }[kind]
    with pytest.raises(CheckpointError, match=rf"^checkpoint {path}: .*{expected}") as info:
        SimpleBaselineTask.load_from_checkpoint(path)
    assert "\n" not in str(info.value)


class _NotAllowlisted:
    """A class torch's weights_only unpickler does not know."""

    def __init__(self) -> None:
        self.payload = 42


def test_checkpoint_with_arbitrary_object_is_refused(sb_ckpt, tmp_path):
    from lightning_pose.errors import CheckpointError
    from lightning_pose.tasks.base import PoseTask

    ckpt = torch.load(sb_ckpt, weights_only=True)
    ckpt["extra"] = _NotAllowlisted()
    path = tmp_path / "unsafe.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path}: refused.*weights_only"):
        PoseTask.load_from_checkpoint(path)


def _fake_batch() -> dict:
    k = 16
    return {
        "image": torch.zeros(1, 3, INPUT_SIZE[1], INPUT_SIZE[0]),
        "keypoints": torch.zeros(1, k, 3),
        "crop_to_image": torch.eye(2, 3, dtype=torch.float64)[None],
    }


def _trainer():
    import lightning as L

    return L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
        enable_model_summary=False,
    )


def test_trainer_refuses_checkpoint_of_another_keypoint_count(sb_ckpt):
    """validate/test/predict with --ckpt_path of a 17-keypoint model into a 16-keypoint (MPII) config."""
    from lightning_pose.errors import CheckpointError

    mpii_task = make_task("simple_baseline", keypoint_set="mpii")
    with pytest.raises(CheckpointError, match=rf"checkpoint {sb_ckpt}: trained for 17 keypoints .* has 16"):
        _trainer().predict(mpii_task, dataloaders=[_fake_batch()], ckpt_path=str(sb_ckpt))


def test_trainer_refuses_checkpoint_of_another_input_size(sb_ckpt):
    from lightning_pose.errors import CheckpointError

    task = make_task("simple_baseline", input_size=(64, 96))
    with pytest.raises(CheckpointError, match=rf"checkpoint {sb_ckpt}: trained at input size 64x64 .* 64x96"):
        _trainer().predict(task, dataloaders=[_fake_batch()], ckpt_path=str(sb_ckpt))


def test_trainer_reports_empty_checkpoint_in_one_line(tmp_path):
    from lightning_pose.errors import CheckpointError

    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"checkpoint {path}: file is empty"):
        _trainer().predict(make_task("simple_baseline"), dataloaders=[_fake_batch()], ckpt_path=str(path))


def test_loader_refuses_override_of_input_size(sb_ckpt):
    from lightning_pose.errors import CheckpointError
    from lightning_pose.tasks.checkpoint import task_from_checkpoint

    with pytest.raises(CheckpointError, match="trained at input size 64x64"):
        task_from_checkpoint(sb_ckpt, input_size=(96, 128))
    assert task_from_checkpoint(sb_ckpt, flip_test=False).flip_test is False


def test_trainer_refuses_weights_of_another_network_width(sb_ckpt):
    from lightning_pose.errors import CheckpointError
    from lightning_pose.tasks import SimpleBaselineTask

    narrower = SimpleBaselineTask(
        backbone="lcnet_050", deconv_channels=(8, 8, 8), keypoint_set="coco", input_size=INPUT_SIZE
    )
    with pytest.raises(CheckpointError, match=rf"checkpoint {sb_ckpt}: \d+ weight\(s\) do not fit the model, first "):
        _trainer().predict(narrower, dataloaders=[_fake_batch()], ckpt_path=str(sb_ckpt))


def test_checkpoint_of_an_older_version_loads_by_class(sb_ckpt, tmp_path):
    """Checkpoints written before the model description existed (hparams only, with W&B extras such as
    ``num_keypoints`` that are no constructor arguments) still load through their task class."""
    from lightning_pose.errors import CheckpointError
    from lightning_pose.tasks import SimpleBaselineTask
    from lightning_pose.tasks.base import PoseTask

    ckpt = torch.load(sb_ckpt, weights_only=True)
    del ckpt["lightning_pose"]
    assert ckpt["hyper_parameters"]["num_keypoints"] == 17
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    task = SimpleBaselineTask.load_from_checkpoint(old)
    assert task.input_size == (64, 64) and task.num_keypoints == 17
    with pytest.raises(CheckpointError, match="older version without the model class"):
        PoseTask.load_from_checkpoint(old)

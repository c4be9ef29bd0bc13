"""``lightning-pose export``: TorchScript and ONNX files with the decoder give the PyTorch keypoints and scores
(input-frame pixels) within 1e-4 on real COCO sample crops, for any batch size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "inference"))
from ckpt_helpers import make_task, save_checkpoint  # noqa: E402

torch.set_num_threads(1)
TOL = 1e-4


@pytest.fixture(scope="module")
def crops(shared_data) -> torch.Tensor:
    """The 14 val crops (64x64) of the real COCO sample, as the datamodule builds them."""
    from lightning_pose.data.datamodules import COCODataModule

    ann, images = str(shared_data / "coco" / "test_coco.json"), str(shared_data / "coco")
    dm = COCODataModule(
        root=images,
        train_ann=ann,
        train_images=images,
        val_ann=ann,
        val_images=images,
        input_size=(64, 64),
        batch_size=16,
        num_workers=0,
    )
    dm.setup("validate")
    return dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)["image"]  # normalised, as tasks see it


@pytest.mark.parametrize("method", ["simple_baseline", "deeppose"])
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_matches_pytorch(method, fmt, crops, tmp_path, capsys):
    from lightning_pose.cli import main

    task = make_task(method).eval()
    ckpt = save_checkpoint(task, tmp_path / f"{method}.ckpt")
    out = tmp_path / f"model.{'pt' if fmt == 'torchscript' else 'onnx'}"
    main(["export", "--ckpt_path", str(ckpt), "--format", fmt, "--out", str(out)])
    assert "input-frame px" in capsys.readouterr().out
    want_kp, want_sc = task.predict_keypoints(crops)  # flip test as trained (on)
    assert want_kp.shape == (len(crops), 17, 2)
    for batch in (crops[:1], crops):  # dynamic batch size (traced with 2)
        if fmt == "torchscript":
            with torch.no_grad():
                kp, sc = torch.jit.load(str(out))(batch)
            kp, sc = kp.numpy(), sc.numpy()
        else:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            kp, sc = sess.run(["keypoints", "scores"], {"images": batch.numpy()})
        n = len(batch)
        np.testing.assert_allclose(kp, want_kp[:n].numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(sc, want_sc[:n].numpy(), atol=TOL, rtol=0)
    # the keypoints are input-frame pixels, not normalised or heatmap units
    assert float(want_kp.abs().max()) > 2.0


def test_export_refuses_an_existing_file(tmp_path, capsys):
    from lightning_pose.cli import main

    ckpt = save_checkpoint(make_task("simple_baseline"), tmp_path / "sb.ckpt")
    out = tmp_path / "model.pt"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit) as info:
        main(["export", "--ckpt_path", str(ckpt), "--out", str(out)])
    assert info.value.code == 2 and out.read_bytes() == b"mine"
    assert f"lightning-pose: error: output {out} already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["export", "--ckpt_path", str(ckpt), "--out", str(ckpt), "--overwrite"])
    assert info.value.code == 2 and "would overwrite the input checkpoint" in capsys.readouterr().err

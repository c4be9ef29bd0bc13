"""GPU-ready options checked for correctness on CPU: bf16-mixed precision, channels_last, torch.compile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from shared_samples import coco_datamodule


def _task(**kw: Any) -> Any:
    from lightning_pose.tasks import SimpleBaselineTask

    return SimpleBaselineTask(
        backbone="lcnet_050", pretrained=False, deconv_channels=(16, 16), input_size=(64, 64), flip_test=False, **kw
    )


def _trainer(**kw: Any) -> Any:
    import lightning as L

    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        **kw,
    )


@pytest.mark.slow
def test_bf16_mixed_fit_step_runs_with_finite_loss(shared_data: Path) -> None:
    import lightning as L

    torch.set_num_threads(1)
    L.seed_everything(0, verbose=False)
    dm = coco_datamodule(shared_data, (64, 64))
    task = _task(keypoint_set=dm.keypoint_set)
    seen: dict[str, Any] = {"losses": []}
    task.network.register_forward_hook(lambda m, i, out: seen.__setitem__("dtype", out[-1].dtype))

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):  # noqa: ANN001
            seen["losses"].append(outputs["loss"].detach())

    _trainer(precision="bf16-mixed", max_steps=2, callbacks=[Record()]).fit(task, datamodule=dm)
    assert seen["dtype"] == torch.bfloat16, "the network ran under bf16 autocast"
    assert len(seen["losses"]) == 2 and all(torch.isfinite(v) for v in seen["losses"])
    assert all(torch.isfinite(p).all() for p in task.parameters()), "finite weights after the bf16 steps"


def test_channels_last_gives_the_default_outputs() -> None:
    torch.manual_seed(0)
    ref = _task()
    cl = _task(channels_last=True)
    cl.load_state_dict(ref.state_dict())
    cl.configure_model()
    cl.configure_model()  # idempotent
    conv = cl.network.backbone.body.conv_stem
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    formats: list[bool] = []
    conv.register_forward_pre_hook(lambda m, a: formats.append(a[0].is_contiguous(memory_format=torch.channels_last)))
    ref.eval()
    cl.eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        out_ref, out_cl = ref(x), cl(x)
    assert formats == [True], "the input batch is converted to NHWC"
    for a, b in zip(out_ref, out_cl):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
    coords_ref, _ = ref.decode(out_ref)
    coords_cl, _ = cl.decode(out_cl)
    torch.testing.assert_close(coords_cl, coords_ref)
    assert list(cl.state_dict()) == list(ref.state_dict())


@pytest.mark.slow
def test_compile_option_keeps_outputs_and_checkpoint_keys() -> None:
    """``compile`` through ``configure_model``. The test uses the ``aot_eager`` backend (TorchDynamo graph capture and
    AOTAutograd, the front end inductor uses): inductor's C++ code generation of even this tiny model took ~150 s on
    the loaded 2-core test machine, too long for the suite."""
    torch.manual_seed(0)
    ref = _task()
    comp = _task(compile={"backend": "aot_eager"})
    comp.load_state_dict(ref.state_dict())
    comp.configure_model()
    assert comp._compiled_call_impl is not None, "nn.Module.compile applied in place"
    assert list(comp.state_dict()) == list(ref.state_dict()), "checkpoint keys unchanged (no _orig_mod prefix)"
    x = torch.randn(2, 3, 64, 64)
    ref.train()
    comp.train()
    out_ref, out_comp = ref(x)[-1], comp(x)[-1]
    torch.testing.assert_close(out_comp, out_ref, atol=1e-5, rtol=1e-4)
    out_ref.square().mean().backward()
    out_comp.square().mean().backward()
    torch.testing.assert_close(comp.network.final.weight.grad, ref.network.final.weight.grad, atol=1e-5, rtol=1e-4)


def test_compile_option_values() -> None:
    assert _task()._compile_args is None
    assert _task(compile=True)._compile_args == {}
    assert _task(compile={"mode": "max-autotune"})._compile_args == {"mode": "max-autotune"}
    assert _task(compile=True).hparams["compile"] is True


def test_precision_auto_picks_bf16_only_where_the_hardware_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning_pose import trainer as trainer_module
    from lightning_pose.trainer import PoseTrainer, resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for explicit in ("32-true", "bf16-mixed", "16-mixed", 32, None):
        assert resolve_precision(explicit, "cpu") == explicit
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    assert resolve_precision("auto", "auto") == "bf16-mixed"
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "32-true"
    trainer = PoseTrainer(precision="auto", accelerator="cpu", logger=False, enable_checkpointing=False)
    assert trainer.precision == "32-true" and trainer.requested_precision == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", "gpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", "gpu") == "bf16-mixed"
    assert resolve_precision("auto", "cpu") == "32-true"  # CUDA present, CPU run asked for: the CPU's capability


def test_cli_reads_precision_auto() -> None:
    from lightning_pose.cli import run_lightning
    from lightning_pose.trainer import resolve_precision

    root = Path(__file__).resolve().parents[2]
    cli = run_lightning(
        [
            "--config",
            str(root / "tests" / "configs" / "tiny_demo.yaml"),
            "--trainer.logger",
            "false",
            "--trainer.precision",
            "auto",
        ],
        run=False,
    )
    assert cli.trainer.requested_precision == "auto"
    assert cli.trainer.precision == resolve_precision("auto", "cpu")

"""``lightning-pose export --ckpt_path CKPT --format {torchscript,onnx} --out FILE``: a deployable network.

The exported graph is the network **with its decoder** (and the flip test when the checkpoint uses one):

* input ``images``: float32 ``(B, 3, H_in, W_in)``, RGB crops normalised with the ImageNet mean/std
  (``(x / 255 - mean) / std``), ``B`` dynamic, ``H_in, W_in`` the checkpoint's input size;
* outputs ``keypoints``: float32 ``(B, K, 2)`` x, y in **input-frame pixels** (0-based pixels of the crop; map them
  to the image with the crop's inverse affine matrix), and ``scores``: float32 ``(B, K)``.

TorchScript files are traced (``torch.jit.trace``) and load with ``torch.jit.load``; ONNX files (opset 17, the
TorchScript-based exporter) need the optional extra ``pip install "lightning-human-pose[export]"`` and run with
onnxruntime. The file is written to a temporary name and renamed into place; an existing file is refused unless
``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

from torch import Tensor, nn

from lightning_pose.errors import ConfigError, OutputPathError

__all__ = ["DecodedPoseModel", "export_model", "main", "FORMATS"]

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 17


class DecodedPoseModel(nn.Module):
    """``images (B, 3, H, W)`` -> ``(keypoints (B, K, 2) input-frame px, scores (B, K))`` of a task."""

    def __init__(self, task: Any, flip_test: bool) -> None:
        super().__init__()
        # the LightningModule itself is not a child (tracing would probe its trainer-bound properties); its
        # networks and codecs are, so that their weights become the exported module's parameters
        object.__setattr__(self, "_task", task.eval())
        self.parts = nn.ModuleDict({n: m for n, m in task.named_children() if not n.startswith("metrics_")})
        self.flip_test = bool(flip_test)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        task = self._task
        outputs = task(images)
        if self.flip_test:
            outputs = task.merge_flip(outputs, task(images.flip(-1)))
        coords, scores = task.decode(outputs)
        return coords.float(), scores.float()


def _atomic_target(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    return Path(tmp)


def export_model(
    task: Any,
    out: str | Path,
    fmt: str = "torchscript",
    flip_test: bool | None = None,
    overwrite: bool = False,
    example_batch: int = 2,
) -> Path:
    """Export ``task`` (network + decoder) to ``out``; returns the path. See the module docstring for the I/O."""
    import torch

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputPathError(f"output {out} already exists; pass --overwrite or choose another --out")
    ckpt = getattr(task, "checkpoint_path", None)
    if ckpt and Path(ckpt).resolve() == out.resolve():
        raise OutputPathError(f"output {out} would overwrite the input checkpoint")
    flip = task.flip_test if flip_test is None else bool(flip_test)
    model = DecodedPoseModel(task.cpu().eval(), flip).eval()
    w, h = task.input_size
    example = torch.randn(example_batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    tmp = _atomic_target(out)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # shape/argument checks in the codecs are constant for a fixed input size: the tracer's notes about
            # them are not actionable for the user
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
            if fmt == "torchscript":
                traced = torch.jit.trace(model, example, check_trace=False)
                meta = json.dumps(_description(task, flip))
                torch.jit.save(traced, str(tmp), _extra_files={"lightning_pose.json": meta})
            else:
                _require_onnx()
                torch.onnx.export(
                    model,
                    (example,),
                    str(tmp),
                    input_names=["images"],
                    output_names=["keypoints", "scores"],
                    dynamic_axes={"images": {0: "batch"}, "keypoints": {0: "batch"}, "scores": {0: "batch"}},
                    opset_version=ONNX_OPSET,
                    dynamo=False,
                    do_constant_folding=True,
                )
                _attach_onnx_metadata(tmp, _description(task, flip))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _description(task: Any, flip: bool) -> dict[str, Any]:
    from lightning_pose.data.transforms.image_io import IMAGENET_MEAN, IMAGENET_STD

    return {
        "keypoints": list(task.keypoint_set.keypoints),
        "keypoint_set": task.keypoint_set.name,
        "input_size": list(task.input_size),
        "flip_test": flip,
        "outputs": "keypoints (B,K,2) input-frame px, scores (B,K)",
        "mean": [float(v) for v in IMAGENET_MEAN],
        "std": [float(v) for v in IMAGENET_STD],
        "method": getattr(task, "method_name", ""),
    }


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError('--format onnx needs the onnx package: pip install "lightning-human-pose[export]"') from None


def _attach_onnx_metadata(path: Path, description: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in description.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(model, str(path))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lightning-pose export", description="Export a checkpoint's network with its decoder (dynamic batch)."
    )
    p.add_argument("--ckpt_path", "--ckpt-path", required=True, help="checkpoint written by lightning-pose fit")
    p.add_argument("--format", default="torchscript", choices=FORMATS)
    p.add_argument("--out", required=True, help="output file (.pt for TorchScript, .onnx for ONNX)")
    p.add_argument(
        "--flip-test",
        dest="flip_test",
        action="store_true",
        default=None,
        help="include the flip test in the graph (default: as trained)",
    )
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lightning_pose.tasks.checkpoint import task_from_checkpoint

    task = task_from_checkpoint(args.ckpt_path)
    path = export_model(task, args.out, args.format, flip_test=args.flip_test, overwrite=args.overwrite)
    w, h = task.input_size
    print(
        f"exported {type(task).__name__} ({args.format}) to {path}: images (B, 3, {h}, {w}) ImageNet-normalised "
        f"RGB -> keypoints (B, {task.num_keypoints}, 2) input-frame px, scores (B, {task.num_keypoints})"
    )
    return 0

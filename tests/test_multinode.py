"""Beyond one machine: ``fit`` and ``validate`` as 2 nodes x 1 process on loopback, launched the way a cluster
launches them (one command per node with ``MASTER_ADDR``/``MASTER_PORT``/``NODE_RANK``, and ``torchrun --nnodes 2``),
give the single-process metrics exactly.

Each "node" is a separate process started by the test; nothing here is spawned by Lightning itself, so this is the
code path of a real multi-node job (Lightning's ``LightningEnvironment`` resp. ``TorchElasticEnvironment``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "configs" / "tiny_demo.yaml")
COMMON = ["--config", TINY, "--trainer.logger=false", "--data.init_args.num_val=5"]
TIMEOUT = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONWARNINGS="ignore", **extra)
    for var in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK"):
        if var not in extra:
            env.pop(var, None)
    return env


def _two_nodes(args: list[str], cwd: Path) -> None:
    """Run ``lightning-pose ARGS`` as node 0 and node 1 (1 process each) on 127.0.0.1 and wait for both."""
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lightning_pose",
                *args,
                "--trainer.num_nodes=2",
                "--trainer.devices=1",
                "--trainer.strategy=ddp",
            ],
            cwd=cwd,
            env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(rank), LOCAL_RANK="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=TIMEOUT))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, (_, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"node {rank} failed:\n{err[-3000:]}"


def _single(args: list[str], cwd: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lightning_pose", *args, "--trainer.devices=1"],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def _exact_keys(r: dict) -> list[str]:
    keys = [k for k in r if k.startswith("val/") and k != "val/loss"]
    assert {"val/AP", "val/PCK@0.2", "val/PCK@0.05"} <= set(keys)
    return keys


@pytest.mark.slow
def test_two_nodes_fit_and_validate_equal_one_process(tmp_path, demo_cache):
    _two_nodes(["fit", *COMMON, "--trainer.default_root_dir=ckpt"], tmp_path)
    ckpts = sorted((tmp_path / "ckpt").rglob("*.ckpt"))
    assert ckpts, "the 2-node fit saved no checkpoint"
    val = [
        "validate",
        *COMMON,
        f"--ckpt_path={ckpts[-1]}",
        "--trainer.limit_val_batches=1.0",
        "--data.init_args.val_batch_size=2",
    ]
    _single([*val, "--results=one.json"], tmp_path)
    _two_nodes([*val, "--results=two.json"], tmp_path)
    r1 = json.loads((tmp_path / "one.json").read_text())
    r2 = json.loads((tmp_path / "two.json").read_text())
    for key in _exact_keys(r1):
        assert r2[key] == pytest.approx(r1[key], abs=1e-12), key


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="torchrun not installed",
)
def test_torchrun_two_nodes_validate_equals_one_process(tmp_path, demo_cache):
    _single(["fit", *COMMON, "--trainer.default_root_dir=ckpt"], tmp_path)
    ckpt = sorted((tmp_path / "ckpt").rglob("*.ckpt"))[-1]
    val = [
        "validate",
        *COMMON,
        f"--ckpt_path={ckpt}",
        "--trainer.limit_val_batches=1.0",
        "--data.init_args.val_batch_size=2",
    ]
    _single([*val, "--results=one.json"], tmp_path)
    port = str(_free_port())
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    procs = [
        subprocess.Popen(
            [
                torchrun,
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "lightning_pose",
                *val,
                "--results=two.json",
                "--trainer.num_nodes=2",
                "--trainer.devices=1",
                "--trainer.strategy=ddp",
            ],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    for rank, (p, (_, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"torchrun node {rank} failed:\n{err[-3000:]}"
    r1 = json.loads((tmp_path / "one.json").read_text())
    r2 = json.loads((tmp_path / "two.json").read_text())
    for key in _exact_keys(r1):
        assert r2[key] == pytest.approx(r1[key], abs=1e-12), key

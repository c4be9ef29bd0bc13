"""Reader of W&B offline run files (``run-<id>.wandb``) for tests.

Format: a 7-byte header (``:W&B``, magic 0xBEE1, version), then LevelDB-log style chunks in 32 KiB blocks, each
chunk ``<crc32 u32><length u16><type u8>`` (1 full, 2 first, 3 middle, 4 last); a block tail shorter than a chunk
header is zero padding. Every reassembled payload is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any, Iterator

BLOCK = 32 * 1024
HEADER = 7


def iter_payloads(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, parts = HEADER, []
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:
            pos += left_in_block
            continue
        body = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 1:
            yield body
        elif kind == 2:
            parts = [body]
        elif kind == 3:
            parts.append(body)
        elif kind == 4:
            parts.append(body)
            yield b"".join(parts)
            parts = []


def iter_records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    for payload in iter_payloads(Path(path).read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(payload)
        yield rec


def _item_key(item: Any) -> str:
    return item.key if item.key else "/".join(item.nested_key)


def _item_value(item: Any) -> Any:
    try:
        which = item.WhichOneof("value")
    except ValueError:
        which = None
    if which and which not in ("none",):
        val = getattr(item, which)
        if which == "json":
            return json.loads(val)
        return val
    return json.loads(item.value_json) if item.value_json else None


def summarize(path: Path) -> dict[str, Any]:
    """run (group, job_type, tags, project), config, history rows, summary, artifacts, exit seen."""
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "run": None, "exit": False, "artifacts": []}
    for rec in iter_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out["run"] = {"group": r.run_group, "job_type": r.job_type, "tags": list(r.tags), "project": r.project}
            for item in r.config.update:
                out["config"][_item_key(item)] = _item_value(item)
        elif kind == "config":
            for item in rec.config.update:
                out["config"][_item_key(item)] = _item_value(item)
        elif kind == "history":
            out["history"].append({_item_key(i): _item_value(i) for i in rec.history.item})
        elif kind == "summary":
            for item in rec.summary.update:
                out["summary"][_item_key(item)] = _item_value(item)
        elif kind == "artifact":
            out["artifacts"].append({"name": rec.artifact.name, "type": rec.artifact.type,
                                     "aliases": list(rec.artifact.aliases)})
        elif kind == "exit":
            out["exit"] = True
    return out


def find_run_file(wandb_dir: Path) -> Path:
    files = sorted(Path(wandb_dir).rglob("run-*.wandb"))
    if len(files) != 1:
        raise AssertionError(f"expected one offline run file under {wandb_dir}, found {files}")
    return files[0]


def wait_complete(path: Path, timeout: float = 20.0) -> dict[str, Any]:
    """Poll until the run file holds its exit record (wandb.finish may return before the flush)."""
    deadline = time.time() + timeout
    while True:
        try:
            summary = summarize(path)
        except Exception:  # partially written chunk
            summary = {"exit": False}
        if summary.get("exit") or time.time() > deadline:
            return summary
        time.sleep(0.25)

"""Read a W&B run file (``run-<id>.wandb``, what an offline run writes and ``wandb sync`` uploads).

wandb >= 0.19 writes and reads this file in its Go core only; the Python package still ships the record schema
(``wandb.proto.wandb_internal_pb2.Record``), which is what decodes every record here. The framing around the records
is W&B's LevelDB-log style container: a 7-byte header (``:W&B``, magic ``0xBEE1``, version byte), then 32 KiB blocks of
chunks ``<crc32 u32><length u16><type u8><data>`` (type 1 full, 2 first, 3 middle, 4 last; a block tail shorter
than a chunk header is zero padding).

The result is what a dashboard would show for the run: identity (id, name, project, group, job type, tags), config,
history rows, summary (last values and whatever the run set explicitly) and whether the run finished.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = ["WandbRunFile", "read_run_file", "iter_records", "RunFileError"]

_BLOCK = 32 * 1024
_HEADER = 7
_MAGIC = b":W&B"


class RunFileError(ValueError):
    """A file that is not a readable W&B run file (the message names the file and the problem)."""


@dataclass
class WandbRunFile:
    """The content of one run file. Keys of config/summary/history are as logged (``val/PCK@0.2``); values
    logged as nested dicts (tables, images) are nested dicts here too."""

    path: Path
    run_id: str = ""
    name: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    start_time: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    exit_code: int | None = None

    @property
    def run_dir(self) -> Path:
        """The run folder (``.../wandb/offline-run-<time>-<id>``); media files are under its ``files/``."""
        return self.path.parent


def _iter_payloads(data: bytes, path: Path) -> Iterator[bytes]:
    if data[:4] != _MAGIC:
        raise RunFileError(f"{path}: not a W&B run file (no ':W&B' header)")
    pos, parts = _HEADER, []
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        end = pos + _HEADER + length
        if end > len(data):
            return  # the file is still being written: the last record is incomplete
        body = data[pos + _HEADER : end]
        pos = end
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
        else:
            raise RunFileError(f"{path}: corrupt chunk type {kind} at byte {pos - length - _HEADER}")


def iter_records(path: str | Path) -> Iterator[Any]:
    """The ``wandb_internal_pb2.Record`` messages of a run file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    for payload in _iter_payloads(path.read_bytes(), path):
        rec = pb.Record()
        rec.ParseFromString(payload)
        yield rec


def _value(item: Any) -> Any:
    text = getattr(item, "value_json", "")
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _put(target: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    if not keys:
        return
    node = target
    for k in keys[:-1]:
        child = node.get(k)
        if not isinstance(child, dict):
            child = node[k] = {}
        node = child
    node[keys[-1]] = _value(item)


def read_run_file(path: str | Path) -> WandbRunFile:
    """Parse a ``run-<id>.wandb`` file (raises :class:`RunFileError` naming the file when it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: run file not found")
    out = WandbRunFile(path=path)
    try:
        for rec in iter_records(path):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                r = rec.run
                out.run_id, out.name, out.project, out.entity = r.run_id, r.display_name, r.project, r.entity
                out.group, out.job_type, out.tags = r.run_group, r.job_type, list(r.tags)
                if r.HasField("start_time"):
                    out.start_time = r.start_time.seconds + r.start_time.nanos / 1e9
                for item in r.config.update:
                    _put(out.config, item)
            elif kind == "config":
                for item in rec.config.update:
                    _put(out.config, item)
                for item in rec.config.remove:
                    out.config.pop(item.key, None)
            elif kind == "history":
                row: dict[str, Any] = {}
                for item in rec.history.item:
                    _put(row, item)
                out.history.append(row)
            elif kind == "summary":
                for item in rec.summary.update:
                    _put(out.summary, item)
                for item in rec.summary.remove:
                    out.summary.pop(item.key, None)
            elif kind == "artifact":
                out.artifacts.append(
                    {"name": rec.artifact.name, "type": rec.artifact.type, "aliases": list(rec.artifact.aliases)}
                )
            elif kind == "exit":
                out.finished = True
                out.exit_code = int(rec.exit.exit_code)
    except RunFileError:
        raise
    except Exception as exc:  # protobuf DecodeError and friends
        raise RunFileError(f"{path}: unreadable W&B record ({type(exc).__name__}: {exc})") from exc
    # history rows hold the summary's last values too, but W&B's own summary wins where both exist
    last: dict[str, Any] = {}
    for row in out.history:
        last.update({k: v for k, v in row.items() if not k.startswith("_")})
    out.summary = {**last, **out.summary}
    return out

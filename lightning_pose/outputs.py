"""Safe output files: atomic writes, no output over an input, no silent overwrite of a user's file.

Torch-free and dependency-light (stdlib only), so ``evaluation/``, ``data/``, the tasks and the CLI can all use it.

* :func:`atomic_write_text` / :func:`atomic_write_bytes` / :func:`atomic_write_json` and the context manager
  :func:`atomic_path` write to a temporary file in the destination folder, ``fsync`` it and ``os.replace`` it
  over the destination: a reader sees either the previous file or the complete new one, never a truncated file.
  On any failure (disk full, exception, ``KeyboardInterrupt``) the temporary file is removed and the previous
  file is left untouched.
* :func:`refuse_input_overlap` refuses an output path that is one of the command's inputs (same file by
  ``os.path.samefile`` or by resolved path, also for folders).
* :func:`refuse_existing` refuses to replace an existing file unless the user passed the overwrite flag.
* :func:`prepare_output_dir` checks early (before the long work) that a folder can be created and written.
* :class:`ToolFiles` records, in a small manifest ``.lightning_pose_outputs.json`` of an output folder, which files
  this package wrote there, so a later run may replace its own files (e.g. an export rewritten every epoch, a
  preview folder regenerated) while any other same-named file is refused.

Every refusal raises :class:`~lightning_pose.errors.OutputPathError` with a one-line message naming the path and
the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from lightning_pose.errors import OutputPathError

__all__ = [
    "MANIFEST_NAME",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "dumps_json_strict",
    "refuse_input_overlap",
    "refuse_existing",
    "prepare_output_dir",
    "check_output_file",
    "ToolFiles",
    "paths_in_config",
    "write_tool_file",
    "check_tool_file",
]

#: manifest of the files this package wrote in an output folder (name -> size and mtime of what it wrote)
MANIFEST_NAME = ".lightning_pose_outputs.json"
_TMP_TAG = ".tmp-"


def _fsync_dir(folder: Path) -> None:
    """Flush the folder entry (the rename) to disk where the OS allows it (no-op on Windows)."""
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a writer that needs a file name (cv2, scipy, h5py).

    The temporary name keeps ``path``'s suffix (``.png``, ``.mat``, ...) so format-by-extension writers work.
    When the block ends normally the file is fsynced and renamed over ``path``; when it raises (or the writer
    produced no file), the temporary file is removed and ``path`` is left as it was. ``fsync=False`` skips the
    flush to disk (still never a partial file under the final name; for bulk writers that sync once at the end).

    Raises:
        OutputPathError: the folder does not exist or cannot be written.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}{_TMP_TAG}", suffix=path.suffix, dir=folder)
    except OSError as e:
        raise OutputPathError(f"cannot write {path}: {e.strerror or e}") from e
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.is_file():
            raise OSError(f"the writer produced no file for {path}")
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(folder)


def _keep_mode(path: Path, tmp: Path) -> None:
    """Give the new file the permissions of the file it replaces, or the usual umask default (mkstemp makes 0600)."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``); returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


def dumps_json_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that refuses NaN/inf (``allow_nan=False``): the output is always valid JSON.

    Callers replace non-finite numbers by ``None`` (JSON ``null``) before writing.
    """
    return json.dumps(obj, allow_nan=False, **kwargs)


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, newline: bool = True, **kwargs: Any
) -> Path:
    """Write ``obj`` as strict JSON (no bare ``NaN``; see :func:`dumps_json_strict`) atomically; returns ``path``."""
    text = dumps_json_strict(obj, indent=indent, **kwargs)
    return atomic_write_text(path, text + ("\n" if newline else ""))


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def refuse_input_overlap(
    output: str | os.PathLike, inputs: Iterable[tuple[str, Any]], *, option: str = "output"
) -> None:
    """Refuse an output path that is one of the inputs.

    Args:
        output: the output file or folder.
        inputs: ``(label, path)`` pairs such as ``("--gt", gt_path)``; ``None`` paths are skipped.
        option: how the output is named in the message (e.g. ``"--json"``).

    Raises:
        OutputPathError: ``output`` is the same file or folder as an input (by ``os.path.samefile`` or resolved
            path, so symlinks and ``./x`` spellings are caught).
    """
    out = Path(output)
    for label, value in inputs:
        if value is None or value == "":
            continue
        if _same(out, Path(value)):
            raise OutputPathError(
                f"{option} {out} is the input {label} {value}: refusing to overwrite an input; "
                f"choose another output path"
            )


def refuse_existing(
    path: str | os.PathLike, overwrite: bool, *, option: str = "output", flag: str | None = "--overwrite"
) -> None:
    """Refuse to replace an existing file unless ``overwrite``; always refuse a folder where a file is expected.

    Raises:
        OutputPathError: the path exists (and ``overwrite`` is false) or is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder, expected a file path")
    if path.exists() and not overwrite:
        how = f"pass {flag} to replace it" if flag else "delete or move it"
        raise OutputPathError(
            f"{option} {path} already exists and was not written by lightning-pose: {how}, or choose another path"
        )


def prepare_output_dir(folder: str | os.PathLike, *, option: str = "output folder") -> Path:
    """Create ``folder`` if needed and check that a file can be written there (a real probe, not ``os.access``).

    Call it before the long work starts, so a bad output location fails in a second, not after an hour.

    Raises:
        OutputPathError: the folder cannot be created (e.g. a parent is a file) or written.
    """
    folder = Path(folder) if str(folder) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputPathError(f"{option} {folder}: a path component is a file, not a folder") from None
    except OSError as e:
        raise OutputPathError(f"{option} {folder}: cannot create it ({e.strerror or e})") from e
    try:
        fd, probe = tempfile.mkstemp(prefix=f".lightning_pose{_TMP_TAG}probe-", dir=folder)
    except OSError as e:
        raise OutputPathError(f"{option} {folder} is not writable ({e.strerror or e})") from e
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return folder


def check_output_file(
    path: str | os.PathLike,
    *,
    inputs: Iterable[tuple[str, Any]] = (),
    overwrite: bool = False,
    option: str = "output",
    flag: str | None = "--overwrite",
    owned: bool = False,
) -> Path:
    """All the early checks of a single output file: not an input, not an existing file (unless ``overwrite`` or
    ``owned``: a file this package wrote, see :class:`ToolFiles`), and its folder writable. Returns the path.

    Raises:
        OutputPathError: with a one-line message naming ``option``, the path and the reason.
    """
    path = Path(path)
    refuse_input_overlap(path, inputs, option=option)
    if not owned:
        refuse_existing(path, overwrite, option=option, flag=flag)
    elif path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder, expected a file path")
    prepare_output_dir(path.parent if str(path.parent) else Path("."), option=f"{option} folder")
    return path


class ToolFiles:
    """The files this package wrote in one output folder, kept in ``<folder>/.lightning_pose_outputs.json``.

    A file may be replaced when it is absent, or when it is recorded here with the size and modification time
    it had when we wrote it (so a file the user edited or put there since counts as the user's). Use
    :meth:`claim` before writing (early: it raises on the first conflict) and :meth:`record` after each write.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.manifest = self.folder / MANIFEST_NAME
        self._entries: dict[str, dict[str, int]] = {}
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        files = data.get("files", {}) if isinstance(data, dict) else {}
        if isinstance(files, dict):
            self._entries = {str(k): v for k, v in files.items() if isinstance(v, dict)}

    def is_ours(self, name: str) -> bool:
        """Whether ``folder/name`` is a file we wrote and nobody changed since."""
        entry = self._entries.get(name)
        if entry is None:
            return False
        try:
            st = (self.folder / name).stat()
        except OSError:
            return False
        return entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns

    def claim(
        self, names: Iterable[str], *, overwrite: bool = False, option: str = "output", flag: str | None = "--overwrite"
    ) -> None:
        """Refuse (before writing) when one of ``names`` exists in the folder and is not ours (unless
        ``overwrite``), or is a folder. ``flag`` is the option that allows replacing (``None``: there is none).

        Raises:
            OutputPathError: naming the first conflicting file.
        """
        for name in names:
            target = self.folder / name
            if target.is_dir():
                raise OutputPathError(f"{option} {target} is a folder, expected a file path")
            if target.exists() and not overwrite and not self.is_ours(name):
                how = f"pass {flag} to replace it" if flag else "move it away"
                raise OutputPathError(
                    f"{option} {target} already exists and was not written by lightning-pose: "
                    f"{how}, or choose another folder"
                )

    def record(self, name: str) -> None:
        """Remember that we just wrote ``folder/name`` (saves the manifest atomically)."""
        st = (self.folder / name).stat()
        self._entries[name] = {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}
        atomic_write_json(self.manifest, {"written_by": "lightning_pose", "files": self._entries}, indent=1)


def paths_in_config(config: Any, label: str = "config") -> list[tuple[str, str]]:
    """``(dotted key, path)`` for every string (or path) value in a nested config (dicts, lists, objects with
    ``as_dict()`` such as jsonargparse namespaces) that names an existing file or folder: the inputs of a run
    (checkpoint, config files, annotation files, image folders) an output must never replace."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, key: str, depth: int) -> None:
        if depth > 20:
            return
        if hasattr(value, "as_dict") and callable(value.as_dict):
            value = value.as_dict()
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k), depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):  # a top-level list (e.g. several --config files) keeps the label
                walk(v, f"{key}[{i}]" if key else "", depth + 1)
        elif isinstance(value, (str, os.PathLike)) or type(value).__name__.startswith("Path"):
            text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
            if text and len(text) < 4096 and "\n" not in text:
                with contextlib.suppress(OSError, ValueError):
                    if os.path.exists(text):
                        found.append((key or label, text))

    walk(config, "", 0)
    return found


def write_tool_file(
    path: str | os.PathLike, write: Any, *, inputs: Iterable[tuple[str, Any]] = (), option: str = "output"
) -> Path:
    """Write one output file of a command that has no overwrite flag (e.g. ``--results`` of validate/test/predict).

    Refused: ``path`` is one of ``inputs``, or an existing file that lightning-pose did not write there (see
    :class:`ToolFiles`). Otherwise ``write(path)`` is called (it must write atomically, e.g. with
    :func:`atomic_write_json`) and the file is recorded as ours, so the next run may replace it.

    Raises:
        OutputPathError: one line naming ``option``, the path and the reason.
    """
    path = check_tool_file(path, inputs=inputs, option=option)
    write(path)
    ToolFiles(path.parent if str(path.parent) else Path(".")).record(path.name)
    return path


def check_tool_file(path: str | os.PathLike, *, inputs: Iterable[tuple[str, Any]] = (), option: str = "output") -> Path:
    """The checks of :func:`write_tool_file` alone, to run before the long work (e.g. in a CLI ``before_*`` hook):
    not an input, not a file lightning-pose did not write, folder writable. Returns the path.

    Raises:
        OutputPathError: one line naming ``option``, the path and the reason.
    """
    path = Path(path)
    owned = ToolFiles(path.parent if str(path.parent) else Path("."))
    return check_output_file(path, inputs=inputs, option=option, flag=None, owned=owned.is_ours(path.name))

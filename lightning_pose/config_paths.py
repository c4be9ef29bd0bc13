"""Configs and sweeps shipped with the package, so ``--config quickstart`` works from any folder.

The repository keeps them at its root (``configs/``, ``sweeps/``); ``lightning_pose/configs`` and
``lightning_pose/sweeps`` are symlinks to those folders and the wheel build copies their YAML files into the package.
A ``--config`` value is used as given when it names an existing file; otherwise it is looked up among the packaged
configs by name: ``quickstart``, ``hourglass/mpii``, ``hourglass/mpii.yaml`` or ``configs/hourglass/mpii.yaml``.

**Base configs** (``__base__``). A config file may start with ``__base__: ../base/coco.yaml`` (or a list of such
paths, relative to the file's own folder): the command line then reads the base files first, each itself expanded,
and the file over them, as if ``--config BASE --config FILE`` had been typed (:func:`expand_config_args`); LightningCLI
merges mappings key by key and replaces lists and scalars, so a file states only what differs from its base (a
``trainer.callbacks`` list, when given, replaces the base's whole list). The ``__base__`` key itself is dropped
when the files are parsed (:func:`load_yaml_without_base`, the CLI's YAML loader). :func:`load_config` gives the
same merge as a plain mapping, for code that reads a config without the CLI. Base files live in ``configs/base/``
and are not listed by :func:`packaged_configs`. Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from lightning_pose.errors import ConfigError

__all__ = [
    "packaged_dir",
    "packaged_configs",
    "resolve_config",
    "resolve_config_args",
    "sweep_path",
    "BASE_KEY",
    "BASE_DIR",
    "config_bases",
    "expand_config_args",
    "load_config",
    "load_yaml_without_base",
]

#: top-level key of a config file naming the file(s) it extends
BASE_KEY = "__base__"
#: folder of ``configs/`` holding the shared base files (not configs of their own)
BASE_DIR = "base"
_CONFIG_FLAGS = ("--config", "-c")

_PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_dir(kind: str = "configs") -> Path:
    """The folder of the packaged ``configs`` or ``sweeps`` (inside the installed package, or the checkout root)."""
    for candidate in (_PACKAGE_DIR / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"the packaged {kind}/ folder is missing from {_PACKAGE_DIR}; reinstall lightning-human-pose")


def packaged_configs() -> list[str]:
    """Names of the packaged configs (``quickstart``, ``hourglass/mpii``, ...), sorted."""
    root = packaged_dir("configs")
    names = (p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))
    return sorted(n for n in names if not n.startswith(f"{BASE_DIR}/"))


def _lookup(name: str, kind: str) -> Path | None:
    root = packaged_dir(kind)
    text = name.replace("\\", "/").strip("/")
    if text.startswith(f"{kind}/"):
        text = text[len(kind) + 1 :]
    for candidate in (text, f"{text}.yaml", f"{text}.yml"):
        path = root / candidate
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            return path
    return None


def resolve_config(value: str | Path) -> Path:
    """An existing file as given, else the packaged config of that name; one clear error line otherwise."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    found = _lookup(str(value), "configs")
    if found is not None:
        return found
    names = packaged_configs()
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise ConfigError(f"--config {value}: no such file, and no packaged config of that name (packaged: {shown})")


def sweep_path(name: str) -> Path:
    """The packaged sweep definition ``name`` (e.g. ``quickstart_lr``), for ``wandb sweep``."""
    found = _lookup(name, "sweeps")
    if found is None:
        raise ConfigError(f"sweep {name}: no packaged sweep of that name (in {packaged_dir('sweeps')})")
    return found


def resolve_config_args(argv: Sequence[str]) -> list[str]:
    """``argv`` with every ``--config NAME`` / ``--config=NAME`` value replaced by the file it resolves to
    (values that are existing files, or that look like inline YAML/JSON, are left unchanged)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--config" and i + 1 < len(out):
            out[i + 1] = _resolve_value(out[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + _resolve_value(arg[len("--config=") :])
    return out


def _resolve_value(value: str) -> str:
    if not value or value.lstrip()[:1] in "{[" or "\n" in value or ": " in value:
        return value  # jsonargparse also accepts an inline config string
    return str(resolve_config(value))


# ---------------------------------------------------------------------------------------------- base configs
def _read_mapping(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def _declared_bases(path: Path, data: Any) -> list[Path]:
    """The files named by ``__base__`` in the config ``data`` read from ``path`` (relative to its folder)."""
    if not isinstance(data, dict) or BASE_KEY not in data:
        return []
    value = data[BASE_KEY]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file path or a list of file paths, got {value!r}")
    out = []
    for item in items:
        base = Path(item).expanduser()
        base = base if base.is_absolute() else path.parent / base
        if not base.is_file():
            raise ConfigError(f"{path}: {BASE_KEY} {item}: no such file ({base})")
        out.append(base)
    return out


def config_bases(path: str | Path) -> list[Path]:
    """The base files of the config ``path``, in the order they apply (the farthest base first; ``path``
    itself not included); ``[]`` when it has no ``__base__``.

    Raises:
        ConfigError: one line naming the file, for an unreadable file, a malformed ``__base__``, a missing base
            file or a cycle.
    """
    out: list[Path] = []

    def visit(file: Path, chain: tuple[Path, ...]) -> None:
        for base in _declared_bases(file, _read_mapping(file)):
            key = base.resolve()
            if key in chain:
                raise ConfigError(
                    f"{file}: {BASE_KEY} {base} makes a cycle (" + " -> ".join(str(p) for p in (*chain, key)) + ")"
                )
            visit(base, (*chain, key))
            out.append(base)

    start = Path(path)
    visit(start, (start.resolve(),))
    return out


def expand_config_args(argv: Sequence[str]) -> list[str]:
    """``argv`` with the base files of every ``--config FILE`` (``-c FILE``, ``--config=FILE``) inserted before
    it, as ``--config BASE`` tokens of the same form (see the module doc). Values that are not existing files
    (inline YAML) are left unchanged."""
    out: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        tok = args[i]
        if tok in _CONFIG_FLAGS and i + 1 < len(args):
            value = args[i + 1]
            for base in _bases_of_value(value):
                out += [tok, str(base)]
            out += [tok, value]
            i += 2
            continue
        if tok.startswith("--config="):
            out += [f"--config={base}" for base in _bases_of_value(tok[len("--config=") :])]
        out.append(tok)
        i += 1
    return out


def _bases_of_value(value: str) -> list[Path]:
    path = Path(value).expanduser()
    if not value or not path.is_file():
        return []
    return config_bases(path)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path) -> dict:
    """The config ``path`` as one mapping: its bases merged under it (mappings key by key, lists and scalars
    replaced), without the ``__base__`` key. A plain merge of the YAML (no defaults, no type checks): the
    resolved values of every option come from ``lightning-pose fit --config FILE --print_config``."""
    merged: dict = {}
    for file in (*config_bases(path), Path(path)):
        data = _read_mapping(Path(file))
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: a config file is a YAML mapping, got {type(data).__name__}")
        merged = _deep_merge(merged, {k: v for k, v in data.items() if k != BASE_KEY})
    return merged


def load_yaml_without_base(text: str) -> Any:
    """jsonargparse's YAML loader, with a top-level ``__base__`` key removed (the bases were put on the command
    line by :func:`expand_config_args`)."""
    from jsonargparse import get_loader

    value = get_loader("yaml")(text)
    if isinstance(value, dict) and BASE_KEY in value:
        value = {k: v for k, v in value.items() if k != BASE_KEY}
    return value

"""Every YAML under configs/ must parse with the real CLI (``fit --config X --print_config``), so configs cannot rot.

The test globs the folder: configs added by anyone are checked automatically. The CLI is run in-process (the imports
are paid once); ``--print_config`` parses and validates every ``class_path`` / ``init_args`` against the real
signatures and exits with status 0 before anything is instantiated.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "configs"
#: runnable configs; configs/base/ holds the fragments they extend (`__base__`), checked through them
ALL_CONFIGS = sorted(
    p for p in [*CONFIG_DIR.rglob("*.yaml"), *CONFIG_DIR.rglob("*.yml")] if p.relative_to(CONFIG_DIR).parts[0] != "base"
)
HEADLINE = {"mpii": "val/PCKh@0.5", "coco": "val/AP", "aic": "val/AIC_score", "demo": "val/AP"}


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(CONFIG_DIR)) for p in paths]


def _import(class_path: str) -> object:
    import importlib

    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _is_heatmap_config(path: Path) -> bool:
    """What the config declares: its model is a HeatmapTask (the class itself or a thin subclass)."""
    from lightning_pose.tasks import HeatmapTask

    class_path = str(((yaml.safe_load(path.read_text()) or {}).get("model") or {}).get("class_path", ""))
    cls = _import(class_path) if "." in class_path else None
    return isinstance(cls, type) and issubclass(cls, HeatmapTask)


#: method folders (configs/<method>/<dataset>.yaml) whose configs declare a heatmap task
HEATMAP_CONFIGS = [p for p in ALL_CONFIGS if p.parent != CONFIG_DIR and _is_heatmap_config(p)]
HEATMAP_METHODS = tuple(sorted({p.parent.name for p in HEATMAP_CONFIGS}))


@functools.lru_cache(maxsize=None)
def _print_config(path: Path) -> dict:
    """Run ``lightning-pose fit --config path --print_config`` in-process; return the printed (resolved) config
    (cached: the content tests read the resolved values, so they hold however a config states them, e.g. through
    a base config it extends; do not modify the returned dict)."""
    from lightning_pose.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(path), "--print_config"])
    assert exc.value.code in (0, None), f"{path}: --print_config exited with {exc.value.code}:\n{out.getvalue()}"
    resolved = yaml.safe_load(out.getvalue())
    assert isinstance(resolved, dict) and "model" in resolved and "data" in resolved, f"{path}: no resolved config"
    return resolved


def test_configs_exist() -> None:
    names = set(_ids(ALL_CONFIGS))
    assert {"simple_baseline", "hourglass", "cpm"} <= set(HEATMAP_METHODS)
    for method in HEATMAP_METHODS:
        for dataset in ("mpii", "coco", "aic", "demo"):
            assert f"{method}/{dataset}.yaml" in names


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=_ids(ALL_CONFIGS))
def test_print_config(path: Path) -> None:
    resolved = _print_config(path)
    data_args = resolved["data"].get("init_args", {})
    aug = data_args.get("augmentation")
    if data_args.get("mode", "topdown") == "topdown" and aug is not None:
        # print_config does not instantiate the datamodule: check the augmentation keys and ranges here
        from lightning_pose.data.transforms import TopDownAugmentation

        TopDownAugmentation.from_config(aug)


@pytest.mark.parametrize("path", HEATMAP_CONFIGS, ids=_ids(HEATMAP_CONFIGS))
def test_heatmap_config_contents(path: Path) -> None:
    """The heatmap recipes log to W&B, checkpoint on the dataset's headline metric and name their target number."""
    text = path.read_text()
    raw = _print_config(path)
    dataset = path.stem
    assert text.startswith("#"), f"{path}: the top comment must state the recipe and the number it aims at"
    head = text.split("\n", 12)
    comment = " ".join(line for line in head if line.startswith("#"))
    if dataset != "demo":
        assert "recipe" in comment.lower() and ("mmpose" in comment.lower() or "original" in comment.lower())
        assert any(ch.isdigit() for ch in comment) and ("AP" in comment or "PCKh" in comment)
    trainer = raw["trainer"]
    assert trainer["logger"]["class_path"] == "lightning_pose.callbacks.wandb_logger.PoseWandbLogger"
    callbacks = {cb["class_path"].rsplit(".", 1)[-1]: cb.get("init_args", {}) for cb in trainer["callbacks"]}
    assert {"ModelCheckpoint", "LearningRateMonitor", "WandbPoseCallback"} <= set(callbacks)
    monitor = callbacks["ModelCheckpoint"]["monitor"]
    assert monitor == HEADLINE.get(dataset, "val/PCK@0.2") and callbacks["ModelCheckpoint"]["mode"] == "max"
    # one task class for every heatmap network; the network's method name is the config's folder (W&B group)
    from lightning_pose.tasks.heatmap import network_method_name

    assert raw["model"]["class_path"] == "lightning_pose.tasks.HeatmapTask"
    network = raw["model"]["init_args"]["network"]
    assert network["class_path"].startswith("lightning_pose.models.")
    assert network_method_name(network) == path.parent.name
    expected_dm = {"mpii": "MPIIDataModule", "coco": "COCODataModule", "aic": "AICDataModule", "demo": "DemoDataModule"}
    assert raw["data"]["class_path"].endswith(expected_dm[dataset])
    if dataset != "demo":
        sched = raw["model"]["init_args"]["scheduler"]
        assert sched["class_path"].endswith("MultiStepLR")
        assert max(sched["init_args"]["milestones"]) < trainer["max_epochs"]


DEMO_CONFIGS = [p for p in HEATMAP_CONFIGS if p.stem == "demo"]


@pytest.mark.parametrize("path", DEMO_CONFIGS, ids=_ids(DEMO_CONFIGS))
def test_demo_config_builds_cpu_sized_model(path: Path) -> None:
    """The demo configs instantiate (model linked to the datamodule) and stay CPU-sized (< 15 M parameters: the
    quickstart's ResNet-18 SimpleBaseline is the largest)."""
    from lightning_pose.cli import run_lightning

    cli = run_lightning(["--config", str(path), "--trainer.logger", "false", "--trainer.callbacks", "[]"], run=False)
    params = sum(p.numel() for p in cli.model.parameters())
    assert params < 15_000_000, f"{path}: {params} parameters is not CPU-sized"
    assert cli.model.input_size == cli.datamodule.input_size
    assert cli.model.keypoint_set.name == "coco"


# top-down methods only: associative embedding (bottom-up) sees whole images, not 96x128 person crops, so its demo
# budget (input size, schedule) is its own (configs/associative_embedding/demo.yaml)
SHARED_BUDGET_CONFIGS = [CONFIG_DIR / "quickstart.yaml"] + sorted(
    p for p in CONFIG_DIR.glob("*/demo*.yaml") if p.parent.name != "associative_embedding"
)


@pytest.mark.parametrize("path", SHARED_BUDGET_CONFIGS, ids=_ids(SHARED_BUDGET_CONFIGS))
def test_demo_configs_share_one_budget(path: Path) -> None:
    """Every method's demo config trains under the same budget (input size, samples seen, wall clock), monitors
    val/AP, and validates at least once even when shortened."""
    raw = _print_config(path)
    trainer, data = raw["trainer"], raw["data"]["init_args"]
    assert raw["data"]["class_path"].endswith("DemoDataModule")
    assert data["input_size"] == [96, 128] and data["batch_size"] == 32
    assert data.get("num_train", 1200) == 1200 and data.get("image_size", [256, 256]) == [256, 256]
    assert trainer["max_epochs"] == 20 and trainer["max_time"] == "00:00:08:30"
    assert trainer["check_val_every_n_epoch"] == 4 and trainer["precision"] == "auto"
    callbacks = {cb["class_path"].rsplit(".", 1)[-1]: cb.get("init_args", {}) for cb in trainer["callbacks"]}
    assert callbacks["ModelCheckpoint"]["monitor"] == "val/AP"
    assert raw["model"]["init_args"]["scheduler"]["init_args"]["milestones"] == [16]
    assert callbacks["DropLRBeforeTimeCap"]["fraction"] == 0.8

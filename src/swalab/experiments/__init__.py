"""Sweeps: typed YAML configs, cells named by hash, a crash-safe Parquet store, executors.

``load_config`` → ``plan`` (cells) → ``run_experiment`` (local processes or Ray) →
``ResultStore`` (one atomic directory per cell) → ``query`` (DuckDB views ``steps`` and
``episodes``). Presets in ``configs/`` (``preset_path``) reproduce the paper.
"""

from swalab.experiments.config import (
    ConfigError,
    ExperimentConfig,
    GameConfig,
    ModelConfig,
    PolicyConfig,
    load_config,
)
from swalab.experiments.plan import Cell, Task, make_tasks, plan
from swalab.experiments.presets import PRESETS_DIR, preset_names, preset_path
from swalab.experiments.query import connect, query
from swalab.experiments.runner import RunSummary, run_experiment
from swalab.experiments.store import ResultStore

__all__ = [
    "PRESETS_DIR",
    "Cell",
    "ConfigError",
    "ExperimentConfig",
    "GameConfig",
    "ModelConfig",
    "PolicyConfig",
    "ResultStore",
    "RunSummary",
    "Task",
    "connect",
    "load_config",
    "make_tasks",
    "plan",
    "preset_names",
    "preset_path",
    "query",
    "run_experiment",
]

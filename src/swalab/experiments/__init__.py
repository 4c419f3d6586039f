"""Studies: typed YAML configs, cells named by hash, a crash-safe Parquet store, executors.

Every kind of study (``sweep``, ``phase``, ``surface``, ``stability``, ``lockin``,
``live``, ``bench``; :mod:`~swalab.experiments.kinds`) goes one way: ``load_config`` →
the kind's plan (hashed cells) → ``run_experiment`` (local processes or Ray) →
``ResultStore`` (one atomic directory per cell, a manifest, resume) → ``query`` (DuckDB
views over the cells' tables) and ``swalab report``. Presets in ``configs/``
(``preset_path``) reproduce the paper and every figure of the README.
"""

from swalab.experiments.cells import Cell, CellResult, Task
from swalab.experiments.config import (
    ConfigError,
    ExperimentConfig,
    GameConfig,
    ModelConfig,
    PolicyConfig,
    StudyConfig,
)
from swalab.experiments.kinds import get_kind, kind_names, load_config
from swalab.experiments.plan import make_tasks, plan
from swalab.experiments.presets import PRESETS_DIR, preset_names, preset_path
from swalab.experiments.query import connect, query
from swalab.experiments.runner import RunSummary, run_experiment
from swalab.experiments.store import ResultStore

__all__ = [
    "PRESETS_DIR",
    "Cell",
    "CellResult",
    "ConfigError",
    "ExperimentConfig",
    "GameConfig",
    "ModelConfig",
    "PolicyConfig",
    "ResultStore",
    "RunSummary",
    "StudyConfig",
    "Task",
    "connect",
    "get_kind",
    "kind_names",
    "load_config",
    "make_tasks",
    "plan",
    "preset_names",
    "preset_path",
    "query",
    "run_experiment",
]

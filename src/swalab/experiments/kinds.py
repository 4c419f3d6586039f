"""Every kind of study goes one way: config → cells → tasks → tables → store → report.

A *kind* (``sweep``, ``phase``, ``surface``, ``stability``, ``lockin``, ``live``,
``bench``, ``suite``, ``drift``, ``stance``, ``guard``) is a typed config plus three functions:
:meth:`Kind.plan` splits a config into hashed cells, :meth:`Kind.tasks` groups cells that
compute together and says where they may run, and :meth:`Kind.run` computes a task's cells
into tables. The runner, the executors, the store (manifest, resume, cell hashes) and
``swalab report`` are the same for all of them, so a new kind of study is one module that
fills these in.

The registry is lazy ("module:attribute"), as the LLM backends' is: naming a kind imports
only that kind's code.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from swalab.experiments import limits
from swalab.experiments.cells import Cell, CellResult, Task
from swalab.experiments.config import (
    ConfigError,
    ExecutorConfig,
    Override,
    StudyConfig,
    load_into,
    parse_override,
    read_yaml,
)
from swalab.experiments.limits import Work

#: Kind name → ``module:attribute`` of its :class:`Kind`.
KINDS: dict[str, str] = {
    "sweep": "swalab.experiments.sweep:SWEEP",
    "phase": "swalab.experiments.studies.phase:PHASE",
    "surface": "swalab.experiments.studies.surface:SURFACE",
    "stability": "swalab.experiments.studies.stability:STABILITY",
    "lockin": "swalab.experiments.studies.lockin:LOCKIN",
    "live": "swalab.experiments.studies.live:LIVE",
    "bench": "swalab.experiments.studies.bench:BENCH",
    "suite": "swalab.experiments.studies.suite:SUITE",
    "drift": "swalab.experiments.studies.drift:DRIFT",
    "stance": "swalab.experiments.studies.stance:STANCE",
    "guard": "swalab.experiments.studies.guard:GUARD",
}

OnStep = Callable[[int], None]


class Kind(Protocol):
    """One kind of study.

    Attributes:
        name: Its ``kind:`` in a config.
        summary: One line for listings and the report.
        config: Its pydantic config class.
        tables: The tables each cell writes, with their schemas (a store without finished
            cells shows them as empty views; ``None``: the columns vary, no empty view).
    """

    name: str
    summary: str
    config: type[Any]
    tables: dict[str, pa.Schema | None]

    def plan(self, config: Any, source: str) -> list[Cell]:
        """Validated cells in a stable order (errors name the field and the source)."""
        ...

    def work(self, config: Any) -> Work:
        """How big ``config``'s study is, from the config alone (nothing is built)."""
        ...

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """Cells grouped into tasks, each with its placement."""
        ...

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Compute every cell of ``task`` (``model``: the loaded model of an ``llm`` task)."""
        ...


def kind_names() -> list[str]:
    """Registered kinds."""
    return list(KINDS)


def get_kind(name: str) -> Kind:
    """The kind called ``name``.

    Raises:
        ValueError: Unknown name (the message lists the known ones).
    """
    try:
        module, _, attr = KINDS[name].partition(":")
    except KeyError:
        raise ValueError(f"kind={name!r} is not known: choose one of {kind_names()}") from None
    found: Kind = getattr(importlib.import_module(module), attr)
    return found


def plan(config: StudyConfig, source: str) -> list[Cell]:
    """The cells of a study of any kind, once its size is within the limits.

    Raises:
        ConfigError: The study is too large (:mod:`~swalab.experiments.limits`) or invalid.
    """
    kind = get_kind(config.kind)
    limits.check(kind.work(config), force=config.executor.force, source=source)
    return kind.plan(config, source)


def run_task(task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
    """Compute a task with its kind's code (a module-level function: workers pickle it)."""
    return get_kind(task.cells[0].config.kind).run(task, model, on_step)


def load_config(
    source: str | Path | Mapping[str, Any], overrides: Sequence[Override] = ()
) -> StudyConfig:
    """Load a study of any kind from YAML (or its mapping), apply overrides, validate it.

    The file's ``kind:`` (default ``sweep``) picks the config class; a ``--set kind=…``
    override picks it too.

    Raises:
        ConfigError: One line naming the source, the field, the value and what is allowed.
    """
    if isinstance(source, Mapping):
        name, data = "config", copy.deepcopy(dict(source))
    else:
        name, data = str(source), read_yaml(source)
    kind_name = data.get("kind", "sweep")
    parsed = [parse_override(o) for o in overrides]
    for key, value in parsed:
        if key == "kind":
            kind_name = data["kind"] = value
    try:
        kind = get_kind(str(kind_name))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    rest = [o for o, (key, _) in zip(overrides, parsed, strict=True) if key != "kind"]
    config: StudyConfig = load_into(kind.config, data, name, rest)
    return config

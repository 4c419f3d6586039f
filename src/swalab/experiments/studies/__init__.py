"""The kinds of study besides the sweep: maps of where SWI switches, live runs, benchmarks.

Each module holds one kind: its config (reusing the sweep's ``game`` and ``policy``
sections, so a field has one name everywhere) and how its cells are computed. They share
:class:`SplitKind`: a config is split into cells along one or more of its list fields (a
phase diagram along ``agents`` × ``beta``), every cell is the config narrowed to one value
of each, and a cell's table holds that slice of the result.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BeforeValidator, Field

from swalab.experiments.cells import Cell, CellResult, Placement, Task, digest, payload
from swalab.experiments.config import (
    BIG,
    MANY,
    NOT_HASHED,
    ConfigError,
    ExecutorConfig,
    GameConfig,
    PolicyConfig,
    StudyConfig,
    range_count,
    validate_cell,
)
from swalab.experiments.kinds import OnStep
from swalab.experiments.limits import Work, candidates

Table = dict[str, np.ndarray]


def _expand(value: Any) -> Any:
    """``{from, to, step}`` → the inclusive list (rounded to 12 decimals); lists pass."""
    if not isinstance(value, dict):
        return value
    if set(value) != {"from", "to", "step"}:
        raise ValueError("a range needs exactly the keys from, to, step")
    lo, hi, step = (float(value[k]) for k in ("from", "to", "step"))
    if not (math.isfinite(lo) and math.isfinite(hi) and step > 0 and hi >= lo):
        raise ValueError("a range needs finite from <= to and step > 0")
    count = range_count(lo, hi, step, "range")
    return [round(lo + i * step, 12) for i in range(count)]


#: A list of numbers, or ``{from, to, step}`` (ends included); at least one value.
Axis = Annotated[
    list[Annotated[float, Field(ge=-BIG, le=BIG, allow_inf_nan=False)]],
    BeforeValidator(_expand),
    Field(min_length=1),
]


def axis(start: float, stop: float, step: float) -> list[float]:
    """A default :data:`Axis` value: ``start``, ``start + step``, …, ``stop``."""
    expanded: list[float] = _expand({"from": start, "to": stop, "step": step})
    return expanded


class MapConfig(StudyConfig):
    """A model-based map: the game and policy of its episodes, and seeds per point."""

    game: GameConfig = Field(default_factory=GameConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    seeds: int = Field(
        5, ge=1, le=MANY, description="Episodes per point of the map (seeds 0, 1, …)."
    )


def map_work(config: MapConfig, cells: int, per_cell: int, agents: int) -> Work:
    """A map's size: ``cells`` cells of ``per_cell`` points, each played by every seed."""
    return Work(
        cells=cells,
        episodes=cells * per_cell * config.seeds,
        steps=config.game.steps,
        agents=agents,
        candidates=candidates(config.game, config.policy),
    )


def check_model_based(config: MapConfig, per_agent: bool = False) -> None:
    """Maps run the rule-only engine: no model, no per-agent values, no outsiders.

    ``per_agent``: the kind draws x_max, weights and values per agent from a distribution
    (value drift's population), so those are checked by the kind.

    Raises:
        ConfigError: Naming the field that asks for more.
    """
    p, g = config.policy, config.game
    if p.candidates == "llm" or p.scorer == "judge":
        raise ConfigError(
            f"policy: a {config.kind} map is model-based: candidates grid or random, "
            "scorer paper or consistent"
        )
    if p.selector != "code" or p.fallback != "anchors":
        raise ConfigError("policy.selector/fallback: only LLM-backed sweeps use them")
    if per_agent:
        return
    if not isinstance(g.x_max, int | float) or g.weights is not None or g.values is not None:
        raise ConfigError(
            f"game.x_max/weights/values: a {config.kind} map takes one x_max and no "
            "per-agent impacts or values (use a sweep for those)"
        )


def schema(
    *, ints: Sequence[str] = (), floats: Sequence[str] = (), bools: Sequence[str] = ()
) -> pa.Schema:
    """A table schema from column names by type (in that order)."""
    return pa.schema(
        [(n, pa.int64()) for n in ints]
        + [(n, pa.float64()) for n in floats]
        + [(n, pa.bool_()) for n in bools]
    )


def table_of(columns: Table, table_schema: pa.Schema) -> pa.Table:
    """Named numpy columns as an Arrow table of ``table_schema`` (every column, in order).

    A 2-D column fills a list-typed field (one list per row).
    """
    data = {n: np.asarray(columns[n]) for n in table_schema.names}
    lists = {n: list(a) if a.ndim == 2 else a for n, a in data.items()}
    return pa.table(lists, schema=table_schema)


def rows(table: Table, mask: np.ndarray) -> Table:
    """The rows of ``table`` where ``mask`` holds."""
    return {k: np.asarray(v)[mask] for k, v in table.items()}


class SplitKind:
    """A kind whose cells are its config narrowed along ``split`` (list-valued fields).

    Subclasses set the class attributes and write :meth:`compute`; :meth:`check` may add
    validation that names fields.

    Attributes:
        name: The kind.
        summary: One line for listings.
        config: The config class.
        tables: ``{name: schema}``: one table per cell, named after the kind.
        split: The list fields whose values make the cells (their product).
        placement: Where tasks run.
        together: Fields whose values must be equal for cells to share a task (one batch).
    """

    name: str
    summary: str
    config: type[Any]
    tables: ClassVar[dict[str, pa.Schema | None]]
    split: tuple[str, ...]
    placement: Placement = "engine"
    together: tuple[str, ...] = ()

    def _schema(self) -> pa.Schema:
        found = self.tables[self.name]
        assert found is not None
        return found

    def check(self, config: Any) -> None:
        """Refuse what this kind cannot compute (raise ConfigError or ValueError)."""

    def work(self, config: Any) -> Work:
        """How big the study is (each kind knows its points per cell)."""
        raise NotImplementedError

    def values(self, config: Any, field: str) -> list[Any]:
        """The values of ``field`` that make cells (default: the list the config holds).

        ``[None]``: the field is not swept in this config (its cells leave it as it is).
        """
        return list(getattr(config, field))

    def plan(self, config: Any, source: str) -> list[Cell]:
        """One cell per combination of the ``split`` fields' values."""
        try:
            self.check(config)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        base = config.model_dump(mode="json")
        cells = []
        for combo in itertools.product(*(self.values(config, f) for f in self.split)):
            # A None value leaves its field as the config has it (an axis not swept).
            assignment = {f: x for f, x in zip(self.split, combo, strict=True) if x is not None}
            narrowed = {f: [v] for f, v in assignment.items()}
            cell = validate_cell(self.config, base, narrowed, f"{source}: {assignment}")
            data = {"kind": self.name, **payload(cell, NOT_HASHED)}
            cells.append(Cell(key=digest(data), config=cell, assignment=assignment))
        return cells

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """Cells that agree on ``together`` share tasks, in chunks that keep workers busy."""
        groups: dict[str, list[Cell]] = {}
        for cell in cells:
            key = json.dumps([cell.assignment.get(f) for f in self.together])
            groups.setdefault(key, []).append(cell)
        if self.placement == "driver":
            return [Task("driver", (c,)) for c in cells]
        workers = executor.workers or 2
        out = []
        for group in groups.values():
            size = max(1, min(executor.cells_per_task, math.ceil(len(group) / workers)))
            for start in range(0, len(group), size):
                out.append(Task(self.placement, tuple(group[start : start + size])))
        return out

    def compute(self, configs: Sequence[Any]) -> list[Table]:
        """Each config's table (configs of one task: narrowed along ``split``)."""
        raise NotImplementedError

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Compute the task's cells together; each gets its own slice."""
        start = time.perf_counter()
        parts = self.compute([c.config for c in task.cells])
        share = (time.perf_counter() - start) / len(task.cells)
        return [
            CellResult(cell=c, tables={self.name: table_of(part, self._schema())}, seconds=share)
            for c, part in zip(task.cells, parts, strict=True)
        ]

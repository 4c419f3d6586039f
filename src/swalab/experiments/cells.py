"""What every kind of study is made of: cells named by hash, tasks, and the tables they yield.

A cell is one unit of a study that is computed, stored and resumed whole: a grid point of a
sweep, a β column of a phase diagram, one λ of a live run. It is named by a hash of what
determines its results (never of where or how it runs), so the same cell computed twice —
here or on a Ray cluster, today or after a crash — has one name. Cells that can be
computed together are grouped into tasks, and a task says where it may run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel


def digest(payload: Any) -> str:
    """Short stable hash (16 hex digits) of JSON data."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Roster:
    """The loaded models of a mixed-model task, in its configs' ``model_roster()`` order.

    What an executor hands an LLM task whose agents are answered by more than one model
    (a one-model task gets the model itself).
    """

    models: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One unit of a study.

    Attributes:
        key: Hash of what its results depend on (16 hex digits); names the cell's files.
        config: The cell's resolved config (a study config narrowed to this cell).
        assignment: What sets this cell apart from the others of its study (shown in logs
            and reports).
    """

    key: str
    config: Any
    assignment: dict[str, Any]


#: Where a task may run: ``engine`` on any worker (CPU-bound, independent), ``llm`` where
#: its model is loaded, ``driver`` in the driving process alone, one after another (live
#: servers and timings must not share the machine with other work).
Placement = Literal["engine", "llm", "driver"]


@dataclass(frozen=True)
class Task:
    """Cells computed together, and where.

    Attributes:
        kind: Where the task may run (:data:`Placement`).
        cells: The cells, all of one study kind.
        model_key: For ``llm`` tasks: which loaded model serves them.
    """

    kind: Placement
    cells: tuple[Cell, ...]
    model_key: str | None = None


@dataclass
class CellResult:
    """One finished cell.

    Attributes:
        cell: The cell.
        tables: Its tables by name (``steps`` and ``episodes`` for a sweep; one table named
            after the kind for the others); each becomes ``<name>.parquet``.
        seconds: Wall time of the task that computed it, shared evenly over its cells.
    """

    cell: Cell
    tables: dict[str, pa.Table]
    seconds: float


def plan_hash(cells: list[Cell]) -> str:
    """One name for a whole plan: the hash of its sorted cell keys."""
    return digest(sorted(c.key for c in cells))


def payload(config: BaseModel, not_hashed: tuple[str, ...]) -> dict[str, Any]:
    """A study config as the JSON data its cell hash is taken over."""
    data: dict[str, Any] = config.model_dump(mode="json", exclude=set(not_hashed))
    return data

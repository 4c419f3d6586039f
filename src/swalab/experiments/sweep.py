"""The ``sweep`` kind: a grid of SWI episodes (model-based, LLM or dilemma), every step stored.

Its plan is :mod:`~swalab.experiments.plan`, its tasks run in :mod:`~swalab.experiments.execute`;
each cell writes ``steps`` and ``episodes`` tables.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pyarrow as pa

from swalab.experiments.cells import Cell, CellResult, Task
from swalab.experiments.config import ExecutorConfig, ExperimentConfig
from swalab.experiments.execute import run_engine_task, run_llm_task
from swalab.experiments.kinds import OnStep
from swalab.experiments.limits import Work, axis_size, candidates
from swalab.experiments.plan import make_tasks, plan
from swalab.experiments.store import EPISODE_SCHEMA, STEP_SCHEMA


class Sweep:
    """The ``sweep`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "sweep"
    summary = "SWI episodes over a grid of λ, games, policies and models"
    config = ExperimentConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "steps": STEP_SCHEMA,
        "episodes": EPISODE_SCHEMA,
    }

    def plan(self, config: ExperimentConfig, source: str) -> list[Cell]:
        """The grid's cells (:func:`~swalab.experiments.plan.plan`)."""
        return plan(config, source)

    def work(self, config: ExperimentConfig) -> Work:
        """Cells: the product of the grid's axes; each plays its seeds."""
        cells = math.prod(axis_size(v, f"grid.{k}") for k, v in config.grid.items())
        seeds = len(config.seed_list())
        g = config.game
        return Work(
            cells=cells,
            episodes=cells * seeds,
            steps=g.steps,
            agents=g.n_agents,
            candidates=candidates(g, config.policy),
            cell_rows=seeds * g.steps * g.n_agents,
        )

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """LLM tasks per model and game, engine tasks in chunks."""
        return make_tasks(cells, executor)

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Play every episode of the task's cells in lockstep."""
        if task.kind == "llm":
            return run_llm_task(task, model, on_step)
        return run_engine_task(task)


SWEEP = Sweep()

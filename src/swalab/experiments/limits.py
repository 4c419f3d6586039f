"""Work is bounded before it starts: a study too large to fit or finish is refused.

A study's size is estimated from its config and refused, in one line naming the field and
the limit, when it would not fit in memory or not finish. The estimate needs no planning (a
grid of a billion points is refused before it is built): each kind says how many cells,
episodes, steps, agents and candidates its config asks for
(:meth:`swalab.experiments.kinds.Kind.work`). ``executor.force: true`` lifts the limits on
total work for a user who means it; the limits that protect memory (one axis, one cell's
rows, one agent's candidate grid) stay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swalab.experiments.config import ConfigError, Distribution, range_count

#: Cells of one study (each is a directory of the store).
MAX_CELLS = 200_000
#: Agent decisions of one study (episodes × steps × agents): about an hour on the engine.
MAX_DECISIONS = 1e11
#: Step rows one cell stores (a task holds its cells' rows in memory while it builds them).
MAX_CELL_ROWS = 2_000_000
#: Candidates one agent scores per step (the demand grid x_max / grid_step).
MAX_CANDIDATES = 100_000


@dataclass(frozen=True)
class Work:
    """How big a study is.

    Attributes:
        cells: Cells it plans.
        episodes: Episodes over all cells.
        steps: Steps per episode (the mean, for a random horizon).
        agents: Agents per episode.
        candidates: Candidates each agent scores per step.
        cell_rows: Step rows the largest cell stores (0 when it stores none).
        field: The config field that sets the number of cells (named when refused).
    """

    cells: int
    episodes: int
    steps: int
    agents: int
    candidates: int
    cell_rows: int = 0
    field: str = "grid"

    @property
    def decisions(self) -> float:
        """Agent decisions: episodes × steps × agents."""
        return float(self.episodes) * self.steps * self.agents


def candidates(game: Any, policy: Any) -> int:
    """Candidates one agent scores per step under ``policy`` (the grid, or draws + anchors)."""
    if policy.candidates != "grid":
        return int(policy.k) + len(policy.anchors)
    cap = game.x_max
    if isinstance(cap, Distribution):
        spread = [cap.high, max(cap.values or [0.0]), (cap.mean or 0.0) + 6 * (cap.sd or 0.0)]
        cap = max(float(x or 0.0) for x in spread)
    elif isinstance(cap, list):
        cap = max(cap)
    points = float(cap) / float(policy.grid_step)
    if not math.isfinite(points):
        return MAX_CANDIDATES + 1
    return math.floor(points + 1e-9) + 1 + len(policy.anchors)


def axis_size(values: Any, field: str) -> int:
    """Values a grid axis holds (a list, or a ``{from, to, step}`` range), without building it.

    A range that is not well formed counts 1 here: the planner names what is wrong with it.
    """
    if isinstance(values, dict):
        try:
            lo, hi, step = (float(values[k]) for k in ("from", "to", "step"))
        except (KeyError, TypeError, ValueError):
            return 1
        if not (math.isfinite(lo) and math.isfinite(hi) and step > 0 and hi >= lo):
            return 1
        return range_count(lo, hi, step, field)
    return len(values) if isinstance(values, list) else 1


def check(work: Work, *, force: bool, source: str) -> None:
    """Refuse ``work`` that would not fit in memory, or (unless ``force``) not finish.

    Raises:
        ConfigError: One line naming the field, the size and the limit.
    """
    if work.candidates > MAX_CANDIDATES:
        raise ConfigError(
            f"{source}: the demand grid has {work.candidates:,} candidates per agent and step "
            f"(game.x_max / policy.grid_step); at most {MAX_CANDIDATES:,}"
        )
    if work.cell_rows > MAX_CELL_ROWS:
        raise ConfigError(
            f"{source}: one cell would store {work.cell_rows:,} step rows (seeds × game.steps "
            f"× game.n_agents); at most {MAX_CELL_ROWS:,} (fewer seeds or steps)"
        )
    if force:
        return
    if work.cells > MAX_CELLS:
        raise ConfigError(
            f"{source}: {work.field} makes {work.cells:,} cells; at most {MAX_CELLS:,} "
            "(executor.force: true runs it anyway)"
        )
    if work.decisions > MAX_DECISIONS:
        raise ConfigError(
            f"{source}: the study asks for {work.decisions:.3g} agent decisions (episodes × "
            f"steps × agents over {work.cells:,} cells); at most {MAX_DECISIONS:.0e}, about an "
            "hour on the engine (executor.force: true runs it anyway)"
        )

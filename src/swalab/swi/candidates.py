"""Candidate actions for the SWI rule (paper §4.1 step 1; ``docs/theory.md``).

A candidate set is the union of proposals (from an LLM, a fixed grid or seeded random
draws from it) with a fixed anchor set. Unlike the reference code, which truncates the
union to ``max(K, len(anchors))`` items with proposals first and so drops anchors whenever
the model proposes K or more numbers, swalab keeps every anchor: anchors exist to guarantee
that reasonable actions are always on the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from swalab import _validate as v
from swalab import reference as ref
from swalab._validate import FloatArray
from swalab.swi._rng import floyd_sample, stream_key

#: Anchors of the reference configuration (:data:`swalab.reference.ANCHORS`).
REFERENCE_ANCHORS: tuple[float, ...] = ref.ANCHORS


@dataclass(frozen=True, kw_only=True)
class CandidateSet:
    """The candidates one agent chooses from, sorted ascending without duplicates.

    Attributes:
        values: Candidate demands, sorted, unique, inside ``[0, x_max]``.
        rejected: How many proposals were dropped for being NaN or outside ``[0, x_max]``.
            Kept so that callers can record them as failures instead of hiding them.
    """

    values: FloatArray
    rejected: int = 0


def candidate_set(
    proposals: Sequence[float] | FloatArray, anchors: Sequence[float], x_max: float
) -> CandidateSet:
    """Unite ``proposals`` with every anchor, deduplicate and sort.

    Proposals outside the action space are dropped and counted (never moved into it:
    clipping an LLM's 15 to 10 would invent a proposal it did not make). Anchors are
    policy constants and are clipped to ``[0, x_max]``, so the reference anchors still
    make sense for a smaller ``x_max``.
    """
    props = np.asarray(proposals, dtype=np.float64).ravel()
    ok = np.isfinite(props) & (props >= 0.0) & (props <= x_max)
    anchor_arr = np.clip(np.asarray(anchors, dtype=np.float64), 0.0, x_max)
    values = np.unique(np.concatenate([props[ok], anchor_arr]))
    return CandidateSet(values=values, rejected=int(props.size - ok.sum()))


def demand_grid(x_max: float, step: float) -> FloatArray:
    """Return ``0, step, 2·step, …`` up to ``x_max`` (41 points for the reference 10 / 0.25)."""
    xm = v.positive("x_max", x_max)
    st = v.positive("grid_step", step)
    n = math.floor(xm / st + 1e-9) + 1
    grid: FloatArray = np.minimum(np.arange(n, dtype=np.float64) * st, xm)
    return grid


class CandidateSource(Protocol):
    """Proposes raw candidates for every agent of one step in one call (batch-first).

    Sources that need randomness derive it from ``(seed, step, agent)`` so an episode is
    reproducible from its seed alone, whichever path or batch runs it.
    """

    def propose(self, *, seed: int, step: int, n_agents: int) -> list[FloatArray]:
        """Return one array of proposals per agent."""
        ...


def _caps(x_max: float | Sequence[float]) -> list[float]:
    return [float(x_max)] if isinstance(x_max, int | float) else [float(c) for c in x_max]


def _grids(x_max: float | Sequence[float], step: float, n_agents: int) -> list[FloatArray]:
    """Return each agent's demand grid; one cap for all agents or one per agent."""
    caps = _caps(x_max)
    caps = caps * n_agents if len(caps) == 1 else caps
    if len(caps) != n_agents:
        raise ValueError(
            f"x_max has {len(caps)} entries: must be one or one per agent ({n_agents})"
        )
    cache: dict[float, FloatArray] = {}
    return [cache.setdefault(c, demand_grid(c, step)) for c in caps]


@dataclass(frozen=True, kw_only=True)
class GridCandidates:
    """Every point of a fixed demand grid (each agent's own, up to its ``x_max``)."""

    x_max: float | tuple[float, ...]
    step: float = 0.25

    def propose(self, *, seed: int, step: int, n_agents: int) -> list[FloatArray]:
        """Return each agent's whole grid."""
        return _grids(self.x_max, self.step, n_agents)


@dataclass(frozen=True, kw_only=True)
class RandomGridCandidates:
    """``k`` distinct grid points per agent and step, from a counter-based stream.

    This is the reference code's fallback when a model's answer yields too few numbers,
    and the model-based stand-in for an LLM's stochastic proposals. Draws depend only on
    ``(seed, step, agent)``, so the lockstep engine reproduces them exactly.
    """

    x_max: float | tuple[float, ...]
    k: int = 7
    step: float = 0.25

    def __post_init__(self) -> None:
        size = min(demand_grid(c, self.step).size for c in _caps(self.x_max))
        v.integer_at_least("k", self.k, 1)
        if self.k > size:
            raise ValueError(f"k={self.k} is out of range: the grid has only {size} points")

    def propose(self, *, seed: int, step: int, n_agents: int) -> list[FloatArray]:
        """Draw ``k`` points of its own grid without replacement for each agent."""
        return [
            grid[floyd_sample(stream_key(seed, step, agent), grid.size, self.k)]
            for agent, grid in enumerate(_grids(self.x_max, self.step, n_agents))
        ]


@dataclass(frozen=True, kw_only=True)
class AnchorCandidates:
    """No proposals at all: an agent chooses among the anchors alone.

    The ablation that tells how much proposals matter: SWI with an LLM's proposals against
    SWI with only the fixed anchor set, on the same seeds.
    """

    def propose(self, *, seed: int, step: int, n_agents: int) -> list[FloatArray]:
        """Return an empty proposal list for every agent."""
        return [np.empty(0) for _ in range(n_agents)]


@dataclass(frozen=True)
class FixedCandidates:
    """Candidates given in advance: ``table[step][agent]`` (e.g. recorded LLM proposals)."""

    table: Sequence[Sequence[Sequence[float] | FloatArray]]

    def propose(self, *, seed: int, step: int, n_agents: int) -> list[FloatArray]:
        """Return the recorded proposals of ``step``."""
        if step >= len(self.table) or len(self.table[step]) != n_agents:
            raise ValueError(f"no recorded candidates for step {step} and {n_agents} agents")
        return [np.asarray(c, dtype=np.float64) for c in self.table[step]]

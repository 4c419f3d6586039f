"""The ``phase`` kind: overload rate and welfare over a (λ, β) grid, for one or more N.

A cell is one β column of one N: every λ × seed of it runs in the lockstep engine, and its
table holds one row per λ with the seed-averaged metrics beside λ*(β) and λ̃(β). Cells of
one N that share a task run as one engine batch. The report draws the heatmaps and puts
each column's switching λ next to both predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from swalab import _validate as v
from swalab.experiments import adapt
from swalab.experiments.config import GameConfig, PolicyConfig
from swalab.experiments.limits import Work
from swalab.experiments.studies import (
    Axis,
    MapConfig,
    SplitKind,
    Table,
    axis,
    check_model_based,
    map_work,
    rows,
    schema,
)
from swalab.swi.phase import phase_diagram


class PhaseConfig(MapConfig):
    """A phase diagram; defaults: the reference game, random candidates, T = 100, 100 seeds.

    For an N other than ``game.n_agents`` the capacity scales to keep ``C/N`` fixed.
    """

    kind: Literal["phase"] = "phase"
    name: str = "phase"
    game: GameConfig = Field(default_factory=lambda: GameConfig(steps=100))
    policy: PolicyConfig = Field(default_factory=lambda: PolicyConfig(candidates="random"))
    lam: Axis = Field(default_factory=lambda: axis(0.0, 1.0, 0.01), description="λ columns.")
    beta: Axis = Field(default_factory=lambda: axis(1.0, 5.0, 0.1), description="β rows.")
    agents: list[Annotated[int, Field(ge=2, le=10**6)]] | None = Field(
        None, description="Population sizes N (default: game.n_agents)."
    )
    seeds: int = Field(100, ge=1, le=10**9, description="Episodes per (N, β, λ) point.")


class Phase(SplitKind):
    """The ``phase`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "phase"
    summary = "overload rate and welfare over (λ, β[, N]) beside λ*(β) and λ̃(β)"
    config = PhaseConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "phase": schema(
            ints=("n_agents", "seeds"),
            floats=(
                "beta",
                "lam",
                "capacity",
                "overload_rate",
                "overload_rate_sd",
                "mean_welfare",
                "mean_welfare_sd",
                "mean_load",
                "lambda_star",
                "lambda_tilde",
            ),
        )
    }
    split = ("agents", "beta")
    together = ("agents",)

    def work(self, config: PhaseConfig) -> Work:
        """A cell per (N, β); every λ × seed of it."""
        sizes = self.values(config, "agents")
        return map_work(config, len(sizes) * len(config.beta), len(config.lam), max(sizes))

    def check(self, config: PhaseConfig) -> None:
        """Model-based, one x_max; the lam and β grids inside their ranges."""
        check_model_based(config)
        adapt.base_simulation(config.game, config.policy)
        for i, n in enumerate(self.values(config, "agents")):
            v.integer_at_least(f"agents[{i}]", n, 2)
        for i, b in enumerate(config.beta):
            v.positive(f"beta[{i}]", b)
        for i, x in enumerate(config.lam):
            v.unit_interval(f"lam[{i}]", x)

    def values(self, config: PhaseConfig, field: str) -> list[Any]:
        """``agents`` defaults to ``game.n_agents``."""
        if field == "agents" and config.agents is None:
            return [config.game.n_agents]
        return super().values(config, field)

    def compute(self, configs: Sequence[PhaseConfig]) -> list[Table]:
        """One engine batch over every β of the task (one N), split back into columns."""
        first = configs[0]
        assert first.agents is not None
        base = adapt.base_simulation(first.game, first.policy)
        betas = [c.beta[0] for c in configs]
        table = phase_diagram(base, first.lam, betas, seeds=first.seeds, n_agents=first.agents)
        return [rows(table, table["beta"] == b) for b in betas]


PHASE = Phase()

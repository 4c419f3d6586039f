"""The ``stability`` kind: belief stability over (α, N) at a λ far above the switch.

Above the switch every agent aims at ``C_eff − (N − 1)·μ̂``, so the shared EMA settles only
if ``α < 2/N`` (``docs/theory.md``); an unstable belief swings the load around capacity
whatever λ is. A cell is one N over every α; its table holds the simulated overload (all
steps and the second half) beside the closed form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from swalab import _validate as v
from swalab.experiments import adapt
from swalab.experiments.config import BIG, TINY, GameConfig
from swalab.experiments.limits import Work
from swalab.experiments.studies import (
    Axis,
    MapConfig,
    SplitKind,
    Table,
    axis,
    check_model_based,
    map_work,
    schema,
)
from swalab.swi.stability import belief_stability_map


class StabilityConfig(MapConfig):
    """A belief-stability map; defaults: paper scorer, grid candidates, β = 3, m = 2, T = 60."""

    kind: Literal["stability"] = "stability"
    name: str = "stability"
    game: GameConfig = Field(default_factory=lambda: GameConfig(beta=3.0, steps=60))
    alpha: Axis = Field(
        default_factory=lambda: axis(0.025, 0.5, 0.025), description="EMA smoothing values."
    )
    agents: list[Annotated[int, Field(ge=2, le=10**6)]] = Field(
        default_factory=lambda: [2, 3, 4, 5, 6, 8, 10, 12, 16, 20],
        min_length=1,
        description="Population sizes N.",
    )
    lam: float = Field(0.95, ge=0, le=1, description="λ of every agent.")
    capacity_per_agent: float = Field(
        4.0, ge=TINY, le=BIG, allow_inf_nan=False, description="C/N (C = this · N)."
    )


class Stability(SplitKind):
    """The ``stability`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "stability"
    summary = "belief stability over (α, N) vs the closed form α < 2/N"
    config = StabilityConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "stability": schema(
            ints=("n_agents",),
            floats=("alpha", "alpha_n", "overload_rate", "late_overload_rate"),
            bools=("predicted_stable",),
        )
    }
    split = ("agents",)

    def work(self, config: StabilityConfig) -> Work:
        """A cell per N; every α × seed of it."""
        return map_work(config, len(config.agents), len(config.alpha), max(config.agents))

    def check(self, config: StabilityConfig) -> None:
        """Model-based; every α in (0, 1] and N ≥ 2 (named by the library)."""
        check_model_based(config)
        adapt.base_simulation(config.game, config.policy)
        for i, a in enumerate(config.alpha):
            v.open_unit_interval_right(f"alpha[{i}]", a)
        for i, n in enumerate(config.agents):
            v.integer_at_least(f"agents[{i}]", n, 2)

    def compute(self, configs: Sequence[StabilityConfig]) -> list[Table]:
        """Each N's row of the map."""
        out = []
        for c in configs:
            base = adapt.base_simulation(c.game, c.policy)
            table = belief_stability_map(
                c.alpha,
                c.agents,
                base=base,
                lam=c.lam,
                capacity_per_agent=c.capacity_per_agent,
                seeds=c.seeds,
            )
            out.append(table)
        return out


STABILITY = Stability()

"""The ``surface`` kind: the critical surface of mixed populations, simulated and predicted.

k of N agents sit at ``λ_low``, the rest at ``lam_high``; a cell is one k over every
``λ_low``. Its table holds the simulated overload beside the two predictions: game theory
(escape iff the sub-threshold agents' load fits, ``k·x_max ≤ C``) and the SWI rule's own
fixed point (its shared mean belief misjudges a mixed population). All cells run as one
engine batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from swalab import _validate as v
from swalab import theory
from swalab.experiments import adapt
from swalab.experiments.config import BeliefConfig, GameConfig, PolicyConfig
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
from swalab.swi.surface import critical_surface


class SurfaceConfig(MapConfig):
    """A critical surface; defaults: N = 10, C = 40, β = 3, consistent scorer, α = 0.1, T = 60."""

    kind: Literal["surface"] = "surface"
    name: str = "surface"
    game: GameConfig = Field(
        default_factory=lambda: GameConfig(n_agents=10, capacity=40.0, beta=3.0, steps=60)
    )
    policy: PolicyConfig = Field(
        default_factory=lambda: PolicyConfig(scorer="consistent", belief=BeliefConfig(alpha=0.1))
    )
    lam_low: Axis = Field(
        default_factory=lambda: axis(0.0, 1.0, 0.05), description="λ of the low group."
    )
    lam_high: float = Field(1.0, ge=0, le=1, description="λ of the others.")
    k: list[Annotated[int, Field(ge=0, le=10**6)]] | None = Field(
        None, description="Sizes of the low group (default 0..N)."
    )


class Surface(SplitKind):
    """The ``surface`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "surface"
    summary = "critical surface: k agents at λ_low among prosocial ones, vs two predictions"
    config = SurfaceConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "surface": schema(
            ints=("k",),
            floats=(
                "fraction",
                "lam_low",
                "overload_rate",
                "mean_welfare",
                "mean_load",
                "sub_load",
                "swi_load",
            ),
            bools=("nash_overloaded", "swi_overloaded"),
        )
    }
    split = ("k",)

    def work(self, config: SurfaceConfig) -> Work:
        """A cell per k; every λ_low × seed of it."""
        cells = len(self.values(config, "k"))
        return map_work(config, cells, len(config.lam_low), config.game.n_agents)

    def check(self, config: SurfaceConfig) -> None:
        """Model-based; λ_high at or above the scorer's switch (checked by the library)."""
        check_model_based(config)
        base = adapt.base_simulation(config.game, config.policy)
        for i, x in enumerate(config.lam_low):
            v.unit_interval(f"lam_low[{i}]", x)
        for k in self.values(config, "k"):
            if not 0 <= k <= base.n_agents:
                raise ValueError(f"k: {k} is out of range: must lie in 0..{base.n_agents}")
        x_max = base.x_max
        assert isinstance(x_max, float)  # base_simulation takes one number
        switch = theory.predicted_switch(
            base.scorer,
            n_agents=base.n_agents,
            capacity=base.capacity,
            beta=base.beta,
            x_max=x_max,
            margin=base.margin,
        )
        if config.lam_high < switch:
            raise ValueError(
                f"lam_high={config.lam_high:g} is below the scorer's switch {switch:.3g}: "
                "the 'prosocial' group would not be prosocial"
            )

    def values(self, config: SurfaceConfig, field: str) -> list[Any]:
        """``k`` defaults to 0, 1, …, N."""
        if field == "k" and config.k is None:
            return list(range(config.game.n_agents + 1))
        return super().values(config, field)

    def compute(self, configs: Sequence[SurfaceConfig]) -> list[Table]:
        """Every k of the task in one batch, split back by k."""
        first = configs[0]
        base = adapt.base_simulation(first.game, first.policy)
        ks = [c.k[0] for c in configs if c.k is not None]
        table = critical_surface(
            base, first.lam_low, lam_high=first.lam_high, seeds=first.seeds, ks=ks
        )
        return [rows(table, table["k"] == k) for k in ks]


SURFACE = Surface()

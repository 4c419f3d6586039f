"""The ``lockin`` kind: lock-in over (initial belief μ̂₀, λ) against the closed form.

The paper scorer clips its group score at 0 once the predicted welfare turns negative, so
from a belief at or above the lock-in belief even demand 0 looks hopeless and the system
stays overloaded for every λ < 1 (``docs/theory.md``). A cell is one μ̂₀ over every λ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from swalab import _validate as v
from swalab.experiments import adapt
from swalab.experiments.config import GameConfig
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
from swalab.swi.stability import lockin_map


class LockinConfig(MapConfig):
    """A lock-in map; defaults: the reference game and policy, T = 40."""

    kind: Literal["lockin"] = "lockin"
    name: str = "lockin"
    game: GameConfig = Field(default_factory=lambda: GameConfig(steps=40))
    initial_belief: Axis = Field(
        default_factory=lambda: axis(0.0, 10.5, 0.5), description="Initial beliefs μ̂₀."
    )
    lam: Axis = Field(default_factory=lambda: axis(0.0, 1.0, 0.05), description="λ values.")


class Lockin(SplitKind):
    """The ``lockin`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "lockin"
    summary = "lock-in over (μ̂₀, λ) vs the closed-form lock-in belief and switch"
    config = LockinConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "lockin": schema(
            floats=(
                "initial_belief",
                "lam",
                "overload_rate",
                "late_overload_rate",
                "lockin_belief",
                "switch",
            ),
            bools=("predicted_locked",),
        )
    }
    split = ("initial_belief",)

    def work(self, config: LockinConfig) -> Work:
        """A cell per μ̂₀; every λ × seed of it."""
        cells = len(config.initial_belief)
        return map_work(config, cells, len(config.lam), config.game.n_agents)

    def check(self, config: LockinConfig) -> None:
        """Model-based; beliefs ≥ 0 and λ in [0, 1] (named by the library)."""
        check_model_based(config)
        adapt.base_simulation(config.game, config.policy)
        for i, b in enumerate(config.initial_belief):
            v.non_negative(f"initial_belief[{i}]", b)
        for i, x in enumerate(config.lam):
            v.unit_interval(f"lam[{i}]", x)

    def compute(self, configs: Sequence[LockinConfig]) -> list[Table]:
        """Each μ̂₀'s row of the map."""
        out = []
        for c in configs:
            base = adapt.base_simulation(c.game, c.policy)
            out.append(lockin_map(c.initial_belief, c.lam, base=base, seeds=c.seeds))
        return out


LOCKIN = Lockin()

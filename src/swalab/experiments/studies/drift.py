"""The ``drift`` kind: λ that moves through interaction, beside its mean-field prediction.

A population of ``agents`` SWI agents starts with λ values ``types`` in shares ``shares``
(``game.x_max``, ``weights`` and ``values`` may be distributions: each agent draws its own
per seed and keeps it wherever it is matched);
every round it is matched into groups of ``game.n_agents`` that play ``game.steps`` steps of
the congestion game, then an update rule moves every λ (:mod:`swalab.swi.drift`). A cell is
one (rule, selection, mutation, β, price, fine, reputation, talk) over every seed — the
institutions (a congestion price, peer sanctions, public reputation, cheap talk, a mediator:
:class:`~swalab.swi.drift.Institution`) and the severity β are axes like the rule's, so
mechanism × rule × β grids are one config, and institution on and off run on identical
seeds and pair. Its table has one row per seed and round: mean λ, the prosocial share (λ at
or above the scorer's switch), the λ distribution (the share of agents in each of
:data:`~swalab.swi.drift.BINS` equal bins of [0, 1]), overload and welfare, λ* and λ̃ of
the cell's game, and — for a two-type population under imitation or the replicator — the
mean-field prediction of :mod:`swalab.theory.drift` for the same round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from swalab.experiments import adapt
from swalab.experiments.config import ConfigError, Distribution, GameConfig
from swalab.experiments.limits import Work
from swalab.experiments.studies import (
    Axis,
    MapConfig,
    SplitKind,
    Table,
    check_model_based,
    map_work,
    schema,
)

Rule = Literal["imitation", "replicator", "conformity", "principal", "reinforcement", "none"]
Talk = Literal["none", "cheap", "mediator"]
#: Rules with a two-type mean-field prediction.
MAPPED = ("imitation", "replicator", "reinforcement", "none")


class DriftConfig(MapConfig):
    """A drift study; defaults: the reference game (T = 5 a round), 1,000 agents, 100 rounds."""

    kind: Literal["drift"] = "drift"
    name: str = "drift"
    game: GameConfig = Field(default_factory=lambda: GameConfig(steps=5))
    agents: int = Field(
        1000, ge=2, le=10**7, description="Population size (a multiple of game.n_agents)."
    )
    rounds: int = Field(100, ge=1, le=10**6, description="Rounds of matching, play, update.")
    rule: list[Rule] = Field(
        default_factory=lambda: list[Rule](["imitation"]), min_length=1, description="Rules."
    )
    selection: Axis = Field(default_factory=lambda: [1.0], description="Selection strength s.")
    rate: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Share revising per round (imitation, replicator), step toward the mean "
        "(conformity), pull toward 0 (principal), learning rate (reinforcement).",
    )
    mutation: Axis = Field(
        default_factory=lambda: [0.0], description="Chance per round that a λ is redrawn."
    )
    beta: Axis | None = Field(
        None, description="Severities β to sweep (a cell each); null: game.beta alone."
    )
    price: Axis = Field(
        default_factory=lambda: [0.0], description="Congestion price per overloaded unit."
    )
    fine: Axis = Field(
        default_factory=lambda: [0.0], description="Peer sanction per demand above C/N."
    )
    sanction_cost: float = Field(0.0, ge=0, description="What issuing a sanction costs.")
    memory: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Weight of the latest round in the public record (1: that round alone).",
    )
    talk: list[Talk] = Field(
        default_factory=lambda: list[Talk](["none"]),
        min_length=1,
        description="What agents hear before each step: none, cheap talk (announced "
        "intentions) or a mediator (the others will ask C/N).",
    )
    reputation: Axis = Field(
        default_factory=lambda: [0.0],
        description="Weight imitation gives a model's public record of demand above C/N.",
    )
    types: list[float] = Field(
        default_factory=lambda: [0.9, 0.3], min_length=1, description="The starting λ values."
    )
    shares: list[float] = Field(
        default_factory=lambda: [0.9, 0.1], min_length=1, description="Their starting shares."
    )

    @model_validator(mode="after")
    def _population(self) -> DriftConfig:
        if len(self.types) != len(self.shares):
            raise ValueError(
                f"types has {len(self.types)} values and shares {len(self.shares)}: "
                "give one share per type"
            )
        if any(not 0 <= t <= 1 for t in self.types):
            raise ValueError(f"types={self.types}: every λ must lie in [0, 1]")
        if any(s < 0 for s in self.shares) or abs(sum(self.shares) - 1) > 1e-9:
            raise ValueError(f"shares={self.shares}: must be ≥ 0 and sum to 1")
        if any(s < 0 for s in self.selection) or any(not 0 <= m <= 1 for m in self.mutation):
            raise ValueError("selection must be ≥ 0 and mutation in [0, 1]")
        if self.beta is not None and any(b <= 0 for b in self.beta):
            raise ValueError(f"beta={self.beta}: every β must be > 0")
        if any(x < 0 for x in (*self.price, *self.fine, *self.reputation)):
            raise ValueError(
                f"price={self.price}, fine={self.fine}, reputation={self.reputation}: must be ≥ 0"
            )
        return self


#: Per-agent parameters a drifting population may draw from a distribution.
PER_AGENT = ("x_max", "weights", "values")


def _nominal(game: GameConfig) -> GameConfig:
    """The game with one number for each drawn parameter (its expectation; switches use it)."""
    update: dict[str, Any] = {}
    if isinstance(game.x_max, Distribution):
        update["x_max"] = game.x_max.expected()
    for name in ("weights", "values"):
        if isinstance(getattr(game, name), Distribution):
            update[name] = None
    return game.model_copy(update=update)


def _population(game: GameConfig, agents: int, seed: int) -> dict[str, np.ndarray]:
    """Each drawn parameter for every population agent, for one seed (it follows the agent)."""
    from swalab.experiments.population import draw

    return {
        name: draw(spec, name, agents, seed)
        for name in PER_AGENT
        if isinstance(spec := getattr(game, name), Distribution)
    }


def population(config: DriftConfig) -> np.ndarray:
    """The starting λ of every agent, types in order, counts rounded to sum to ``agents``."""
    counts = np.floor(np.asarray(config.shares) * config.agents).astype(int)
    counts[np.argmax(config.shares)] += config.agents - counts.sum()
    return np.repeat(np.asarray(config.types, dtype=np.float64), counts)


class Drift(SplitKind):
    """The ``drift`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "drift"
    summary = (
        "value drift: λ moved by imitation, replication, reinforcement, conformity or a "
        "principal's pull"
    )
    config = DriftConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "drift": schema(
            ints=("seed", "round"),
            floats=(
                "selection",
                "mutation",
                "beta",
                "price",
                "fine",
                "reputation",
                "mean_lam",
                "prosocial",
                "overload_rate",
                "mean_welfare",
                "mean_payoff",
                "switch",
                "predicted_prosocial",
                "predicted_mean_lam",
                "lam_star",
                "lam_tilde",
            ),
        )
        .append(pa.field("rule", pa.string()))
        .append(pa.field("talk", pa.string()))
        .append(pa.field("lam_hist", pa.list_(pa.float64())))
    }
    split = ("rule", "selection", "mutation", "beta", "price", "fine", "reputation", "talk")

    def values(self, config: DriftConfig, field: str) -> list[Any]:
        """β is swept only where the config lists it (else every cell plays game.beta)."""
        if field == "beta" and config.beta is None:
            return [None]
        return list(getattr(config, field))

    def work(self, config: DriftConfig) -> Work:
        """A cell per (rule, s, μ, β, institution); a seed plays ``rounds × agents / N`` groups."""
        cells = len(config.rule) * len(config.selection) * len(config.mutation)
        cells *= len(config.beta or [None])
        cells *= len(config.price) * len(config.fine) * len(config.reputation) * len(config.talk)
        groups = config.rounds * (config.agents // config.game.n_agents)
        return map_work(config, cells, groups, config.game.n_agents)

    def check(self, config: DriftConfig) -> None:
        """Model-based, all SWI, per-agent values drawn, and a population that splits."""
        check_model_based(config, per_agent=True)
        for name in PER_AGENT:
            spec = getattr(config.game, name)
            if isinstance(spec, list):
                raise ConfigError(
                    f"game.{name}={spec}: a list gives the seats of one group; agents of a "
                    f"drifting population draw their {name} from a distribution "
                    "({dist: uniform, low: …, high: …}) and keep it wherever they are matched"
                )
        adapt.base_simulation(_nominal(config.game), config.policy)
        n = config.game.n_agents
        if config.agents % n:
            raise ConfigError(
                f"agents={config.agents}: the population must be a multiple of "
                f"game.n_agents={n} (it is matched into groups of {n})"
            )

    def compute(self, configs: Sequence[DriftConfig]) -> list[Table]:
        """Each cell's rounds for every seed, with the mean-field prediction where one exists."""
        from swalab.swi.drift import (
            DriftRule,
            Institution,
            payoff_table,
            predicted_switch,
            run_drift,
        )
        from swalab.theory import drift as th

        out = []
        for c in configs:
            game = c.game if c.beta is None else c.game.model_copy(update={"beta": c.beta[0]})
            sim = adapt.base_simulation(_nominal(game), c.policy)
            drawn = any(isinstance(getattr(game, k), Distribution) for k in PER_AGENT)
            lam_star, lam_tilde = (predicted_switch(sim, name) for name in ("consistent", "paper"))
            (kind,), (s,), (mu,) = c.rule, c.selection, c.mutation
            (price,), (fine,), (reputation,), (talk,) = c.price, c.fine, c.reputation, c.talk
            rule = DriftRule(kind=kind, selection=s, rate=c.rate, mutation=mu)
            institution = Institution(
                price=price,
                fine=fine,
                sanction_cost=c.sanction_cost,
                reputation=reputation,
                memory=c.memory,
                talk=talk,
            )
            lam0 = population(c)
            switch = predicted_switch(sim)
            hi, lo = max(c.types), min(c.types)
            predicted = np.full(c.rounds + 1, np.nan)
            if len(c.types) == 2 and kind in MAPPED and lo < switch <= hi and not drawn:
                table = payoff_table(sim, (hi, lo), seeds=c.seeds, institution=institution)
                p0 = float(np.mean(lam0 >= switch - 1e-12))
                if kind == "reinforcement":
                    predicted = th.reinforcement_trajectory(
                        p0, c.rounds, table, selection=s, rate=c.rate, mutation=mu
                    )
                else:
                    predicted = th.trajectory(
                        p0, c.rounds, table, rule=kind, selection=s, rate=c.rate, mutation=mu
                    )
            predicted_lam = predicted * hi + (1 - predicted) * lo
            cols: dict[str, list[Any]] = {
                k: [] for k in self._schema().names if k not in ("rule", "talk")
            }
            for seed in range(c.seeds):
                res = run_drift(
                    sim,
                    lam0,
                    c.rounds,
                    rule,
                    seed=seed,
                    institution=institution,
                    **_population(game, c.agents, seed),
                )
                rows = c.rounds + 1
                cols["seed"] += [seed] * rows
                cols["round"] += list(range(rows))
                cols["selection"] += [s] * rows
                cols["mutation"] += [mu] * rows
                cols["beta"] += [sim.beta] * rows
                cols["lam_star"] += [lam_star] * rows
                cols["lam_tilde"] += [lam_tilde] * rows
                cols["lam_hist"] += res.histogram.tolist()
                cols["price"] += [price] * rows
                cols["fine"] += [fine] * rows
                cols["reputation"] += [reputation] * rows
                cols["mean_lam"] += res.mean_lam.tolist()
                cols["prosocial"] += res.prosocial.tolist()
                cols["overload_rate"] += np.append(res.overload_rate, np.nan).tolist()
                cols["mean_welfare"] += np.append(res.mean_welfare, np.nan).tolist()
                cols["mean_payoff"] += np.append(res.mean_payoff, np.nan).tolist()
                cols["switch"] += [res.switch] * rows
                cols["predicted_prosocial"] += predicted.tolist()
                cols["predicted_mean_lam"] += predicted_lam.tolist()
            table_out: Table = {k: np.asarray(v) for k, v in cols.items() if k != "lam_hist"}
            table_out["lam_hist"] = np.asarray(cols["lam_hist"], dtype=np.float64)
            table_out["rule"] = np.asarray([kind] * len(cols["seed"]))
            table_out["talk"] = np.asarray([talk] * len(cols["seed"]))
            out.append(table_out)
        return out


DRIFT = Drift()

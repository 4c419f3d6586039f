"""``commons_v0``: a renewable resource that regrows logistically (GovSim-style fishery).

The state is the stock left after the last harvest, ``S``. Each step it first regrows,
``S ← S + r·S·(1 − S/K)``, then every agent asks for ``h_i ∈ [0, x_max]``; the agents take
``min(Σh, S)`` in proportion to their asks. A stock left below ``collapse`` is gone for
good: nothing regrows and nothing can be harvested for the rest of the episode. Long
horizons (hundreds of steps) are the point: sustainability is survival time, total
harvest and equality, and drift (does harvesting creep up late in an episode).

Reward of agent i: its harvest; welfare: the total harvest. A step is *overloaded* when
the harvest exceeds what the stock can spare — its regrowth ``g(S) = r·S(1 − S/K)`` or
its surplus above the maximum-yield stock ``K/2``, whichever is larger — or the stock has
collapsed.

Welfare model (what the SWI scorer sees after a step): ``lookahead·g(S')``, the regrowth
the remaining stock ``S'`` will yield over the agents' planning horizon. With it, an agent
whose own share counts ``(1 − λ) + λ/N`` aims the stock at the ``S'`` where
``lookahead·g'(S') = N(1 − λ) + λ``, i.e. ``S' = K/2·(1 − (N − (N − 1)λ)/(r·lookahead))``;
the stock survives iff that is at least ``collapse``, which gives :func:`threshold`.

Example:
    >>> from swalab.envs import commons_v0
    >>> env = commons_v0.parallel_env()
    >>> obs, infos = env.reset(seed=0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from swalab._validate import FloatArray
from swalab.envs.dynamics import (
    Dynamics,
    DynamicsEnv,
    Outcome,
    State,
    check_number,
    per_agent,
)

NAME = "commons_v0"


def threshold(
    n_agents: int, growth: float, carrying: float, collapse: float, lookahead: float
) -> float:
    """The λ above which the welfare model's target stock stays at or above ``collapse``.

    ``λ_c = (N − r·L·(1 − 2·collapse/K))/(N − 1)`` (values ≤ 0: even selfish agents keep
    the stock; ≥ 1: no λ does).
    """
    return (n_agents - growth * lookahead * (1 - 2 * collapse / carrying)) / (n_agents - 1)


@dataclass(frozen=True, kw_only=True)
class Commons(Dynamics):
    """Parameters and pure dynamics of ``commons_v0``.

    Attributes:
        carrying: Carrying capacity K.
        growth: Logistic growth rate r.
        initial_stock: Stock at the start (regrows before the first harvest).
        collapse: Stock below which the resource is gone for good.
        lookahead: Steps of regrowth the welfare model values (the agents' planning
            horizon; 0: the scorer sees only this step).
    """

    name: ClassVar[str] = NAME
    unit: ClassVar[str] = "tons"
    per_agent: ClassVar[frozenset[str]] = frozenset({"last_harvest"})

    x_max: float = 6.0
    steps: int = 200
    carrying: float = 100.0
    growth: float = 1.0
    initial_stock: float = 100.0
    collapse: float = 5.0
    lookahead: float = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("carrying", self.carrying, 0, low_open=True)
        check_number("growth", self.growth, 0, 3.0, low_open=True)
        check_number("initial_stock", self.initial_stock, 0, self.carrying)
        check_number("collapse", self.collapse, 0, self.carrying)
        check_number("lookahead", self.lookahead, 0)

    def regrow(self, stock: FloatArray) -> FloatArray:
        """``S + r·S·(1 − S/K)`` (logistic growth for one step)."""
        s = np.asarray(stock, dtype=np.float64)
        result: FloatArray = s + self.growth * s * (1.0 - s / self.carrying)
        return result

    def initial(self, batch: tuple[int, ...] = ()) -> State:
        """The initial stock, alive."""
        alive = self.initial_stock >= self.collapse
        return {
            "t": np.zeros(batch),
            "stock": np.full(batch, float(self.initial_stock if alive else 0.0)),
            "alive": np.full(batch, alive),
            "last_harvest": np.zeros((*batch, self.n_agents)),
        }

    def transition(
        self, state: Mapping[str, np.ndarray], actions: FloatArray
    ) -> tuple[State, Outcome]:
        """Regrow, harvest in proportion to the asks, and collapse below the threshold."""
        a = np.asarray(actions, dtype=np.float64)
        alive = np.asarray(state["alive"], dtype=bool)
        available = np.where(alive, self.regrow(state["stock"]), 0.0)
        asked = a.sum(axis=-1)
        taken_total = np.minimum(asked, available)
        share = taken_total / np.where(asked > 0, asked, 1.0)
        taken = a * share[..., None]
        left = available - taken_total
        alive_next = alive & (left >= self.collapse)
        spare = self.spare(available)
        nxt: State = {
            "t": state["t"] + 1,
            "stock": np.where(alive_next, left, 0.0),
            "alive": alive_next,
            "last_harvest": taken + 0.0 * available[..., None],
        }
        out = Outcome(
            rewards=taken,
            welfare=taken.sum(axis=-1),
            load=asked,
            capacity=spare,
            overloaded=~alive_next | (taken_total > spare + 1e-9),
            extras={
                "stock": available,
                "taken": taken_total,
                "alive": alive_next.astype(np.float64),
            },
        )
        return nxt, out

    def spare(self, available: FloatArray) -> FloatArray:
        """What a stock can give up sustainably: its regrowth or its surplus above ``K/2``."""
        s = np.asarray(available, dtype=np.float64)
        growth = self.growth * s * (1.0 - s / self.carrying)
        result: FloatArray = np.maximum(np.maximum(growth, s - self.carrying / 2), 0.0)
        return result

    def continuation(self, state: Mapping[str, np.ndarray]) -> FloatArray:
        """``lookahead·g(S')``: the regrowth the stock left behind will yield."""
        s = np.asarray(state["stock"], dtype=np.float64)
        result: FloatArray = self.lookahead * self.growth * s * (1.0 - s / self.carrying)
        return np.where(state["alive"], result, 0.0)

    def switch_point(self) -> float:
        """:func:`threshold` of this lake (a steady-state target; see the module docstring)."""
        return threshold(self.n_agents, self.growth, self.carrying, self.collapse, self.lookahead)

    def fair_share(self) -> float:
        """Maximum sustainable yield per agent, ``r·K/4/N``."""
        return self.growth * self.carrying / 4 / self.n_agents

    def board_space(self) -> spaces.Dict:
        """Step, stock left, whether it is alive, and last step's harvests."""
        return spaces.Dict(
            {
                "step": spaces.Discrete(self.steps + 1),
                "stock": spaces.Box(0.0, float(self.carrying), shape=(1,), dtype=np.float64),
                "alive": spaces.Discrete(2),
                "last_harvest": spaces.Box(
                    0.0, float(self.x_max), shape=(self.n_agents,), dtype=np.float64
                ),
            }
        )

    def board(self, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The public board of one state."""
        return {
            "step": int(state["t"]),
            "stock": np.array([min(float(state["stock"]), float(self.carrying))]),
            "alive": int(bool(state["alive"])),
            "last_harvest": np.clip(
                np.asarray(state["last_harvest"], dtype=np.float64), 0.0, float(self.x_max)
            ),
        }

    def describe(self, state: Mapping[str, np.ndarray], agent: int) -> str:
        """The fishery in words."""
        stock = float(self.regrow(state["stock"])) if bool(state["alive"]) else 0.0
        lines = [
            f"Month: {int(state['t']) + 1} of {self.steps}",
            f"Shared lake: {stock:.1f} tons of fish now (at most {self.carrying:g}). After "
            f"fishing, the fish left regrow by {self.growth:g} x stock x (1 - stock/"
            f"{self.carrying:g}) per month. If fewer than {self.collapse:g} tons are left, "
            f"the lake collapses for good.",
            f"{self.n_agents} fishers share it; each may catch up to {self.x_max:g} tons.",
        ]
        if int(state["t"]) > 0:
            last = [round(float(x), 2) for x in np.asarray(state["last_harvest"])]
            lines.append(f"Last month's catches: {per_agent(last, agent)}")
        return "\n".join(lines)


def parallel_env(render_mode: str | None = None, **params: Any) -> DynamicsEnv:
    """Create ``commons_v0`` (PettingZoo convention); every parameter has a default."""
    return DynamicsEnv(Commons(**params), render_mode=render_mode)

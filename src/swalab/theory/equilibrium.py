"""Nash equilibria of the SWA congestion game for any vector of social weights.

The closed form (docs/theory.md §1, §6): given the others, agent i's SWA utility is concave and
piecewise linear in its own demand, rising at ``(1 − λ_i)v_i + λ_i v_i/N > 0`` below
capacity and changing at ``b_i = (1 − λ_i)(v_i − βw_i/N) + λ_i(v_i − βw_i)/N`` above it.
Agents with ``λ_i < λ*_i`` (``b_i > 0``) play ``x_max_i`` whatever the others do; the others
fill the remaining capacity exactly (a continuum of equilibria: the solver returns the one
where they share it with equal demands, water-filled under their caps) or play 0 when the
selfish agents alone already exceed it.

"Proof-checked": the solver does not trust the closed form. Because each utility is
concave and piecewise linear, an agent's exact best response lies in the finite set
{0, kink, x_max}; :func:`is_nash` evaluates every agent's utility there with the same payoff
code the environment uses, and the solver refuses to return a profile that fails it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.theory.payoffs import congestion_payoffs
from swalab.theory.thresholds import per_agent_thresholds

PerAgent = float | Sequence[float] | FloatArray


@dataclass(frozen=True, kw_only=True)
class Game:
    """A validated congestion game with (possibly) heterogeneous agents.

    Attributes:
        n_agents: Number of agents ``N ≥ 2``.
        capacity: Capacity ``C > 0``.
        beta: Severity ``β > 0``.
        x_max: Per-agent demand caps ``x_max_i > 0``.
        weights: Per-agent impacts ``w_i > 0`` on the load.
        values: Per-agent private values ``v_i > 0``.
    """

    n_agents: int
    capacity: float
    beta: float
    x_max: FloatArray
    weights: FloatArray
    values: FloatArray

    @classmethod
    def build(
        cls,
        *,
        n_agents: int,
        capacity: float,
        beta: float,
        x_max: PerAgent,
        weights: PerAgent | None = None,
        values: PerAgent | None = None,
    ) -> Game:
        """Validate the parameters and broadcast per-agent ones to arrays."""
        n = v.integer_at_least("n_agents", n_agents, 2)
        return cls(
            n_agents=n,
            capacity=v.positive("capacity", capacity),
            beta=v.positive("beta", beta),
            x_max=v.per_agent("x_max", x_max, n, 1.0),
            weights=v.per_agent("weights", weights, n, 1.0),
            values=v.per_agent("values", values, n, 1.0),
        )

    def lam_vector(self, lam: PerAgent) -> FloatArray:
        """Broadcast ``lam`` to one validated social weight per agent."""
        return v.per_agent("lam", lam, self.n_agents, 0.0, check="unit_interval")

    def utilities(self, demands: FloatArray, lam: FloatArray) -> FloatArray:
        """Return every agent's SWA utility at a joint action (batch axes allowed)."""
        pay = congestion_payoffs(demands, self.capacity, self.beta, self.weights, self.values)
        result: FloatArray = (1.0 - lam) * pay.rewards + lam * pay.welfare[..., None] / (
            self.n_agents
        )
        return result


@dataclass(frozen=True, kw_only=True)
class Equilibrium:
    """An equilibrium profile and what it yields.

    Attributes:
        demands: One demand per agent.
        load: Total weighted load.
        welfare: Social welfare.
        overloaded: Whether ``load > C``.
        thresholds: Each agent's ``λ*_i``.
        selfish: Which agents are below their threshold (they play ``x_max_i``).
    """

    demands: FloatArray
    load: float
    welfare: float
    overloaded: bool
    thresholds: FloatArray
    selfish: NDArray[np.bool_]


def best_response(game: Game, lam: FloatArray, demands: FloatArray, agent: int) -> float:
    """Return agent ``agent``'s exact best response to the others' demands.

    The utility is concave piecewise linear in the agent's own demand with one kink where
    the load reaches capacity, so its maximum lies in {0, kink, x_max}. Ties go to the
    smallest demand, the same rule the SWI selector uses.
    """
    w = game.weights[agent]
    others = float(np.dot(np.delete(game.weights, agent), np.delete(demands, agent)))
    kink = min(max((game.capacity - others) / w, 0.0), float(game.x_max[agent]))
    points = np.array(sorted({0.0, kink, float(game.x_max[agent])}))
    trial = np.repeat(demands[None, :], points.size, axis=0)
    trial[:, agent] = points
    utils = game.utilities(trial, lam)[:, agent]
    return float(points[int(np.argmax(utils))])


def is_nash(game: Game, lam: FloatArray, demands: FloatArray, tol: float = 1e-9) -> bool:
    """Return whether no agent gains more than ``tol`` by any unilateral deviation."""
    current = game.utilities(demands, lam)
    for i in range(game.n_agents):
        trial = demands.copy()
        trial[i] = best_response(game, lam, demands, i)
        if game.utilities(trial, lam)[i] > current[i] + tol:
            return False
    return True


def _water_fill(caps: FloatArray, weights: FloatArray, budget: float) -> FloatArray:
    """Return demands ``min(cap_i, t)`` whose weighted sum equals ``budget`` (or all caps)."""
    if budget <= 0.0:
        return np.zeros_like(caps)
    if float(np.dot(weights, caps)) <= budget:
        return caps.copy()
    order = np.argsort(caps, kind="stable")
    remaining_w = float(weights.sum())
    spent = 0.0
    level = 0.0
    for idx in order:
        # Raising the common level to caps[idx] costs remaining_w per unit.
        step_cost = (caps[idx] - level) * remaining_w
        if spent + step_cost >= budget:
            level += (budget - spent) / remaining_w
            break
        spent += step_cost
        level = float(caps[idx])
        remaining_w -= float(weights[idx])
    return np.minimum(caps, level)


def solve_equilibrium(
    lam: PerAgent,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: PerAgent,
    weights: PerAgent | None = None,
    values: PerAgent | None = None,
) -> Equilibrium:
    """Return a Nash equilibrium of the SWA game and check it is one.

    Args:
        lam: Social weight for every agent, or one per agent, in [0, 1].
        n_agents: Number of agents ``N ≥ 2``.
        capacity: Capacity ``C > 0``.
        beta: Severity ``β > 0``.
        x_max: Demand cap, one or per agent, ``> 0``.
        weights: Impacts ``w_i > 0`` (default 1).
        values: Private values ``v_i > 0`` (default 1).

    Returns:
        The equilibrium; among the continuum where prosocial agents fill to capacity, the
        one where they share the remaining capacity with equal demands.

    Raises:
        ValueError: On out-of-range input.
        RuntimeError: If the constructed profile fails the best-response check (a bug).
    """
    game = Game.build(
        n_agents=n_agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        weights=weights,
        values=values,
    )
    lam_arr = game.lam_vector(lam)
    thresholds = per_agent_thresholds(
        game.n_agents, game.beta, weights=game.weights, values=game.values
    )
    selfish = lam_arr < thresholds
    demands = np.where(selfish, game.x_max, 0.0)
    selfish_load = float(np.dot(game.weights[selfish], game.x_max[selfish]))
    prosocial = ~selfish
    fill = _water_fill(game.x_max[prosocial], game.weights[prosocial], game.capacity - selfish_load)
    for _ in range(64):
        demands[prosocial] = fill
        load = congestion_payoffs(demands, game.capacity, game.beta, game.weights).load
        if selfish_load > game.capacity or load <= game.capacity:
            break
        # Filling to exactly C can land an ulp above it; step down until the sum is safe.
        fill = np.nextafter(fill, 0.0)
    if not is_nash(game, lam_arr, demands, tol=1e-9 * max(1.0, game.capacity)):
        raise RuntimeError(f"constructed profile {demands} is not a Nash equilibrium")
    pay = congestion_payoffs(demands, game.capacity, game.beta, game.weights, game.values)
    return Equilibrium(
        demands=demands,
        load=float(pay.load),
        welfare=float(pay.welfare),
        overloaded=bool(pay.overloaded),
        thresholds=thresholds,
        selfish=selfish,
    )


def optimal_welfare(
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: PerAgent,
    weights: PerAgent | None = None,
    values: PerAgent | None = None,
) -> float:
    """Return the largest welfare any joint action reaches (the social optimum).

    Welfare is ``Σ v_i x_i − β·max(0, X − C)``: each unit of load from agent i is worth
    ``v_i/w_i`` below capacity and ``v_i/w_i − β`` above it, a fractional knapsack solved
    exactly by filling load in order of decreasing ``v_i/w_i``.
    """
    game = Game.build(
        n_agents=n_agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        weights=weights,
        values=values,
    )
    ratio = game.values / game.weights
    total = 0.0
    room = game.capacity
    for i in np.argsort(-ratio, kind="stable"):
        load_i = float(game.weights[i] * game.x_max[i])
        inside = min(room, load_i)
        room -= inside
        total += ratio[i] * inside + max(ratio[i] - game.beta, 0.0) * (load_i - inside)
    return float(total)


def selfish_welfare(*, n_agents: int, capacity: float, beta: float, x_max: float) -> float:
    """Return welfare at the λ = 0 equilibrium (2 in the reference configuration)."""
    return solve_equilibrium(
        0.0, n_agents=n_agents, capacity=capacity, beta=beta, x_max=x_max
    ).welfare


def stable_welfare(*, n_agents: int, capacity: float, beta: float, x_max: float) -> float:
    """Return welfare at the λ = 1 equilibrium, load filled to capacity (20 in the reference)."""
    return solve_equilibrium(
        1.0, n_agents=n_agents, capacity=capacity, beta=beta, x_max=x_max
    ).welfare


def price_of_anarchy(
    lam: PerAgent,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: PerAgent,
    weights: PerAgent | None = None,
    values: PerAgent | None = None,
) -> float:
    """Return optimal welfare divided by equilibrium welfare (``math.inf`` if the latter ≤ 0).

    Since welfare can turn negative under heavy overload, the ratio is only meaningful
    while the equilibrium welfare is positive; past that the loss is unbounded.
    """
    eq = solve_equilibrium(
        lam,
        n_agents=n_agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        weights=weights,
        values=values,
    )
    best = optimal_welfare(
        n_agents=n_agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        weights=weights,
        values=values,
    )
    return best / eq.welfare if eq.welfare > 0 else math.inf

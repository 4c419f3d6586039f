"""Where the system switches: λ*, λ̃, per-agent thresholds, lock-in and belief stability.

Theorem 1 of the paper gives λ* for the game's true utilities. The decision rule the paper
actually runs (SWI with the normalised ``paper`` scorer) has its own switching point λ̃,
which depends on capacity, safety margin, x_max and β but not on N; both are here, and
:func:`predicted_switch` says which one a scorer follows, so every report puts a measured
transition next to the right prediction. Derivations: ``docs/theory.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from swalab import _validate as v
from swalab import reference as ref
from swalab._validate import FloatArray


def lambda_star(n_agents: int, beta: float, *, weight: float = 1.0, value: float = 1.0) -> float:
    """Return Theorem 1's threshold ``λ* = (N − β·w/v)/(N − 1)``.

    Agents have no incentive to add demand to an overloaded system iff ``λ ≥ λ*``. A value
    ``≤ 0`` means even selfish agents are stable (``β·w/v ≥ N``); a value ``≥ 1`` means no
    social weight below 1 stabilises (``β·w/v ≤ 1``: welfare itself grows with load).
    """
    n = v.integer_at_least("n_agents", n_agents, 2)
    b = v.positive("beta", beta)
    w = v.positive("weight", weight)
    val = v.positive("value", value)
    return (n - b * w / val) / (n - 1)


def per_agent_thresholds(
    n_agents: int,
    beta: float,
    *,
    weights: float | Sequence[float] | FloatArray | None = None,
    values: float | Sequence[float] | FloatArray | None = None,
) -> FloatArray:
    """Return ``λ*_i = (N − β·w_i/v_i)/(N − 1)`` for every agent (heterogeneous agents)."""
    n = v.integer_at_least("n_agents", n_agents, 2)
    b = v.positive("beta", beta)
    w = v.per_agent("weights", weights, n, 1.0)
    val = v.per_agent("values", values, n, 1.0)
    result: FloatArray = (n - b * w / val) / (n - 1)
    return result


def effective_capacity(capacity: float, margin: float) -> float:
    """Return ``C_eff = C − m``, the load the paper scorer aims for (requires ``m < C``)."""
    c = v.positive("capacity", capacity)
    return c - v.in_range("margin", margin, 0.0, c)


def lambda_tilde(capacity: float, beta: float, x_max: float, margin: float = ref.MARGIN) -> float:
    """Return the switching point of the paper scorer, ``(C − m)/((C − m) + x_max·(β − 1))``.

    Why it differs from λ*: the paper scorer normalises the private score by ``x_max`` and
    the group score by ``Ŵ(C_eff) = C − m``. Just above ``C_eff`` the private score rises at
    ``(1 − λ)/x_max`` per unit of demand and the group score falls at ``λ(β − 1)/(C − m)``
    (the centering term has zero slope there), so agents stop adding demand once the second
    outweighs the first. N does not enter. For ``β ≤ 1`` the group score never falls and
    the result is ``math.inf`` (no λ < 1 stops the climb; at ``β = 1`` the answer is 1).
    """
    c_eff = effective_capacity(capacity, margin)
    b = v.positive("beta", beta)
    xm = v.positive("x_max", x_max)
    denom = c_eff + xm * (b - 1.0)
    if b < 1.0:
        return math.inf
    return c_eff / denom


#: Scorers whose switch is Theorem 1's λ* (they score reward and welfare on one scale).
CONSISTENT_SCORERS = ("consistent", "judge")


def predicted_switch(
    scorer: str,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: float,
    margin: float = ref.MARGIN,
    weight: float = 1.0,
    value: float = 1.0,
) -> float:
    """The λ from which SWI agents with ``scorer`` stop adding demand to an overloaded game.

    ``paper`` follows its own normalisation, λ̃ (:func:`lambda_tilde`); ``consistent`` (and
    an LLM judge standing in for its group score) follows Theorem 1, λ* of the agent's
    impact and value (:func:`lambda_star`). In a resource dilemma every agent uses the
    consistent scorer on the dilemma's own welfare model, whose closed form is the
    dilemma's ``switch_point()``.

    Raises:
        ValueError: An unknown scorer (the message lists the known ones).
    """
    if scorer == "paper":
        return lambda_tilde(capacity, beta, x_max, margin)
    if scorer in CONSISTENT_SCORERS:
        return lambda_star(n_agents, beta, weight=weight, value=value)
    raise ValueError(f"scorer={scorer!r} is not known: choose paper or consistent")


def switch_symbol(scorer: str) -> str:
    """How reports name the switch :func:`predicted_switch` gives for ``scorer``: λ̃ or λ*."""
    return "λ̃" if scorer == "paper" else "λ*"


def lockin_load(
    capacity: float, beta: float, margin: float = ref.MARGIN, gamma: float = 0.0
) -> float:
    """Return the predicted load above which the paper scorer's group score is clipped to 0.

    Above it ``Ŵ(X̂) < 0`` for every candidate, the welfare term stops pulling, and agents
    pick ``x_max`` whatever λ < 1 (docs/theory.md §4). Without centering this is
    ``C_eff·β/(β − 1)``; with centering ``γ > 0`` it solves
    ``C_eff + d − β·d − γ·d² = 0`` for the excess ``d``. ``math.inf`` for ``β ≤ 1, γ = 0``.
    """
    c_eff = effective_capacity(capacity, margin)
    b = v.positive("beta", beta)
    g = v.non_negative("gamma", gamma)
    if g == 0.0:
        return math.inf if b <= 1.0 else c_eff * b / (b - 1.0)
    d = (-(b - 1.0) + math.sqrt((b - 1.0) ** 2 + 4.0 * g * c_eff)) / (2.0 * g)
    return c_eff + d


def lockin_belief(
    n_agents: int, capacity: float, beta: float, margin: float = ref.MARGIN, gamma: float = 0.0
) -> float:
    """Return the belief ``μ̂`` at or above which even demand 0 predicts a locked-in load.

    A shared EMA belief that starts here (e.g. ``μ̂₀ = x_max`` in the reference
    configuration) never feels the welfare term: the system stays overloaded for every
    λ < 1, a hysteresis that depends only on where the belief starts.
    """
    n = v.integer_at_least("n_agents", n_agents, 2)
    return lockin_load(capacity, beta, margin, gamma) / (n - 1)


def belief_contraction(alpha: float, n_agents: int) -> float:
    """Return ``1 − α·N``, the factor by which a shared EMA belief's error shrinks each step.

    Above the switching point every agent aims at ``C_eff − (N − 1)·μ̂``, so the belief
    follows ``μ̂' = (1 − αN)·μ̂ + α·C_eff``: a linear map with this slope.
    """
    a = v.open_unit_interval_right("alpha", alpha)
    n = v.integer_at_least("n_agents", n_agents, 2)
    return 1.0 - a * n


def belief_stable(alpha: float, n_agents: int) -> bool:
    """Return whether the shared EMA belief settles, ``|1 − αN| < 1`` i.e. ``α < 2/N``.

    λ above the switching point is necessary but not sufficient for stable operation: at
    ``α ≥ 2/N`` the belief oscillates (a two-cycle at ``αN = 2``) and the load with it.
    """
    return abs(belief_contraction(alpha, n_agents)) < 1.0


def escapes_overload(
    lam: float | Sequence[float] | FloatArray,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: float | Sequence[float] | FloatArray,
    weights: float | Sequence[float] | FloatArray | None = None,
    values: float | Sequence[float] | FloatArray | None = None,
) -> bool:
    """Return the critical-surface test ``Σ_{i: λ_i < λ*_i} w_i·x_max_i ≤ C`` (docs/theory.md §6).

    Agents below their own threshold play ``x_max_i`` whatever the others do; the rest fill
    the load up to capacity. So the equilibrium load exceeds ``C`` exactly when the
    sub-threshold agents alone exceed it.
    """
    n = v.integer_at_least("n_agents", n_agents, 2)
    lam_arr = v.per_agent("lam", lam, n, 0.0, check="unit_interval")
    c = v.positive("capacity", capacity)
    xm = v.per_agent("x_max", x_max, n, 1.0)
    w = v.per_agent("weights", weights, n, 1.0)
    thresholds = per_agent_thresholds(n, beta, weights=w, values=values)
    selfish = lam_arr < thresholds
    return bool(np.sum(w[selfish] * xm[selfish]) <= c)


def surface_terms(
    lam: float | Sequence[float] | FloatArray | None,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: float | Sequence[float] | FloatArray,
    weights: float | Sequence[float] | FloatArray | None = None,
    values: float | Sequence[float] | FloatArray | None = None,
) -> dict[str, object]:
    """Every agent's own threshold and, given λ_i, the critical-surface test in full.

    Returns:
        ``per_agent_thresholds``; with ``lam`` also ``sub_threshold_agents`` (who plays
        ``x_max``), ``sub_threshold_load`` (their ``Σ w_i·x_max_i``) and
        ``escapes_overload``.
    """
    thresholds = per_agent_thresholds(n_agents, beta, weights=weights, values=values)
    out: dict[str, object] = {"per_agent_thresholds": thresholds}
    if lam is None:
        return out
    lam_arr = v.per_agent("lam", lam, n_agents, 0.0, check="unit_interval")
    w = v.per_agent("weights", weights, n_agents, 1.0)
    xm = v.per_agent("x_max", x_max, n_agents, 1.0)
    below = lam_arr < thresholds
    return out | {
        "sub_threshold_agents": np.flatnonzero(below),
        "sub_threshold_load": float(np.sum(w[below] * xm[below])),
        "escapes_overload": escapes_overload(
            lam_arr,
            n_agents=n_agents,
            capacity=capacity,
            beta=beta,
            x_max=x_max,
            weights=weights,
            values=values,
        ),
    }


def thresholds_of(
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    x_max: float,
    margin: float = ref.MARGIN,
    gamma: float = ref.GAMMA,
    alpha: float = ref.ALPHA,
) -> dict[str, float | bool]:
    """Every closed-form threshold of one game: where it switches, locks in, stays stable."""
    return {
        "lambda_star": lambda_star(n_agents, beta),
        "lambda_tilde": lambda_tilde(capacity, beta, x_max, margin),
        "effective_capacity": effective_capacity(capacity, margin),
        "lockin_load": lockin_load(capacity, beta, margin, gamma),
        "lockin_belief": lockin_belief(n_agents, capacity, beta, margin, gamma),
        "belief_contraction": belief_contraction(alpha, n_agents),
        "belief_stable": belief_stable(alpha, n_agents),
    }

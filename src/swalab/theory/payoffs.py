"""Payoffs of the congestion game (paper §3, §5; docs/theory.md §1, §6).

Two layers live here. The lower one (:func:`excess`, :func:`welfare_of_load`,
:func:`congestion_payoffs`) is pure array arithmetic with no checks: the environment's
``step()``, the SWI scorers and the lockstep engine all call it, so what a scorer predicts
for a counterfactual action is computed by the very code that later pays the agents. The
upper layer (:func:`rewards`, :func:`welfare`, :func:`swa_utilities`,
:func:`marginal_incentive`) validates its arguments and is what users call directly.

Heterogeneous agents (docs/theory.md §6) carry an impact ``w_i`` on the load and a private value
``v_i``: ``X = Σ w_i x_i``, ``R_i = v_i x_i − (β/N)·E`` and ``W = Σ R_i = Σ v_i x_i − β·E``.
With ``w = v = 1`` these are the paper's formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from swalab import _validate as v

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Payoffs:
    """Outcome of one joint action.

    Attributes:
        load: Total weighted load ``X`` (shape ``batch``).
        excess: ``max(0, X − C)``.
        rewards: Intrinsic rewards ``R_i`` (shape ``batch + (N,)``).
        welfare: ``W = Σ R_i``.
        overloaded: ``X > C`` (strictly: a load exactly at capacity is safe).
    """

    load: FloatArray
    excess: FloatArray
    rewards: FloatArray
    welfare: FloatArray
    overloaded: NDArray[np.bool_]


def sequential_sum(values: FloatArray) -> FloatArray:
    """Sum over the last axis strictly left to right.

    numpy's ``sum`` adds in a blocked, pairwise order that depends on the array's length and
    layout; a fixed order lets compiled kernels (the lockstep engine) reproduce every load
    and welfare bit for bit.
    """
    result: FloatArray = np.add.accumulate(values, axis=-1)[..., -1]
    return result


def excess(load: ArrayLike, capacity: ArrayLike) -> FloatArray:
    """Return the excess load ``max(0, X − C)`` elementwise."""
    return np.maximum(
        np.asarray(load, dtype=np.float64) - np.asarray(capacity, dtype=np.float64), 0.0
    )


def welfare_of_load(load: ArrayLike, capacity: ArrayLike, beta: ArrayLike) -> FloatArray:
    """Return welfare ``X − β·max(0, X − C)`` of unit-value agents at load ``X``.

    This is the welfare model the paper's agents score candidates with; heterogeneous
    values enter through :func:`congestion_payoffs` instead.
    """
    load_arr = np.asarray(load, dtype=np.float64)
    return load_arr - np.asarray(beta) * excess(load_arr, capacity)


def congestion_payoffs(
    demands: ArrayLike,
    capacity: ArrayLike,
    beta: ArrayLike,
    weights: ArrayLike | None = None,
    values: ArrayLike | None = None,
) -> Payoffs:
    """Pay one joint action, unchecked (callers validate at their boundary).

    Args:
        demands: Demands ``x`` with agents on the last axis, shape ``batch + (N,)``.
        capacity: Capacity ``C``, broadcastable to ``batch``.
        beta: Severity ``β``, broadcastable to ``batch``.
        weights: Impacts ``w_i`` on the load (default 1), broadcastable to ``demands``.
        values: Private values ``v_i`` (default 1), broadcastable to ``demands``.

    Returns:
        The :class:`Payoffs` of that joint action.
    """
    x = np.asarray(demands, dtype=np.float64)
    n = x.shape[-1]
    load = sequential_sum(x if weights is None else x * np.asarray(weights, dtype=np.float64))
    exc = excess(load, capacity)
    beta_arr = np.asarray(beta, dtype=np.float64)
    penalty = (beta_arr / n) * exc
    gain = x if values is None else x * np.asarray(values, dtype=np.float64)
    rew = gain - penalty[..., None]
    wel = sequential_sum(gain) - beta_arr * exc
    return Payoffs(
        load=load, excess=exc, rewards=rew, welfare=wel, overloaded=load > np.asarray(capacity)
    )


def _checked_demands(demands: ArrayLike) -> FloatArray:
    x = np.asarray(demands, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"demands has shape {x.shape}: must be a list of at least 2 numbers")
    bad = np.flatnonzero(~np.isfinite(x) | (x < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"demands[{i}]={float(x[i])!r} is out of range: must be a finite number >= 0"
        )
    return x


def _game(
    demands: ArrayLike,
    capacity: float,
    beta: float,
    weights: float | Sequence[float] | FloatArray | None,
    values: float | Sequence[float] | FloatArray | None,
) -> Payoffs:
    x = _checked_demands(demands)
    n = x.size
    return congestion_payoffs(
        x,
        v.positive("capacity", capacity),
        v.positive("beta", beta),
        v.per_agent("weights", weights, n, 1.0),
        v.per_agent("values", values, n, 1.0),
    )


def rewards(
    demands: ArrayLike,
    *,
    capacity: float,
    beta: float,
    weights: float | Sequence[float] | FloatArray | None = None,
    values: float | Sequence[float] | FloatArray | None = None,
) -> FloatArray:
    """Return each agent's intrinsic reward ``R_i = v_i x_i − (β/N)·E``."""
    return _game(demands, capacity, beta, weights, values).rewards


def welfare(
    demands: ArrayLike,
    *,
    capacity: float,
    beta: float,
    weights: float | Sequence[float] | FloatArray | None = None,
    values: float | Sequence[float] | FloatArray | None = None,
) -> float:
    """Return social welfare ``W = Σ R_i``."""
    return float(_game(demands, capacity, beta, weights, values).welfare)


def swa_utilities(
    demands: ArrayLike,
    lam: float | Sequence[float] | FloatArray,
    *,
    capacity: float,
    beta: float,
    weights: float | Sequence[float] | FloatArray | None = None,
    values: float | Sequence[float] | FloatArray | None = None,
) -> FloatArray:
    """Return each agent's SWA utility ``U_i = (1 − λ_i)·R_i + λ_i·W/N`` (paper Def. 1).

    Args:
        demands: One demand per agent.
        lam: Social weight, one for all agents or one per agent, each in [0, 1].
        capacity: Capacity ``C > 0``.
        beta: Severity ``β > 0``.
        weights: Impacts ``w_i > 0`` (default 1).
        values: Private values ``v_i > 0`` (default 1).
    """
    pay = _game(demands, capacity, beta, weights, values)
    n = pay.rewards.shape[-1]
    lam_arr = v.per_agent("lam", lam, n, 0.0, check="unit_interval")
    result: FloatArray = (1.0 - lam_arr) * pay.rewards + lam_arr * pay.welfare / n
    return result


def marginal_incentive(
    n_agents: int,
    beta: float,
    lam: float,
    *,
    weight: float = 1.0,
    value: float = 1.0,
) -> float:
    """Return ``∂U_i/∂x_i`` while overloaded (paper eq. 12-13, docs/theory.md §1).

    For unit weight and value this is ``(1 − λ)(1 − β/N) + λ(1 − β)/N``; with impact ``w``
    and value ``v`` it is ``(1 − λ)(v − βw/N) + λ(v − βw)/N``. A positive value means an
    agent gains by adding demand to an overloaded system.
    """
    n = v.integer_at_least("n_agents", n_agents, 2)
    b = v.positive("beta", beta)
    lam_f = v.unit_interval("lam", lam)
    w = v.positive("weight", weight)
    val = v.positive("value", value)
    return (1.0 - lam_f) * (val - b * w / n) + lam_f * (val - b * w) / n

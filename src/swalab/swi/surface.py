"""The critical surface of mixed populations: k sub-threshold agents among prosocial ones.

Game theory (``docs/theory.md``, heterogeneous agents) says the system escapes overload iff
the sub-threshold agents alone fit, ``k·x_max ≤ C``. The SWI rule reaches less than that:
every agent predicts the others' load as ``(N − 1)·μ̂`` from one shared mean belief, which
in a mixed population is wrong by ``k·(x_max − x)/N`` (the selfish agents pull the mean up
less than they load the system).
The prosocial agents settle where ``x + (N − 1)·μ = C − m``, a load of ``C − m`` plus that
error, so the rule escapes only while the margin covers it. :func:`swi_fixed_point_load`
gives that load in closed form; :func:`critical_surface` measures the surface by simulation
beside both predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from swalab import _validate as v
from swalab import theory
from swalab._validate import FloatArray
from swalab.swi.config import SimulationConfig
from swalab.swi.engine import LockstepBatch, run_lockstep

Table = dict[str, np.ndarray]


def swi_fixed_point_load(
    n_agents: int, capacity: float, margin: float, x_max: float, selfish: int
) -> float:
    """The load where the SWI rule comes to rest with ``selfish`` agents at ``x_max``.

    The others aim at ``C − m`` through one shared mean belief (``w = v = 1``). Each
    prosocial agent plays ``x`` with ``x + (N − 1)·μ = C − m`` and ``μ`` the true mean
    demand ``(k·x_max + (N − k)·x)/N``; ``x`` is clipped to ``[0, x_max]``.
    """
    n = v.integer_at_least("n_agents", n_agents, 2)
    k = v.integer_at_least("selfish", selfish, 0)
    if k > n:
        raise ValueError(f"selfish={k} exceeds n_agents={n}")
    c_eff = theory.effective_capacity(capacity, margin)
    xm = v.positive("x_max", x_max)
    p = n - k
    if p == 0:
        return float(k * xm)
    x = (c_eff - (n - 1) * k * xm / n) / (1 + (n - 1) * p / n)
    return float(k * xm + p * np.clip(x, 0.0, xm))


def critical_surface(
    base: SimulationConfig,
    lam_low: Sequence[float] | FloatArray,
    *,
    lam_high: float = 1.0,
    seeds: int = 5,
    ks: Sequence[int] | None = None,
) -> Table:
    """Simulate every (k, λ_low): k agents at ``λ_low``, the others at ``lam_high``.

    Args:
        base: Every other parameter (homogeneous ``x_max``, no per-agent impacts).
        lam_low: Social weights of the low group (the diagram's y-axis).
        lam_high: Social weight of the rest.
        seeds: Seeds per cell.
        ks: Sizes of the low group (default 0, 1, …, N).

    Returns:
        One row per (k, λ_low): ``k, fraction, lam_low, overload_rate, mean_welfare,
        mean_load, sub_load`` (k·x_max when the low group is below its switch, else 0),
        ``nash_overloaded`` (the game-theoretic surface, λ*), ``swi_load`` and
        ``swi_overloaded`` (the SWI rule's fixed point, with its scorer's switch).
    """
    if not isinstance(base.x_max, int | float) or base.weights or base.values:
        raise ValueError("critical_surface takes a homogeneous base: one x_max, no weights/values")
    n, cap, x_max = base.n_agents, base.capacity, float(base.x_max)
    lows = np.array([v.unit_interval(f"lam_low[{i}]", x) for i, x in enumerate(lam_low)])
    high = v.unit_interval("lam_high", lam_high)
    n_seeds = v.integer_at_least("seeds", seeds, 1)
    star = theory.lambda_star(n, base.beta)
    switch = theory.predicted_switch(
        base.scorer, n_agents=n, capacity=cap, beta=base.beta, x_max=x_max, margin=base.margin
    )
    sizes = list(range(n + 1)) if ks is None else list(ks)
    for k in sizes:
        if not 0 <= v.integer_at_least("ks", k, 0) <= n:
            raise ValueError(f"ks: {k} is out of range: must lie in 0..{n}")
    if high < switch:
        raise ValueError(
            f"lam_high={high:g} is below the scorer's switch {switch:.3g}: the 'prosocial' "
            "group would not be prosocial"
        )
    keys = [(k, lo) for k in sizes for lo in lows]
    lams = [[lo] * k + [high] * (n - k) for k, lo in keys]
    res = run_lockstep(LockstepBatch.from_config(replace(base), lams, range(n_seeds)))
    shape = (len(keys), n_seeds)
    k_arr = np.array([k for k, _ in keys], dtype=np.int64)
    lo_arr = np.array([lo for _, lo in keys])
    selfish_game = np.where(lo_arr < star, k_arr, 0)
    selfish_rule = np.where(lo_arr < switch, k_arr, 0)
    swi_load = np.array(
        [swi_fixed_point_load(n, cap, base.margin, x_max, int(s)) for s in selfish_rule]
    )
    return {
        "k": k_arr,
        "fraction": k_arr / n,
        "lam_low": lo_arr,
        "overload_rate": res.overload_rate.reshape(shape).mean(axis=1),
        "mean_welfare": res.mean_welfare.reshape(shape).mean(axis=1),
        "mean_load": res.mean_load.reshape(shape).mean(axis=1),
        "sub_load": selfish_game * x_max,
        "nash_overloaded": selfish_game * x_max > cap,
        "swi_load": swi_load,
        "swi_overloaded": swi_load > cap,
    }

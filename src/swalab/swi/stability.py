"""Two ways the paper's belief fails beyond λ: an unstable EMA, and a belief that starts high.

Both are closed forms (``docs/theory.md``) checked here by simulation over a whole plane:

* **Belief stability**: above the switch every agent aims at ``C_eff − (N − 1)·μ̂``, so the
  shared EMA follows ``μ̂' = (1 − αN)·μ̂ + α·C_eff`` and settles only if ``α < 2/N``.
  :func:`belief_stability_map` simulates a (α, N) plane at a λ far above the switch.
* **Lock-in**: the paper scorer's group score is clipped at 0 once the predicted welfare is
  negative, so from a belief at or above ``lockin_belief`` even demand 0 looks hopeless and
  the system stays overloaded for every λ < 1. :func:`lockin_map` simulates a (μ̂₀, λ)
  plane.
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


def belief_stability_map(
    alphas: Sequence[float] | FloatArray,
    n_agents: Sequence[int],
    *,
    base: SimulationConfig | None = None,
    lam: float = 0.95,
    capacity_per_agent: float = 4.0,
    seeds: int = 5,
) -> Table:
    """Simulate every (α, N) with ``C = capacity_per_agent·N`` at one λ above the switch.

    Args:
        alphas: EMA smoothing values.
        n_agents: Population sizes.
        base: Every other parameter (default: paper scorer, grid candidates, β = 3, m = 2,
            T = 60: the setting of the measurements in ``docs/theory.md``).
        lam: Social weight of every agent (well above the switch, so only the belief can
            keep the system overloaded).
        capacity_per_agent: ``C/N``.
        seeds: Seeds per cell.

    Returns:
        One row per (α, N): ``alpha, n_agents, alpha_n, overload_rate`` (all steps),
        ``late_overload_rate`` (second half of the episode) and ``predicted_stable``
        (``α < 2/N``).
    """
    cfg = base or SimulationConfig(beta=3.0, margin=2.0, steps=60, candidates="grid")
    alpha_arr = np.array(
        [v.open_unit_interval_right(f"alphas[{i}]", a) for i, a in enumerate(alphas)]
    )
    ns = [v.integer_at_least(f"n_agents[{i}]", n, 2) for i, n in enumerate(n_agents)]
    if alpha_arr.size == 0 or not ns:
        raise ValueError("alphas and n_agents must each hold at least one value")
    per_n = v.positive("capacity_per_agent", capacity_per_agent)
    rows: dict[str, list[float]] = {
        k: [] for k in ("alpha", "n_agents", "overload_rate", "late_overload_rate")
    }
    n_seeds = v.integer_at_least("seeds", seeds, 1)
    for n in ns:
        for alpha in alpha_arr:
            config = replace(cfg, n_agents=n, capacity=per_n * n, alpha=float(alpha))
            over_rate, late = _run(config, [lam], n_seeds)
            rows["alpha"].append(float(alpha))
            rows["n_agents"].append(n)
            rows["overload_rate"].append(float(over_rate[0]))
            rows["late_overload_rate"].append(float(late[0]))
    table = {k: np.asarray(x) for k, x in rows.items()}
    table["n_agents"] = table["n_agents"].astype(np.int64)
    table["alpha_n"] = table["alpha"] * table["n_agents"]
    table["predicted_stable"] = table["alpha"] < 2.0 / table["n_agents"]
    return table


def lockin_map(
    initial_beliefs: Sequence[float] | FloatArray,
    lams: Sequence[float] | FloatArray,
    *,
    base: SimulationConfig | None = None,
    seeds: int = 5,
) -> Table:
    """Simulate every (μ̂₀, λ) of ``base`` (default: the reference configuration, T = 40).

    Returns:
        One row per (μ̂₀, λ): ``initial_belief, lam, overload_rate, late_overload_rate``
        and ``predicted_locked`` (paper scorer: ``μ̂₀ ≥ lockin_belief`` and ``λ < 1``, or
        ``λ`` below the switch λ̃; consistent scorer: ``λ < λ*``).
    """
    cfg = base or SimulationConfig(steps=40)
    beliefs = np.array(
        [v.non_negative(f"initial_beliefs[{i}]", b) for i, b in enumerate(initial_beliefs)]
    )
    lam_arr = np.array([v.unit_interval(f"lams[{i}]", x) for i, x in enumerate(lams)])
    n_seeds = v.integer_at_least("seeds", seeds, 1)
    if beliefs.size == 0 or lam_arr.size == 0:
        raise ValueError("initial_beliefs and lams must each hold at least one value")
    runs = [_run(replace(cfg, initial_belief=float(b)), lam_arr.tolist(), n_seeds) for b in beliefs]
    x_max = float(np.max(cfg.x_max))
    switch = theory.predicted_switch(
        cfg.scorer,
        n_agents=cfg.n_agents,
        capacity=cfg.capacity,
        beta=cfg.beta,
        x_max=x_max,
        margin=cfg.margin,
    )
    locked_from = np.inf  # the consistent scorer's group score is never clipped
    if cfg.scorer == "paper":
        locked_from = theory.lockin_belief(
            cfg.n_agents, cfg.capacity, cfg.beta, cfg.margin, cfg.gamma
        )
    b_col = np.repeat(beliefs, lam_arr.size)
    l_col = np.tile(lam_arr, beliefs.size)
    return {
        "initial_belief": b_col,
        "lam": l_col,
        "overload_rate": np.concatenate([r[0] for r in runs]),
        "late_overload_rate": np.concatenate([r[1] for r in runs]),
        "predicted_locked": (l_col < switch) | ((b_col >= locked_from) & (l_col < 1.0)),
        "lockin_belief": np.full(b_col.size, locked_from),
        "switch": np.full(b_col.size, switch),
    }


def _run(config: SimulationConfig, lams: list[float], seeds: int) -> tuple[FloatArray, FloatArray]:
    """Per λ: the mean overload rate over all steps and over the second half."""
    res = run_lockstep(LockstepBatch.from_config(config, lams, range(seeds)), record=True)
    assert res.loads is not None
    over = res.loads > config.capacity
    late = over[:, over.shape[1] // 2 :].mean(axis=1)
    shape = (len(lams), seeds)
    return res.overload_rate.reshape(shape).mean(axis=1), late.reshape(shape).mean(axis=1)

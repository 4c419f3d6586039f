"""Phase diagrams: overload rate and welfare over a (λ, β) grid, optionally several N.

Every (N, β, λ, seed) episode of a diagram runs in the lockstep engine, one batch per N,
and seeds are averaged into one row per cell. The table carries λ*(β) and λ̃(β) beside the
measurements so the switching λ of each β column can be put next to both predictions.
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


def phase_diagram(
    base: SimulationConfig,
    lams: Sequence[float] | FloatArray,
    betas: Sequence[float] | FloatArray,
    *,
    seeds: int = 100,
    n_agents: Sequence[int] | None = None,
) -> Table:
    """Return one row per (N, β, λ) with seed-averaged metrics and both thresholds.

    Args:
        base: Every other parameter. For an N other than ``base.n_agents`` the capacity is
            scaled to keep ``C/N`` (the paper's per-agent share) fixed.
        lams: Social weights (columns of the diagram).
        betas: Severities (rows).
        seeds: Seeds per cell (0, 1, …).
        n_agents: Population sizes (default: ``base.n_agents`` only).

    Returns:
        Columns ``n_agents, beta, lam, capacity, overload_rate, overload_rate_sd,
        mean_welfare, mean_welfare_sd, mean_load, lambda_star, lambda_tilde, seeds``.
    """
    lam_arr = np.array([v.unit_interval(f"lam[{i}]", x) for i, x in enumerate(lams)])
    beta_arr = np.array([v.positive(f"beta[{i}]", x) for i, x in enumerate(betas)])
    if lam_arr.size == 0 or beta_arr.size == 0:
        raise ValueError("lam and beta grids must each hold at least one value")
    n_seeds = v.integer_at_least("seeds", seeds, 1)
    sizes = [base.n_agents] if n_agents is None else list(n_agents)
    share = base.capacity / base.n_agents
    parts: list[Table] = []
    for i, n in enumerate(sizes):
        n = v.integer_at_least(f"n_agents[{i}]", n, 2)
        config = replace(base, n_agents=n, capacity=share * n)
        x_max = float(np.max(config.x_max))  # λ̃ of the largest cap when caps differ
        batch = LockstepBatch.from_config(config, list(lam_arr), range(n_seeds), list(beta_arr))
        res = run_lockstep(batch)
        shape = (beta_arr.size, lam_arr.size, n_seeds)
        over = res.overload_rate.reshape(shape)
        welfare = res.mean_welfare.reshape(shape)
        b_grid, l_grid = np.meshgrid(beta_arr, lam_arr, indexing="ij")
        parts.append(
            {
                "n_agents": np.full(b_grid.size, n, dtype=np.int64),
                "beta": b_grid.ravel(),
                "lam": l_grid.ravel(),
                "capacity": np.full(b_grid.size, config.capacity),
                "overload_rate": over.mean(axis=-1).ravel(),
                "overload_rate_sd": over.std(axis=-1).ravel(),
                "mean_welfare": welfare.mean(axis=-1).ravel(),
                "mean_welfare_sd": welfare.std(axis=-1).ravel(),
                "mean_load": res.mean_load.reshape(shape).mean(axis=-1).ravel(),
                "lambda_star": np.array([theory.lambda_star(n, b) for b in b_grid.ravel()]),
                "lambda_tilde": np.array(
                    [
                        theory.lambda_tilde(config.capacity, b, x_max, config.margin)
                        for b in b_grid.ravel()
                    ]
                ),
                "seeds": np.full(b_grid.size, n_seeds, dtype=np.int64),
            }
        )
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

"""The critical surface of mixed populations: k sub-threshold agents among prosocial ones.

Game theory (SPEC §3) says the system escapes overload iff the sub-threshold agents alone
fit, ``k·x_max ≤ C``. The SWI rule reaches less than that: every agent predicts the others'
load as ``(N − 1)·μ̂`` from one shared mean belief, which in a mixed population is wrong by
``k·(x_max − x)/N`` (the selfish agents pull the mean up less than they load the system).
The prosocial agents settle where ``x + (N − 1)·μ = C − m``, a load of ``C − m`` plus that
error, so the rule escapes only while the margin covers it. :func:`swi_fixed_point_load`
gives that load in closed form; :func:`critical_surface` measures the surface by simulation
beside both predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from swalab import _validate as v
from swalab import theory
from swalab._plotting import save_png_svg
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
) -> Table:
    """Simulate every (k, λ_low): k agents at ``λ_low``, the others at ``lam_high``.

    Args:
        base: Every other parameter (homogeneous ``x_max``, no per-agent impacts).
        lam_low: Social weights of the low group (the diagram's y-axis).
        lam_high: Social weight of the rest.
        seeds: Seeds per cell.

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
    switch = (
        star
        if base.scorer == "consistent"
        else theory.lambda_tilde(cap, base.beta, x_max, base.margin)
    )
    if high < switch:
        raise ValueError(
            f"lam_high={high:g} is below the scorer's switch {switch:.3g}: the 'prosocial' "
            "group would not be prosocial"
        )
    keys = [(k, lo) for k in range(n + 1) for lo in lows]
    lams = [[lo] * k + [high] * (n - k) for k, lo in keys]
    res = run_lockstep(LockstepBatch.from_config(replace(base), lams, range(n_seeds)))
    shape = (len(keys), n_seeds)
    k_arr = np.array([k for k, _ in keys], dtype=np.int64)
    lo_arr = np.array([lo for _, lo in keys])
    selfish_game = np.where(lo_arr < star, k_arr, 0)
    selfish_rule = np.where(lo_arr < switch, k_arr, 0)
    swi_load = np.array([swi_fixed_point_load(n, cap, base.margin, x_max, int(s))
                         for s in selfish_rule])  # fmt: skip
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


def interior(table: Table, column: str) -> np.ndarray:
    """Cells away from the predicted boundary.

    A cell is away when its prediction ``column`` equals that of every grid neighbour
    (k ± 1, one λ step either side).
    """
    ks = np.unique(table["k"])
    lows = np.unique(table["lam_low"])
    grid = np.zeros((ks.size, lows.size), dtype=bool)
    ki = np.searchsorted(ks, table["k"])
    li = np.searchsorted(lows, table["lam_low"])
    grid[ki, li] = table[column]
    padded = np.pad(grid, 1, mode="edge")
    same = np.ones_like(grid)
    for dk, dl in ((0, 1), (2, 1), (1, 0), (1, 2)):
        same &= padded[dk : dk + ks.size, dl : dl + lows.size] == grid
    return same[ki, li]


def agreement(table: Table, column: str) -> tuple[float, int]:
    """Share of interior cells where the simulation (overload rate > 0.5) matches ``column``."""
    away = interior(table, column)
    hits = (table["overload_rate"] > 0.5) == table[column]
    n = int(away.sum())
    return (float(hits[away].mean()) if n else float("nan")), n


def plot_surface(table: Table, out_dir: Path, *, title: str, stem: str = "surface") -> list[Path]:
    """Overload rate over (share of low-λ agents, their λ) with both predicted boundaries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from swalab.swi.phase import _edges

    fractions = np.unique(table["fraction"])
    lows = np.unique(table["lam_low"])
    z = np.full((lows.size, fractions.size), np.nan)
    z[np.searchsorted(lows, table["lam_low"]), np.searchsorted(fractions, table["fraction"])] = (
        table["overload_rate"]
    )
    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    im = ax.pcolormesh(_edges(fractions), _edges(lows), z, cmap="magma", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="overload rate (simulated)")
    for column, color, style, label in (
        ("nash_overloaded", "cyan", "-", "game theory: k·x_max > C and λ < λ*"),
        ("swi_overloaded", "limegreen", "--", "SWI fixed point: load > C"),
    ):
        pred = np.zeros_like(z)
        pred[np.searchsorted(lows, table["lam_low"]),
             np.searchsorted(fractions, table["fraction"])] = table[column]  # fmt: skip
        ax.contour(fractions, lows, pred, levels=[0.5], colors=color, linestyles=style,
                   linewidths=2)  # fmt: skip
        ax.plot([], [], color=color, ls=style, lw=2, label=label)
    ax.set_xlabel("share of agents at λ_low (the rest at λ_high)")
    ax.set_ylabel("λ_low")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7.5, framealpha=0.8)
    return save_png_svg(fig, out_dir, stem, dpi=120)

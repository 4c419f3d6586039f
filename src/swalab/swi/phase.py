"""Phase diagrams: overload rate and welfare over a (λ, β) grid, optionally several N.

Every (N, β, λ, seed) episode of a diagram runs in the lockstep engine, one batch per N,
and seeds are averaged into one row per cell. The table carries λ*(β) and λ̃(β) beside the
measurements so the switching λ of each β column can be put next to both predictions.
"""

from __future__ import annotations

import math
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


def switch_points(table: Table, threshold: float = 0.5) -> Table:
    """Return, per (N, β), the smallest λ from which the overload rate stays below ``threshold``.

    NaN where the column never settles below it (no transition on this grid).
    """
    rows: dict[str, list[float]] = {"n_agents": [], "beta": [], "lambda_c": []}
    rows.update({"lambda_star": [], "lambda_tilde": []})
    keys = sorted(set(zip(table["n_agents"].tolist(), table["beta"].tolist(), strict=True)))
    for n, beta in keys:
        sel = (table["n_agents"] == n) & (table["beta"] == beta)
        order = np.argsort(table["lam"][sel])
        lam = table["lam"][sel][order]
        below = table["overload_rate"][sel][order] < threshold
        # Index of the first λ after the last one at or above the threshold.
        start = lam.size - int(np.argmax(~below[::-1])) if not below.all() else 0
        rows["n_agents"].append(n)
        rows["beta"].append(beta)
        rows["lambda_c"].append(float(lam[start]) if start < lam.size else math.nan)
        rows["lambda_star"].append(float(table["lambda_star"][sel][0]))
        rows["lambda_tilde"].append(float(table["lambda_tilde"][sel][0]))
    return {k: np.asarray(x) for k, x in rows.items()}


def write_table(table: Table, path: Path) -> Path:
    """Write ``table`` as Parquet atomically (temp file, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(table), tmp)
    tmp.replace(path)
    return path


def _edges(centers: FloatArray) -> FloatArray:
    """Cell edges around sorted centres (midpoints; half a gap beyond each end)."""
    if centers.size == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    mid = (centers[1:] + centers[:-1]) / 2
    result: FloatArray = np.concatenate(
        [[2 * centers[0] - mid[0]], mid, [2 * centers[-1] - mid[-1]]]
    )
    return result


def plot_phase(
    table: Table, out_dir: Path, stem: str = "phase", title: str | None = None
) -> list[Path]:
    """Draw overload-rate and welfare heatmaps per N with λ*(β) and λ̃(β) overlaid.

    Cells are drawn around each (λ, β) measured, so uneven grids are placed truly.

    Args:
        table: Rows with ``n_agents, beta, lam, overload_rate, mean_welfare, lambda_tilde``.
        out_dir: Where the files go.
        stem: File name without suffix.
        title: A heading over the panels (e.g. the system drawn).

    Returns:
        The PNG and SVG files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(set(table["n_agents"].tolist()))
    fig, axes = plt.subplots(
        len(sizes), 2, figsize=(11, 4.2 * len(sizes)), squeeze=False, constrained_layout=True
    )
    for row, n in enumerate(sizes):
        sel = table["n_agents"] == n
        lams = np.unique(table["lam"][sel])
        betas = np.unique(table["beta"][sel])
        grid: dict[str, FloatArray] = {}
        for key in ("overload_rate", "mean_welfare"):
            z = np.full((betas.size, lams.size), np.nan)
            bi = np.searchsorted(betas, table["beta"][sel])
            li = np.searchsorted(lams, table["lam"][sel])
            z[bi, li] = table[key][sel]
            grid[key] = z
        star = np.array([theory.lambda_star(n, b) for b in betas])
        tilde = table["lambda_tilde"][sel][np.searchsorted(table["beta"][sel], betas)]
        panels = (("overload_rate", "overload rate", "magma", 0, 1), ("mean_welfare",
                  "mean welfare", "viridis", None, None))  # fmt: skip
        for col, (key, label, cmap, vmin, vmax) in enumerate(panels):
            ax = axes[row][col]
            im = ax.pcolormesh(_edges(lams), _edges(betas), grid[key], cmap=cmap, vmin=vmin,
                               vmax=vmax, shading="flat")  # fmt: skip
            ax.plot(np.clip(star, 0, 1), betas, color="cyan", lw=2, label="λ* (Theorem 1)")
            ax.plot(np.clip(tilde, 0, 1), betas, color="limegreen", lw=2, ls="--",
                    label="λ̃ (paper scorer)")  # fmt: skip
            ax.set_xlim(_edges(lams)[0], _edges(lams)[-1])
            ax.set_ylim(_edges(betas)[0], _edges(betas)[-1])
            ax.set_xlabel("social weight λ")
            ax.set_ylabel("congestion severity β")
            ax.set_title(f"{label}, N = {n}")
            fig.colorbar(im, ax=ax, label=label)
            ax.legend(loc="lower left", fontsize=8, framealpha=0.6)
    if title is not None:
        fig.suptitle(title)
    return save_png_svg(fig, out_dir, stem, dpi=110)

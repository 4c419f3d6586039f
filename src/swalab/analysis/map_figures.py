"""The maps' figures: phase heatmaps, the critical surface, stability and lock-in planes, live runs.

Each draws a table of :mod:`swalab.analysis.maps` as PNG and SVG, with the closed-form
prediction over the simulated values; legends sit under the axes, where they hide no data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from swalab import theory
from swalab._plotting import save_png_svg
from swalab._validate import FloatArray

Table = dict[str, np.ndarray]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _legend_below(ax: Any) -> None:
    """A legend under the axes, where it hides no data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7.5, frameon=False)


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
    plt = _pyplot()

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
        panels = (
            ("overload_rate", "overload rate", "magma", 0, 1),
            ("mean_welfare", "mean welfare", "viridis", None, None),
        )
        for col, (key, label, cmap, vmin, vmax) in enumerate(panels):
            ax = axes[row][col]
            im = ax.pcolormesh(
                _edges(lams),
                _edges(betas),
                grid[key],
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                shading="flat",
            )
            ax.plot(np.clip(star, 0, 1), betas, color="cyan", lw=2, label="λ* (Theorem 1)")
            ax.plot(
                np.clip(tilde, 0, 1),
                betas,
                color="limegreen",
                lw=2,
                ls="--",
                label="λ̃ (paper scorer)",
            )
            ax.set_xlim(_edges(lams)[0], _edges(lams)[-1])
            ax.set_ylim(_edges(betas)[0], _edges(betas)[-1])
            ax.set_xlabel("social weight λ")
            ax.set_ylabel("congestion severity β")
            ax.set_title(f"{label}, N = {n}")
            fig.colorbar(im, ax=ax, label=label)
            _legend_below(ax)
    if title is not None:
        fig.suptitle(title)
    return save_png_svg(fig, out_dir, stem, dpi=110)


def plot_surface(table: Table, out_dir: Path, *, title: str, stem: str = "surface") -> list[Path]:
    """Overload rate over (share of low-λ agents, their λ) with both predicted boundaries."""
    plt = _pyplot()

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
        pred[
            np.searchsorted(lows, table["lam_low"]), np.searchsorted(fractions, table["fraction"])
        ] = table[column]
        ax.contour(
            fractions, lows, pred, levels=[0.5], colors=color, linestyles=style, linewidths=2
        )
        ax.plot([], [], color=color, ls=style, lw=2, label=label)
    ax.set_xlabel("share of agents at λ_low (the rest at λ_high)")
    ax.set_ylabel("λ_low")
    ax.set_title(title, fontsize=9)
    _legend_below(ax)
    return save_png_svg(fig, out_dir, stem, dpi=120)


def plot_plane(
    table: Table,
    x: str,
    y: str,
    predicted: str,
    out_dir: Path,
    *,
    stem: str,
    xlabel: str,
    ylabel: str,
    title: str,
    prediction: str,
    curve: tuple[FloatArray, FloatArray] | None = None,
) -> list[Path]:
    """Late overload rate over (x, y) with the closed-form boundary (and an exact curve)."""
    plt = _pyplot()

    xs, ys = np.unique(table[x]), np.unique(table[y])
    xi, yi = np.searchsorted(xs, table[x]), np.searchsorted(ys, table[y])
    z = np.full((ys.size, xs.size), np.nan)
    z[yi, xi] = table["late_overload_rate"]
    pred = np.zeros_like(z)
    pred[yi, xi] = table[predicted]
    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    im = ax.pcolormesh(
        _edges(xs.astype(float)), _edges(ys.astype(float)), z, cmap="magma", vmin=0, vmax=1
    )
    fig.colorbar(im, ax=ax, label="overload rate, second half (simulated)")
    if xs.size > 1 and ys.size > 1:
        ax.contour(xs, ys, pred, levels=[0.5], colors="cyan", linewidths=2)
    ax.plot([], [], color="cyan", lw=2, label=prediction)
    if curve is not None:
        ax.plot(*curve, color="limegreen", ls="--", lw=1.5, label="exact boundary")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    _legend_below(ax)
    return save_png_svg(fig, out_dir, stem, dpi=120)


def plot_live(table: Table, out_dir: Path, refill: str) -> list[Path]:
    """Measured and predicted 200s and 429s per step, one panel per λ."""
    plt = _pyplot()

    lams = np.unique(table["lam"])
    fig, axes = plt.subplots(
        1, lams.size, figsize=(5.2 * lams.size, 3.6), squeeze=False, constrained_layout=True
    )
    for ax, lam in zip(axes[0], lams, strict=True):
        at = table["lam"] == lam
        t = table["step"][at]
        for name, color in (("ok", "tab:green"), ("rejected", "tab:red")):
            label = "200" if name == "ok" else "429"
            ax.plot(t, table[f"{name}_model"][at], color=color, lw=1.6, label=f"{label} model")
            ax.plot(
                t,
                table[f"{name}_measured"][at],
                color=color,
                ls="none",
                marker="o",
                ms=4,
                label=f"{label} measured",
            )
        locked = t[table["locked_measured"][at] > 0.5]
        if locked.size:
            ax.plot(locked, np.zeros(locked.size), "k|", ms=12, label="locked out")
        ax.set_xlabel("step")
        ax.set_ylabel("calls")
        ax.set_title(f"λ = {lam:g} ({refill} refill)")
        _legend_below(ax)
    return save_png_svg(fig, out_dir, "live", dpi=110)

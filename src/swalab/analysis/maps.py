"""The maps (phase, surface, stability, lock-in), live runs and benchmarks, from their stores.

Each kind's cells hold slices of one table; :func:`read_table` puts them back together.
Then each kind has its comparison with theory — the switching λ of every β column beside
λ*(β) and λ̃(β), agreement of a simulated map with its closed-form boundary away from the
boundary, measured 200s/429s beside the model — and its figures. :func:`analyse` gives both
for any stored study: the numbers ``swalab <kind>`` prints and a section of the report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swalab import theory
from swalab._plotting import save_png_svg
from swalab._validate import FloatArray

Table = dict[str, np.ndarray]


def read_table(root: str | Path, name: str) -> Table:
    """Every committed cell's ``name`` table of the store at ``root``, concatenated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from swalab.experiments.store import ResultStore

    files = ResultStore(root).table_files(name)
    if not files:
        return {}
    data = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    return {k: np.asarray(v) for k, v in data.to_pydict().items()}


def _legend_below(ax: Any) -> None:
    """A legend under the axes, where it hides no data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7.5, frameon=False)


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


def surface_agreement(table: Table, column: str) -> tuple[float, int]:
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def plane_agreement(
    table: Table, predicted: str, *, cut: float = 0.5, invert: bool = False
) -> float:
    """Share of cells where "late overload rate ≥ ``cut``" matches the prediction.

    ``invert`` compares with the negated prediction (for ``predicted_stable``). An unstable
    belief swings the load around capacity, overloading half the steps, so the stability
    map uses ``cut = 0.25``.
    """
    over = table["late_overload_rate"] >= cut
    want = ~table[predicted] if invert else table[predicted]
    return float((over == want).mean())


@dataclass
class Analysis:
    """What a stored study shows.

    Attributes:
        kind: The study's kind.
        summary: The headline numbers (what ``swalab <kind> --json`` prints).
        rows: Its table, one dict per row (printed by the command, shown in the report).
        figures: ``(title, caption, files)`` per figure drawn (PNG and SVG).
        text: What the report says above the table.
    """

    kind: str
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    figures: list[tuple[str, str, list[Path]]] = field(default_factory=list)
    text: str = ""


def _sorted(table: Table, *keys: str) -> Table:
    order = np.lexsort(tuple(table[k] for k in reversed(keys)))
    return {k: v[order] for k, v in table.items()}


def _records(table: Table, columns: list[str]) -> list[dict[str, Any]]:
    n = len(next(iter(table.values()))) if table else 0
    return [{c: table[c][i].item() for c in columns} for i in range(n)]


def _phase(root: Path, config: Any, fig_dir: Path) -> Analysis:
    table = _sorted(read_table(root, "phase"), "n_agents", "beta", "lam")
    switches = switch_points(table)
    p = config.policy
    per_n = config.game.capacity / config.game.n_agents
    predicted = np.array(
        [
            theory.predicted_switch(
                p.scorer,
                n_agents=int(n),
                capacity=per_n * n,
                beta=b,
                x_max=float(config.game.x_max),
                margin=p.margin,
            )
            for n, b in zip(switches["n_agents"], switches["beta"], strict=True)
        ]
    )
    switches["predicted"] = predicted
    gap = np.abs(switches["lambda_c"] - np.clip(predicted, 0, 1))
    rows = _records(switches, list(switches))
    title = (
        f"{p.scorer} scorer, {p.candidates} candidates, {config.seeds} seeds, "
        f"T = {config.game.steps}"
    )
    figures = plot_phase(table, fig_dir, stem=f"phase_{p.scorer}", title=title)
    return Analysis(
        kind="phase",
        summary={
            "cells": int(table["lam"].size),
            "switch_vs_prediction_max_gap": float(np.nanmax(gap))
            if np.isfinite(gap).any()
            else None,
            "switches": rows,
        },
        rows=rows,
        figures=[
            (
                "Phase diagram",
                "Overload rate and mean welfare over (λ, β); lines: λ*(β) "
                "(Theorem 1) and λ̃(β) (the paper scorer's own switch).",
                figures,
            )
        ],
        text=f"Switching λ per β column ({p.scorer} scorer: the overload rate stays below 0.5 "
        "from λ_c on) beside the scorer's predicted switch.",
    )


def _surface(root: Path, config: Any, fig_dir: Path) -> Analysis:
    from swalab.swi.surface import swi_fixed_point_load

    table = _sorted(read_table(root, "surface"), "k", "lam_low")
    g, p = config.game, config.policy
    n, cap, x_max = g.n_agents, g.capacity, float(g.x_max)
    nash, n_nash = surface_agreement(table, "nash_overloaded")
    swi, n_swi = surface_agreement(table, "swi_overloaded")
    title = (
        f"{p.scorer} scorer, N={n}, C={cap:g}, β={g.beta:g}, m={p.margin:g}, "
        f"α={p.belief.alpha:g}" + (", private beliefs" if p.belief.private else "")
    )
    escape = {  # most agents below their switch that the system absorbs
        "game_theory": min(n, int(cap // x_max)),
        "swi_fixed_point": max(
            k for k in range(n + 1) if swi_fixed_point_load(n, cap, p.margin, x_max, k) <= cap
        ),
    }
    summary: dict[str, Any] = {
        "cells": int(table["k"].size),
        "agreement_game_theory": nash,
        "interior_cells_game_theory": n_nash,
        "agreement_swi_fixed_point": swi,
        "interior_cells_swi_fixed_point": n_swi,
    }
    row = summary | {f"escape up to k ({k})": v for k, v in escape.items()}
    return Analysis(
        kind="surface",
        summary=summary | {"escape_up_to_k": escape},
        rows=[row],
        figures=[
            (
                "Critical surface",
                "Simulated overload rate over (share of agents at λ_low, "
                "λ_low) with the game-theoretic boundary and the SWI rule's fixed point.",
                plot_surface(table, fig_dir, title=title),
            )
        ],
        text="Agreement of the simulated surface with each prediction, counted away from "
        "that prediction's boundary.",
    )


def _stability(root: Path, config: Any, fig_dir: Path) -> Analysis:
    table = _sorted(read_table(root, "stability"), "n_agents", "alpha")
    ns = table["n_agents"]
    n_grid = np.linspace(max(ns.min(), 2.0 / float(table["alpha"].max())), ns.max(), 200)
    g, p = config.game, config.policy
    figures = plot_plane(
        table,
        "n_agents",
        "alpha",
        "predicted_stable",
        fig_dir,
        stem="stability",
        xlabel=f"agents N (C = {config.capacity_per_agent:g}·N)",
        ylabel="EMA smoothing α",
        title=f"{p.scorer} scorer at λ = {config.lam:g}, β = {g.beta:g}, m = {p.margin:g}, "
        f"T = {g.steps}",
        prediction="α = 2/N (closed form)",
        curve=(n_grid, 2.0 / n_grid),
    )
    summary = {
        "cells": int(table["alpha"].size),
        "agreement": plane_agreement(table, "predicted_stable", cut=0.25, invert=True),
        "unstable_cells": int((table["late_overload_rate"] >= 0.25).sum()),
        "two_cycle_cells": int(np.isclose(table["late_overload_rate"], 0.5).sum()),
    }
    return Analysis(
        kind="stability",
        summary=summary,
        rows=[summary],
        figures=[
            (
                "Belief stability",
                "Overload rate in the second half of the episodes over "
                "(N, α) with the closed-form boundary α = 2/N.",
                figures,
            )
        ],
        text="An unstable shared belief swings the load around capacity whatever λ is: half "
        "the steps overloaded (a two-cycle).",
    )


def _lockin(root: Path, config: Any, fig_dir: Path) -> Analysis:
    table = _sorted(read_table(root, "lockin"), "initial_belief", "lam")
    g, p = config.game, config.policy
    figures = plot_plane(
        table,
        "initial_belief",
        "lam",
        "predicted_locked",
        fig_dir,
        stem="lockin",
        xlabel="initial belief μ̂₀",
        ylabel="λ",
        title=f"{p.scorer} scorer, N={g.n_agents}, C={g.capacity:g}, β={g.beta:g}, "
        f"m={p.margin:g}, γ={p.gamma:g}",
        prediction="closed form: λ < switch, or μ̂₀ ≥ lock-in belief",
    )
    locked_from = float(table["lockin_belief"][0])
    summary = {
        "cells": int(table["lam"].size),
        "lockin_belief": locked_from if np.isfinite(locked_from) else None,
        "switch": float(table["switch"][0]),
        "agreement": plane_agreement(table, "predicted_locked"),
    }
    return Analysis(
        kind="lockin",
        summary=summary,
        rows=[summary],
        figures=[
            (
                "Lock-in",
                "Overload rate in the second half of the episodes over the "
                "initial belief and λ, with the closed-form lock-in boundary.",
                figures,
            )
        ],
        text="A belief that starts at or above the lock-in belief never feels the welfare term.",
    )


LIVE_COLUMNS = (
    "calls",
    "ok_measured",
    "ok_model",
    "rejected_measured",
    "rejected_model",
    "locked_measured",
    "locked_model",
    "late_calls",
)


def _live(root: Path, config: Any, fig_dir: Path) -> Analysis:
    table = _sorted(read_table(root, "live"), "lam", "step")
    rows = []
    for lam in np.unique(table["lam"]):
        at = table["lam"] == lam
        rows.append({"lam": float(lam)} | {c: float(table[c][at].sum()) for c in LIVE_COLUMNS})
    return Analysis(
        kind="live",
        summary={"episodes": rows},
        rows=rows,
        figures=[
            (
                "Live rate limit",
                "Per step: calls the server admitted (200) and refused "
                "(429), measured (markers) beside the pure model's prediction for the same "
                "calls (lines).",
                plot_live(table, fig_dir, config.refill),
            )
        ],
        text=f"rate_limit_v0 against a live HTTP limit server on 127.0.0.1 ({config.refill} "
        f"refill, {config.steps} steps of {config.step_seconds:g} s).",
    )


def plot_live(table: Table, out_dir: Path, refill: str) -> list[Path]:
    """Measured and predicted 200s and 429s per step, one panel per λ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _bench(root: Path, config: Any, fig_dir: Path) -> Analysis:
    rows_table = read_table(root, "rows")
    summary_table = read_table(root, "summary")
    rows = _records(rows_table, list(rows_table))
    summary = _records(summary_table, list(summary_table))[0] if summary_table else {}
    if "machine" in summary:
        summary["machine"] = json.loads(summary["machine"])
    return Analysis(
        kind="bench",
        summary={**summary, "rows": rows},
        rows=rows,
        text=f"Benchmark {config.benchmark!r}"
        + (" (quick)" if config.quick else "")
        + ": measured side by side in one run on this machine.",
    )


ANALYSERS: dict[str, Callable[[Path, Any, Path], Analysis]] = {
    "phase": _phase,
    "surface": _surface,
    "stability": _stability,
    "lockin": _lockin,
    "live": _live,
    "bench": _bench,
}


def analyse(root: str | Path, fig_dir: str | Path | None = None) -> Analysis:
    """The analysis of a stored study other than a sweep (figures into ``fig_dir``).

    Raises:
        FileNotFoundError: ``root`` is not a result directory.
        ValueError: It holds a sweep (see :mod:`swalab.analysis.report`), or no finished
            cell yet.
    """
    from swalab.experiments.kinds import load_config
    from swalab.experiments.store import ResultStore

    base = Path(root)
    store = ResultStore(base)
    if store.manifest() is None:
        raise FileNotFoundError(f"{root}: not a swalab result directory (no manifest.json)")
    kind = store.kind()
    if kind not in ANALYSERS:
        raise ValueError(f"{root}: a {kind} store is analysed by the report's curves")
    if not store.finished():
        raise ValueError(f"{root}: no finished cell yet; run the study (or let it finish) first")
    config = load_config(base / "experiment.yaml")
    return ANALYSERS[kind](base, config, Path(fig_dir) if fig_dir else base / "figures")

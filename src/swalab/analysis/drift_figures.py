"""Figures of λ that moves: value drift over rounds, and LLM stances over epochs.

Drawn from the tables of the ``drift`` and ``stance`` kinds (:mod:`swalab.analysis.maps`
computes the numbers beside them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from swalab._plotting import save_png_svg
from swalab.analysis.map_figures import _legend_below, _pyplot

Table = dict[str, np.ndarray]


#: What makes a drift cell: its rule, selection strength, mutation, severity and institution.
DRIFT_KEYS = ("rule", "selection", "mutation", "beta", "price", "fine", "reputation", "talk")


def drift_cells(table: Table) -> dict[tuple[Any, ...], list[np.ndarray]]:
    """Each cell (:data:`DRIFT_KEYS`) of a drift table, and its seeds' row masks."""
    keys = sorted(set(zip(*(table[k].tolist() for k in DRIFT_KEYS), strict=True)))
    out = {}
    for key in keys:
        at = np.logical_and.reduce([table[k] == x for k, x in zip(DRIFT_KEYS, key, strict=True)])
        out[key] = [at & (table["seed"] == sd) for sd in np.unique(table["seed"][at])]
    return out


def drift_label(key: tuple[Any, ...], show_beta: bool = False) -> str:
    """``imitation, s = 1, μ = 0`` (and β where it varies), with the institution if any."""
    rule, s, mu, beta, *institution, talk = key
    label = f"{rule}, s = {s:g}, μ = {mu:g}" + (f", β = {beta:g}" if show_beta else "")
    for name, level in zip(("price", "fine", "reputation"), institution, strict=True):
        if level:
            label += f", {name} {level:g}"
    return label + ("" if talk == "none" else f", {talk}" + (" talk" if talk == "cheap" else ""))


def plot_drift(table: Table, out_dir: Path) -> list[Path]:
    """The λ distribution over rounds; mean λ beside the mean-field map; overload, welfare.

    One column per cell (rule, selection, mutation, β, institution). Top: the share of
    agents in each λ bin per round (seed mean) under the mean λ, with λ* (dashed) and λ̃
    (dotted) of the cell's game. Middle: mean λ (seeds' range and mean) beside the map and
    the scorer's switch. Bottom: overload and welfare per round.
    """
    plt = _pyplot()

    cells = drift_cells(table)
    show_beta = np.unique(table["beta"]).size > 1
    fig, axes = plt.subplots(
        3, len(cells), figsize=(4.2 * len(cells), 8.4), squeeze=False, constrained_layout=True
    )
    played = np.isfinite(table["mean_welfare"])
    low, high = (float(f(table["mean_welfare"][played])) for f in (np.min, np.max))
    pad = 0.05 * max(high - low, 1e-9)  # one welfare scale for every panel
    for col, (key, seeds) in enumerate(cells.items()):
        rounds = table["round"][seeds[0]]
        lam = np.stack([table["mean_lam"][m] for m in seeds])
        over = np.stack([table["overload_rate"][m][:-1] for m in seeds])  # rounds played
        heat, top, bottom = axes[0][col], axes[1][col], axes[2][col]
        hist = np.mean([np.stack(table["lam_hist"][m]) for m in seeds], axis=0)  # (R + 1, B)
        heat.imshow(
            hist.T,
            origin="lower",
            aspect="auto",
            extent=(rounds[0] - 0.5, rounds[-1] + 0.5, 0.0, 1.0),
            cmap="viridis",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        heat.plot(rounds, lam.mean(axis=0), color="w", lw=1.2, label="mean λ")
        first = seeds[0]
        heat.axhline(float(table["lam_star"][first][0]), color="tab:red", ls="--", lw=1, label="λ*")
        heat.axhline(
            float(table["lam_tilde"][first][0]), color="tab:orange", ls=":", lw=1.4, label="λ̃"
        )
        heat.set_ylabel("λ (share of agents: colour)")
        heat.set_title(drift_label(key, show_beta), fontsize=9)
        _legend_below(heat)
        top.fill_between(
            rounds,
            lam.min(axis=0),
            lam.max(axis=0),
            color="tab:blue",
            alpha=0.2,
            label="seeds' range",
        )
        top.plot(rounds, lam.mean(axis=0), color="tab:blue", lw=1.6, label="simulated mean λ")
        predicted = table["predicted_mean_lam"][seeds[0]]
        if np.isfinite(predicted).any():
            top.plot(rounds, predicted, color="k", lw=1.0, ls="-.", label="mean-field map")
        top.axhline(
            float(table["switch"][seeds[0]][0]), color="tab:red", ls="--", lw=1, label="switch"
        )
        top.set_ylim(-0.02, 1.02)
        top.set_ylabel("mean λ")
        _legend_below(top)
        welfare = np.stack([table["mean_welfare"][m][:-1] for m in seeds])
        bottom.plot(rounds[:-1], over.mean(axis=0), color="tab:orange", lw=1.4, label="overload")
        bottom.set_ylim(-0.02, 1.02)
        bottom.set_xlabel("round")
        bottom.set_ylabel("overload rate")
        right = bottom.twinx()
        right.plot(
            rounds[:-1], welfare.mean(axis=0), color="tab:green", lw=1.2, label="welfare per step"
        )
        right.set_ylim(low - pad, high + pad)
        right.set_ylabel("welfare per step", color="tab:green")
        lines = bottom.get_lines() + right.get_lines()
        bottom.legend(
            lines,
            [ln.get_label() for ln in lines],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=2,
            fontsize=7.5,
            frameon=False,
        )
    return save_png_svg(fig, out_dir, "drift", dpi=110)


def mean_finite(xs: np.ndarray) -> float:
    """The mean of the finite values (NaN when there is none)."""
    kept = xs[np.isfinite(xs)]
    return float(kept.mean()) if kept.size else float("nan")


def stance_curves(table: Table) -> dict[float, dict[str, np.ndarray]]:
    """Per starting λ: each epoch's start and the seeds' mean of every ``stance_epochs`` column.

    NaN (an unusable grade, an unidentified revealed λ) is left out of a mean; an epoch with
    no usable value stays NaN.
    """
    out: dict[float, dict[str, np.ndarray]] = {}
    for lam0 in np.unique(table["lam0"]):
        at = table["lam0"] == lam0
        epochs = np.unique(table["epoch"][at])
        curve: dict[str, list[float]] = {}
        for name in (
            "start",
            "judged_lam",
            "revealed",
            "overload_rate",
            "mean_welfare",
            "promise_gap",
            "lam_star",
            "lam_tilde",
        ):
            if name not in table:  # a column a store written before it was added lacks
                curve[name] = [float("nan")] * len(epochs)
                continue
            col = np.asarray(table[name], dtype=np.float64)
            curve[name] = [mean_finite(col[at & (table["epoch"] == k)]) for k in epochs]
        out[float(lam0)] = {k: np.asarray(v) for k, v in curve.items()}
    return out


def plot_stance(table: Table, out_dir: Path) -> list[Path]:
    """Judged and revealed λ per epoch beside λ* and λ̃; overload per epoch under them.

    One column per starting λ; points are the seeds' means (an unidentified revealed λ, or
    an ungradable stance, leaves a gap).
    """
    plt = _pyplot()
    curves = stance_curves(table)
    fig, axes = plt.subplots(
        2, len(curves), figsize=(4.2 * len(curves), 5.4), squeeze=False, constrained_layout=True
    )
    for col, (lam0, c) in enumerate(curves.items()):
        top, bottom = axes[0][col], axes[1][col]
        x = c["start"]
        top.plot(x, c["judged_lam"], "o-", color="tab:purple", lw=1.4, ms=4, label="judged λ")
        top.plot(x, c["revealed"], "s-", color="tab:blue", lw=1.4, ms=4, label="revealed λ")
        top.axhline(float(c["lam_star"][0]), color="tab:red", ls="--", lw=1, label="λ*")
        top.axhline(float(c["lam_tilde"][0]), color="tab:orange", ls=":", lw=1.2, label="λ̃")
        top.axhline(lam0, color="0.5", lw=0.8, label="starting λ")
        top.set_ylim(-0.02, 1.02)
        top.set_ylabel("λ")
        top.set_title(f"stance from λ = {lam0:g}", fontsize=9)
        _legend_below(top)
        bottom.plot(x, c["overload_rate"], "o-", color="tab:orange", lw=1.4, ms=4)
        bottom.set_ylim(-0.02, 1.02)
        bottom.set_xlabel("step (epoch start)")
        bottom.set_ylabel("overload rate")
    return save_png_svg(fig, out_dir, "stance", dpi=110)

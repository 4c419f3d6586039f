"""The paper's figures from a result directory, in one style, as PNG and SVG.

- Fig. 1 / Fig. 2: overload rate and ΔW vs λ, one line per system (model × scorer) in each
  game, λ* and λ̃ of the game marked.
- Fig. 3 / Fig. 4: overload rate and mean welfare vs λ, one line per β for each system, each
  β's predicted threshold marked in its line's colour.
- Load time series: the mean load per step at several λ for chosen systems, C marked.
- Phase heatmap: overload rate and welfare over (λ, β) where a system was swept over at
  least three β (drawn by :func:`swalab.swi.phase.plot_phase`).

Every band is the 95 % bootstrap interval over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from swalab import theory
from swalab._plotting import save_png_svg
from swalab.analysis.results import METRICS, Curve, Results
from swalab.stats import N_BOOT
from swalab.transition import Transition

#: Parameters that define a game (the thresholds depend on these only).
GAME_FIELDS = ("env", "env_params", "n_agents", "capacity", "beta", "x_max", "margin")

_STYLE: dict[str, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.framealpha": 0.75,
    "svg.hashsalt": "swalab",  # identical SVGs for identical data
}


@contextmanager
def _plt() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(_STYLE):  # type: ignore[arg-type]
        yield plt


#: The colour map of ordered values (λ, β): perceptually uniform, with a hue change between
#: neighbours (viridis's middle is a run of similar greens). Its light yellow end is unused.
SEQUENTIAL = "plasma"


def _legend_below(ax: Any) -> None:
    """A legend under the axes, where it hides no curve (one column for long labels)."""
    _, labels = ax.get_legend_handles_labels()
    ncol = 1 if max((len(label) for label in labels), default=0) > 32 else 2
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, fontsize=7, frameon=False)


def _informative(values: Sequence[float]) -> bool:
    """Whether plotted values say anything: some are finite and not all the same.

    A metric that is one constant everywhere (the prosocial share of the cut is 1 in every
    homogeneous run) would draw flat lines that only repeat the table.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return finite.size > 0 and bool(np.ptp(finite) > 1e-12)


def _grid(plt: Any, n: int, *, width: float = 5.0, height: float = 4.6) -> tuple[Any, list[Any]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(width * cols, height * rows),
        squeeze=False,
        constrained_layout=True,
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def game_title(params: dict[str, Any]) -> str:
    """A game in one line: its env and parameters (the curves of one panel share it)."""
    if params.get("env", "congestion_v0") != "congestion_v0":
        extra = params.get("env_params") or "{}"
        return f"{params['env']}, N={params['n_agents']} {extra if extra != '{}' else ''}"[:70]
    return (
        f"N={params['n_agents']}, C={params['capacity']:g}, β={params['beta']:g}, "
        f"x_max={params['x_max']:g}, m={params['margin']:g}"
    )


def _band(ax: Any, lam: np.ndarray, rows: list[dict[str, Any]], metric: str, **kw: Any) -> Any:
    y = np.array([r[metric] for r in rows], dtype=np.float64)
    lo = np.array([r[f"{metric}_low"] for r in rows], dtype=np.float64)
    hi = np.array([r[f"{metric}_high"] for r in rows], dtype=np.float64)
    (line,) = ax.plot(lam, y, marker="o", ms=3.5, lw=1.6, **kw)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.fill_between(lam[ok], lo[ok], hi[ok], color=line.get_color(), alpha=0.18, lw=0)
    return line


def _axes_for(metric: str, ax: Any) -> None:
    ax.set_xlabel("social weight λ")
    ax.set_ylabel(METRICS[metric])
    if metric == "overload_rate":
        ax.set_ylim(-0.04, 1.04)
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    if metric == "welfare_gain":
        ax.axhline(0.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlim(-0.02, 1.02)


def _groups(
    curves: Sequence[Curve], key: Callable[[Curve], Any], *, ordered: bool = False
) -> list[list[int]]:
    """Curve indices grouped by ``key`` (in first-seen order, or sorted by the key)."""
    out: dict[Any, list[int]] = {}
    for i, c in enumerate(curves):
        out.setdefault(key(c), []).append(i)
    return [out[k] for k in sorted(out)] if ordered else list(out.values())


def by_game(
    results: Results,
    summaries: Sequence[list[dict[str, Any]]],
    metric: str,
    out_dir: Path,
    stem: str,
    title: str,
) -> list[Path]:
    """Fig. 1 / 2 style: ``metric`` vs λ, a panel per game, a line per system.

    Systems of every experiment share the panel of their game, so an LLM and the
    model-based rule are compared on one set of axes.
    """
    curves = results.curves
    panels = _groups(curves, lambda c: tuple(c.params[f] for f in GAME_FIELDS), ordered=True)
    panels = [p for p in panels if _informative([r[metric] for i in p for r in summaries[i]])]
    if not panels:
        return []
    with _plt() as plt:
        fig, axes = _grid(plt, len(panels))
        for ax, members in zip(axes, panels, strict=True):
            first = curves[members[0]]
            for i in members:
                c = curves[i]
                label = results.label(c, skip=GAME_FIELDS)
                _band(ax, c.lams, summaries[i], metric, label=label)
            for mark, value, style in (
                ("λ*", first.lambda_star, "-"),
                ("λ̃", first.lambda_tilde, "--"),
            ):
                if np.isfinite(value):
                    ax.axvline(
                        value, color="black", lw=1.2, ls=style, label=f"{mark} = {value:.3g}"
                    )
            _axes_for(metric, ax)
            ax.set_title(game_title(first.params))
            _legend_below(ax)
        fig.suptitle(title)
        return save_png_svg(fig, out_dir, stem)


def by_beta(
    results: Results,
    summaries: Sequence[list[dict[str, Any]]],
    metric: str,
    out_dir: Path,
    stem: str,
    title: str,
) -> list[Path]:
    """Fig. 3 / 4 style: ``metric`` vs λ, a panel per system swept over β, a line per β.

    Drawn only for systems run at two or more β; each β's predicted threshold (λ̃ for the
    paper scorer, λ* otherwise) is a dotted line in its colour.
    """
    curves = results.curves
    panels = _groups(
        curves, lambda c: (c.experiment, *(v for k, v in c.params.items() if k != "beta"))
    )
    panels = [p for p in panels if len(p) >= 2]
    if not panels:
        return []
    with _plt() as plt:
        fig, axes = _grid(plt, len(panels))
        cmap = plt.get_cmap(SEQUENTIAL)
        for ax, members in zip(axes, panels, strict=True):
            first = curves[members[0]]
            order = sorted(members, key=lambda j: curves[j].params["beta"])
            for j, i in enumerate(order):
                c = curves[i]
                color = cmap(0.9 * j / max(len(order) - 1, 1))
                line = _band(
                    ax, c.lams, summaries[i], metric, color=color, label=f"β = {c.params['beta']:g}"
                )
                if np.isfinite(c.predicted):
                    ax.axvline(min(c.predicted, 1.0), color=line.get_color(), lw=1.1, ls=":")
            _axes_for(metric, ax)
            mark = theory.switch_symbol(str(first.params["scorer"]))
            ax.set_title(f"{results.label(first, skip=('beta',))} (dotted: {mark} per β)")
            _legend_below(ax)
        fig.suptitle(title)
        return save_png_svg(fig, out_dir, stem)


def _pick_lams(curve: Curve, transition: Transition | None, most: int = 6) -> list[float]:
    lams: list[float] = curve.lams.tolist()
    if len(lams) <= most:
        return lams
    picked = {lams[round(i * (len(lams) - 1) / (most - 1))] for i in range(most)}
    if transition is not None:  # the two λ either side of the switch show it best
        picked |= {x for x in (transition.grid_low, transition.grid_high) if x is not None}
    return sorted(picked)


def load_series(
    results: Results,
    chosen: Sequence[int],
    transitions: Sequence[Transition | None],
    out_dir: Path,
    stem: str = "load_timeseries",
) -> list[Path]:
    """Mean load per step (95 % band over seeds) at several λ, one panel per chosen curve."""
    from swalab.analysis.results import load_series as read_series

    roots = {e.name: e.root for e in results.experiments}
    panels = []
    for i in chosen:
        c = results.curves[i]
        lines = read_series(c, roots[c.experiment], _pick_lams(c, transitions[i]))
        if lines:  # stores without step rows have nothing to draw
            panels.append((c, lines))
    if not panels:
        return []
    rng = np.random.default_rng(0)
    with _plt() as plt:
        fig, axes = _grid(plt, len(panels), width=5.4)
        cmap = plt.get_cmap(SEQUENTIAL)
        for ax, (c, lines) in zip(axes, panels, strict=True):
            for j, (lam, steps, loads) in enumerate(lines):
                color = cmap(0.9 * j / max(len(lines) - 1, 1))
                mean = np.nanmean(loads, axis=0)
                ax.plot(steps, mean, color=color, lw=1.6, marker=".", label=f"λ = {lam:g}")
                if loads.shape[0] > 1:
                    idx = rng.integers(0, loads.shape[0], size=(N_BOOT, loads.shape[0]))
                    boot = np.nanmean(loads[idx], axis=1)
                    lo, hi = np.nanquantile(boot, [0.025, 0.975], axis=0)
                    ax.fill_between(steps, lo, hi, color=color, alpha=0.15, lw=0)
            cap = c.params["capacity"]
            ax.axhline(cap, color="black", lw=1.2, label=f"C = {cap:g}")
            ax.axhline(
                cap - c.params["margin"],
                color="black",
                lw=0.9,
                ls="--",
                label=f"C − m = {cap - c.params['margin']:g}",
            )
            ax.set_xlabel("step t")
            ax.set_ylabel("load X_t")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_title(results.label(c) + f" ({game_title(c.params)})", fontsize=8.5)
            _legend_below(ax)
        fig.suptitle("Load over time at several λ (band: 95 % bootstrap over seeds)")
        return save_png_svg(fig, out_dir, stem)


def phase_heatmaps(
    results: Results, summaries: Sequence[list[dict[str, Any]]], out_dir: Path
) -> list[Path]:
    """(λ, β) heatmaps for every system swept over at least three β and three λ."""
    from swalab.analysis.map_figures import plot_phase

    curves = results.curves
    panels = _groups(
        curves, lambda c: (c.experiment, *(v for k, v in c.params.items() if k != "beta"))
    )
    paths: list[Path] = []
    for n, members in enumerate(p for p in panels if len(p) >= 3):
        rows = sorted(
            ((curves[i], r) for i in members for r in summaries[i]),
            key=lambda cr: (cr[0].params["beta"], cr[1]["lam"]),
        )
        if len({r["lam"] for _, r in rows}) < 3:
            continue
        table = {
            "n_agents": np.array([c.params["n_agents"] for c, _ in rows], dtype=np.int64),
            "beta": np.array([c.params["beta"] for c, _ in rows]),
            "lam": np.array([r["lam"] for _, r in rows]),
            "overload_rate": np.array([r["overload_rate"] for _, r in rows]),
            "mean_welfare": np.array([r["mean_welfare"] for _, r in rows]),
            "lambda_tilde": np.array([c.lambda_tilde for c, _ in rows]),
        }
        title = results.label(curves[members[0]], skip=("beta",))
        paths += plot_phase(table, out_dir, stem=f"phase_{n + 1}", title=title)
    return paths


#: Parameters whose effect on the switch gets its own figure, with their axis names.
ROBUSTNESS: dict[str, str] = {
    "belief_noise": "belief noise σ",
    "belief_delay": "belief delay d (steps)",
    "belief_window": "belief window",
    "alpha": "EMA smoothing α",
    "belief": "belief model",
    "belief_private": "private beliefs",
    "population": "population",
    "heterogeneity": "heterogeneity",
    "horizon": "horizon",
}


def transition_vs(
    results: Results, transitions: Sequence[Transition], out_dir: Path
) -> list[tuple[str, list[Path]]]:
    """λ_c with its bootstrap interval against each parameter a sweep varied besides λ.

    One figure per :data:`ROBUSTNESS` parameter that takes two or more values among curves
    otherwise alike (same experiment and every other parameter); a panel per such family,
    the scorer's predicted threshold dashed. Curves without a located switch are drawn at
    the grid end they fall off (hollow markers).

    Returns:
        ``(parameter, files)`` per figure drawn.
    """
    curves = results.curves
    drawn = []

    def family(curve: Curve, field: str) -> tuple[Any, ...]:
        rest = (_hashable(v) for k, v in curve.params.items() if k != field)
        return (curve.experiment, *rest)

    for field, axis in ROBUSTNESS.items():
        families = _groups(curves, partial(family, field=field))
        families = [
            m for m in families if len({_hashable(curves[i].params[field]) for i in m}) >= 2
        ]
        if not families:
            continue
        with _plt() as plt:
            fig, axes = _grid(plt, len(families))
            for ax, members in zip(axes, families, strict=True):
                _transition_panel(
                    ax, [curves[i] for i in members], [transitions[i] for i in members], field
                )
                ax.set_xlabel(axis)
                ax.set_ylabel("λ_c (overload rate crosses 0.5)")
                ax.set_title(results.label(curves[members[0]], skip=(field,)), fontsize=8)
            fig.suptitle(f"Switching point λ_c vs {axis}")
            drawn.append((field, save_png_svg(fig, out_dir, f"transition_vs_{field}")))
    return drawn


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _transition_panel(ax: Any, curves: list[Curve], trans: list[Transition], field: str) -> None:
    values = [c.params[field] for c in curves]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in values)
    order = sorted(range(len(curves)), key=lambda i: values[i] if numeric else str(values[i]))
    xs = np.array([float(values[i]) if numeric else j for j, i in enumerate(order)])
    for x, i in zip(xs, order, strict=True):
        t = trans[i]
        if t.lambda_c is None:  # no switch on the grid: show where it falls off
            end = float(t.lams[0] if t.status.startswith("stable") else t.lams[-1])
            ax.plot([x], [end], marker="o", mfc="none", color="C0")
            continue
        low = t.lambda_c - (t.ci_low if t.ci_low is not None else 0.0)
        high = (t.ci_high if t.ci_high is not None else 1.0) - t.lambda_c
        ax.errorbar(
            [x],
            [t.lambda_c],
            yerr=[[max(low, 0.0)], [max(high, 0.0)]],
            fmt="o",
            color="C0",
            capsize=3,
        )
    located = [
        (x, trans[i].lambda_c)
        for x, i in zip(xs, order, strict=True)
        if trans[i].lambda_c is not None
    ]
    if len(located) >= 2:
        ax.plot(*zip(*located, strict=True), color="C0", lw=1, alpha=0.6)
    predicted = curves[0].predicted
    if np.isfinite(predicted):
        mark = theory.switch_symbol(str(curves[0].params.get("scorer")))
        ax.axhline(predicted, color="black", ls="--", lw=1, label=f"{mark} = {predicted:.3g}")
        ax.legend(loc="best")
    if not numeric:
        ax.set_xticks(xs, [str(values[i]) for i in order], rotation=20, ha="right", fontsize=7)
    ax.set_ylim(-0.02, 1.02)

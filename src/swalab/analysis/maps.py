"""The maps (phase, surface, stability, lock-in), live runs and benchmarks, from their stores.

Each kind's cells hold slices of one table; :func:`read_table` puts them back together.
Then each kind has its comparison with theory — the switching λ of every β column beside
λ*(β) and λ̃(β), agreement of a simulated map with its closed-form boundary away from the
boundary, measured 200s/429s beside the model — and its figures. :func:`analyse` gives both
for any stored study: the numbers ``swalab <kind>`` prints and a section of the report
(the figures are drawn by :mod:`swalab.analysis.map_figures`).
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
from swalab.analysis.drift_figures import DRIFT_KEYS, drift_cells, plot_drift, plot_stance
from swalab.analysis.map_figures import (
    plot_live,
    plot_phase,
    plot_plane,
    plot_surface,
)

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


def _draw(fig_dir: Path | None, plot: Callable[[Path], list[Path]]) -> list[Path]:
    """``plot(fig_dir)``'s files, or none when no figures are wanted (``fig_dir`` is None)."""
    return [] if fig_dir is None else plot(fig_dir)


def _sorted(table: Table, *keys: str) -> Table:
    order = np.lexsort(tuple(table[k] for k in reversed(keys)))
    return {k: v[order] for k, v in table.items()}


def _records(table: Table, columns: list[str]) -> list[dict[str, Any]]:
    n = len(next(iter(table.values()))) if table else 0
    return [{c: table[c][i].item() for c in columns} for i in range(n)]


def _phase(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
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
    figures = _draw(fig_dir, lambda d: plot_phase(table, d, stem=f"phase_{p.scorer}", title=title))
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


def _surface(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
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
                _draw(fig_dir, lambda d: plot_surface(table, d, title=title)),
            )
        ],
        text="Agreement of the simulated surface with each prediction, counted away from "
        "that prediction's boundary.",
    )


def _stability(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
    table = _sorted(read_table(root, "stability"), "n_agents", "alpha")
    ns = table["n_agents"]
    n_grid = np.linspace(max(ns.min(), 2.0 / float(table["alpha"].max())), ns.max(), 200)
    g, p = config.game, config.policy
    figures = _draw(
        fig_dir,
        lambda d: plot_plane(
            table,
            "n_agents",
            "alpha",
            "predicted_stable",
            d,
            stem="stability",
            xlabel=f"agents N (C = {config.capacity_per_agent:g}·N)",
            ylabel="EMA smoothing α",
            title=f"{p.scorer} scorer at λ = {config.lam:g}, β = {g.beta:g}, "
            f"m = {p.margin:g}, T = {g.steps}",
            prediction="α = 2/N (closed form)",
            curve=(n_grid, 2.0 / n_grid),
        ),
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


def _lockin(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
    table = _sorted(read_table(root, "lockin"), "initial_belief", "lam")
    g, p = config.game, config.policy
    figures = _draw(
        fig_dir,
        lambda d: plot_plane(
            table,
            "initial_belief",
            "lam",
            "predicted_locked",
            d,
            stem="lockin",
            xlabel="initial belief μ̂₀",
            ylabel="λ",
            title=f"{p.scorer} scorer, N={g.n_agents}, C={g.capacity:g}, β={g.beta:g}, "
            f"m={p.margin:g}, γ={p.gamma:g}",
            prediction="closed form: λ < switch, or μ̂₀ ≥ lock-in belief",
        ),
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


def _live(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
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
                _draw(fig_dir, lambda d: plot_live(table, d, config.refill)),
            )
        ],
        text=f"rate_limit_v0 against a live HTTP limit server on 127.0.0.1 ({config.refill} "
        f"refill, {config.steps} steps of {config.step_seconds:g} s).",
    )


def _bench(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
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


def _guard(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
    from swalab.analysis.guard import plot_guard, pool_runs

    pooled = pool_runs(read_table(root, "guard"))
    full = [r for r in pooled if r["guarded"] == 1.0]
    mixed = [r for r in pooled if r["guarded"] < 1.0]
    rows = [
        {
            "behaviour": r["behaviour"],
            "N": r["clients"],
            "policy": r["policy"],
            "guarded": r["guarded"],
            "seeds": r["seeds"],
            "goodput [CI]": _mean_ci(r, "goodput_share"),
            "429 share [CI]": _mean_ci(r, "reject_share"),
            "goodput × accepted": r["goodput_x_accept"],
            "locked windows": r["lockout_windows"],
            "p99 s": r["p99_s"],
            "fairness": r["fairness"],
            "counters agree": r["counters_agree"],
        }
        for r in pooled
    ]
    caption = (
        "Client policies on a live rate-limited server: goodput (share of what the limit "
        "admits) and the share of attempts answered 429, against the number of clients; bars: "
        "the seeds' 95 % bootstrap intervals; a hollow marker: the key was locked out in a seed."
    )
    settings = {
        k: getattr(config, k) for k in ("limit", "window_s", "demand", "duration_s", "deadline_s")
    }
    files = _draw(fig_dir, lambda d: plot_guard(full, d)) if full else []
    return Analysis(
        kind="guard",
        summary={"results": full, "mixed": mixed, **settings},
        rows=rows,
        figures=[("Goodput and 429s against N", caption, files)],
        text=f"Each run: Poisson calls at {config.demand:g}× a limit of {config.limit} calls a "
        f"{config.window_s:g}-s window for {config.duration_s:g} s, each given up "
        f"{config.deadline_s:g} s after it arrived, on a fresh uvicorn server on 127.0.0.1; "
        "'guarded' is the share of clients wearing the policy (the rest retry at once).",
    )


def _mean_ci(record: dict[str, Any], metric: str) -> str:
    """``0.770 [0.761, 0.779]`` (– for an end one seed cannot give)."""
    low, high = record[f"{metric}_ci"]
    ends = ", ".join("–" if x is None else f"{x:.3f}" for x in (low, high))
    return f"{record[metric]:.3f} [{ends}]"


def _suite(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
    from swalab.analysis.leaderboard import (
        COST_CAPTION,
        CURVES_CAPTION,
        cost_rows,
        plot_cost,
        plot_curves,
        read,
        scorecards,
    )

    cards = scorecards([root])
    shown = (
        *("model", "mode", "game", "lambda_c", "ci_low", "ci_high", "status"),
        *("overload_at_1", "calibration_slope", "outsiders_absorbed", "parse_failure_rate"),
    )
    rows = [{k: c.get(k) for k in shown} for c in cards]
    figures: list[tuple[str, str, list[Path]]] = []
    curves = read([root], "curve")
    if fig_dir is not None:
        for title, png in plot_curves(curves, fig_dir):
            figures.append((title, CURVES_CAPTION, [png, png.with_suffix(".svg")]))
        for title, png in plot_cost(curves, fig_dir):
            figures.append((title, COST_CAPTION, [png, png.with_suffix(".svg")]))
    return Analysis(
        kind="suite",
        summary={"scorecards": cards, "cost": cost_rows(curves)},
        rows=rows,
        text="swa-bench scorecards: λ_c per model, agent mode and game, refined by bisection "
        "(the interval includes the grid gap), beside the scripted baselines.",
        figures=figures,
    )


def _drift(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
    from swalab.stats import bootstrap_mean_diff
    from swalab.theory.drift import first_below

    table = _sorted(read_table(root, "drift"), *DRIFT_KEYS, "seed", "round")
    figures = _draw(fig_dir, lambda d: plot_drift(table, d))
    cells = []
    finals: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}
    for key, per_seed in drift_cells(table).items():
        mean_lam = np.mean([table["mean_lam"][m] for m in per_seed], axis=0)
        over = np.mean([table["overload_rate"][m][:-1] for m in per_seed], axis=0)  # played
        switch = float(table["switch"][per_seed[0]][0])
        predicted = table["predicted_mean_lam"][per_seed[0]]
        finals[key] = (
            np.array([table["mean_lam"][m][-1] for m in per_seed]),
            np.array([np.mean(table["overload_rate"][m][:-1]) for m in per_seed]),
        )
        cells.append(
            {
                **dict(zip(DRIFT_KEYS, key, strict=True)),
                "seeds": len(per_seed),
                "rounds": int(mean_lam.size - 1),
                "switch": switch,
                "mean_lam": mean_lam.tolist(),
                "overload_rate": over.tolist(),
                "collapsed_at": first_below(mean_lam, switch),
                "predicted_collapsed_at": first_below(predicted, switch),  # NaN: no map
                "final_mean_lam": float(mean_lam[-1]),
                "final_predicted_mean_lam": (
                    float(predicted[-1]) if np.isfinite(predicted[-1]) else None
                ),
            }
        )
    # Institutions against their control (none) on the same seeds: paired.
    for cell in cells:
        key = tuple(cell[k] for k in DRIFT_KEYS)
        control = (*key[:4], 0.0, 0.0, 0.0, "none")  # the same rule and β, no institution
        if key == control or control not in finals:
            continue
        (lam_on, over_on), (lam_off, over_off) = finals[key], finals[control]
        d_lam = bootstrap_mean_diff(lam_on, lam_off, paired=True)
        d_over = bootstrap_mean_diff(over_on, over_off, paired=True)
        cell["paired"] = {
            name: [x if math.isfinite(x) else None for x in (d.mean, d.low, d.high)]
            for name, d in (("final_mean_lam_diff", d_lam), ("overload_rate_diff", d_over))
        }
    summary = {**cells[0], "cells": cells} if len(cells) == 1 else {"cells": cells}
    shown = (*DRIFT_KEYS, "switch", "collapsed_at", "predicted_collapsed_at")
    rows = [
        {k: c[k] for k in (*shown, "final_mean_lam", "final_predicted_mean_lam")}
        | {
            "Δ final mean λ [CI]": _ci(c["paired"]["final_mean_lam_diff"])
            if "paired" in c
            else "–",
            "Δ overload [CI]": _ci(c["paired"]["overload_rate_diff"]) if "paired" in c else "–",
        }
        for c in cells
    ]
    return Analysis(
        kind="drift",
        summary=summary,
        rows=rows,
        figures=[
            (
                "Value drift",
                "Per cell: the λ distribution of each round (colour: share of agents) under "
                "λ* and λ̃; mean λ (the seeds' range and mean) beside the two-type mean-field "
                "map and the scorer's switch; the overload rate and welfare of each round.",
                figures,
            )
        ],
        text="Rules that copy success erode λ: a selfish agent out-earns a prosocial one in "
        "its group, so the prosocial share falls until the population overloads. An "
        "institution's effect is paired with its control on the same seeds.",
    )


def _stance(root: Path, config: Any, fig_dir: Path | None) -> Analysis:
    from swalab.analysis.drift_figures import mean_finite, stance_curves
    from swalab.theory.revealed import calibration_slope

    table = _sorted(read_table(root, "stance_epochs"), "lam0", "seed", "epoch")
    calib = read_table(root, "stance_calibration")
    texts = _sorted(read_table(root, "stance"), "lam0", "seed", "epoch", "agent")
    figures = _draw(fig_dir, lambda d: plot_stance(table, d))
    # Every cell asks the same judge the same greedy questions: one reading per λ.
    told = np.unique(calib["lam"])
    grades = np.array([mean_finite(calib["grade"][calib["lam"] == x]) for x in told])
    usable = np.isfinite(grades)
    slope = calibration_slope(told[usable].tolist(), grades[usable].tolist())
    cells = []
    for lam0, c in stance_curves(table).items():
        at = table["lam0"] == lam0
        first, last = c["judged_lam"][0], c["judged_lam"][-1]
        cells.append(
            {
                "lam0": lam0,
                "seeds": int(np.unique(table["seed"][at]).size),
                "epochs": int(c["start"].size),
                "epoch_start": c["start"].astype(int).tolist(),
                "judged_lam": _finite_list(c["judged_lam"]),
                "revealed_lam": _finite_list(c["revealed"]),
                "overload_rate": _finite_list(c["overload_rate"]),
                "promise_gap": _finite_list(c["promise_gap"]),
                "judged_drift": _finite(last - first),
                "lam_star": float(c["lam_star"][0]),
                "lam_tilde": float(c["lam_tilde"][0]),
                "reflect_failures": int(table["reflect_failures"][at].sum()),
                "grade_failures": int(table["grade_failures"][at].sum()),
                "tokens": float(table["tokens_in"][at].sum() + table["tokens_out"][at].sum()),
                "model_seconds": float(table["latency_s"][at].sum()),
            }
        )
    summary: dict[str, Any] = {
        "cells": cells,
        "judge_calibration": [
            {"lam": float(x), "grade": _finite(g)} for x, g in zip(told, grades, strict=True)
        ],
        "judge_calibration_slope": slope,
        "stances": _records(texts, ["lam0", "seed", "epoch", "agent", "stance", "grade"]),
    }
    rows = [
        {
            "starting λ": float(lam0),
            "seed": int(sd),
            "epoch start": int(st),
            "judged λ": _finite(j),
            "revealed λ": _finite(r),
            "overload": float(o),
            "tokens": float(ti + to),
        }
        for lam0, sd, st, j, r, o, ti, to in zip(
            table["lam0"],
            table["seed"],
            table["start"],
            table["judged_lam"],
            table["revealed"],
            table["overload_rate"],
            table["tokens_in"],
            table["tokens_out"],
            strict=True,
        )
    ]
    return Analysis(
        kind="stance",
        summary=summary,
        rows=rows,
        figures=[
            (
                "LLM stances that drift",
                "Per epoch (the steps one set of stances is in force): the judge's reading of "
                "the stance texts and the λ revealed by the same agents' demands, beside λ* "
                "and λ̃; below, the overload rate.",
                figures,
            )
        ],
        text="Each agent rewrote its stance from its own and its neighbours' payoffs. The "
        "judged λ is only as good as the judge's calibration (its reading of λ in words at "
        f"fixed λ: slope {'–' if slope is None else f'{slope:.2f}'}, 1 is calibrated).",
    )


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def _finite_list(xs: np.ndarray) -> list[float | None]:
    return [_finite(x) for x in xs]


def _ci(triple: list[float | None]) -> str:
    """``+0.123 [+0.100, +0.150]`` (– for an end one seed cannot give)."""
    return "{} [{}, {}]".format(*("–" if x is None else f"{x:+.3f}" for x in triple))


ANALYSERS: dict[str, Callable[[Path, Any, Path | None], Analysis]] = {
    "phase": _phase,
    "surface": _surface,
    "stability": _stability,
    "lockin": _lockin,
    "live": _live,
    "bench": _bench,
    "suite": _suite,
    "drift": _drift,
    "stance": _stance,
    "guard": _guard,
}


def analyse(root: str | Path, fig_dir: str | Path | None = None, *, draw: bool = True) -> Analysis:
    """The analysis of a stored study other than a sweep (figures into ``fig_dir``).

    ``draw=False`` computes the numbers only (a command's headline).

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
    where = (Path(fig_dir) if fig_dir else base / "figures") if draw else None
    analysis = ANALYSERS[kind](base, config, where)
    analysis.figures = [f for f in analysis.figures if f[2]]
    return analysis

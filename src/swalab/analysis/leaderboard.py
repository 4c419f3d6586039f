"""The swa-bench leaderboard: every stored scorecard on one self-contained HTML page.

Scorecards are results (Parquet, one per suite cell); the page is regenerated from them. Two
machines' suites merge by giving both directories: a scorecard is one cell, named by the hash
of what it depends on, so the same cell computed twice appears once. The page holds a
sortable table (plain JavaScript, no network) and, per game, the models' overload curves
overlaid for each agent mode, the scripted baselines beside them.
"""

from __future__ import annotations

import base64
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swalab import __version__

#: Scorecard columns the page's table shows, in order, with their headers.
SHOWN = (
    ("model", "model"),
    ("mode", "mode"),
    ("test", "test"),
    ("game", "game"),
    ("lambda_c", "λ_c"),
    ("ci_low", "low"),
    ("ci_high", "high"),
    ("status", "status"),
    ("lambda_tilde", "λ̃"),
    ("lambda_star", "λ*"),
    ("overload_at_1", "OR at λ=1"),
    ("welfare_gap_above_switch", "ΔW* above switch"),
    ("price_of_anarchy_at_0", "PoA at λ=0"),
    ("calibration_slope", "calibration"),
    ("proposal_shift", "proposal shift"),
    ("outsiders_absorbed", "outsiders absorbed"),
    ("parse_failure_rate", "parse fail"),
    ("fallback_rate", "fallback"),
    ("pick_agreement", "pick agrees"),
    ("tokens_per_decision", "tokens/decision"),
    ("shared_tokens_per_decision", "shared/decision"),
    ("latency_per_decision", "s/decision"),
    ("welfare_per_1k_tokens", "W per 1k tokens"),
)


CURVES_CAPTION = (
    "Each panel one agent mode, one line per model (or baseline); the dotted line is the 0.5 "
    "that defines λ_c."
)
COST_CAPTION = (
    "Left: welfare against the tokens each decision paid (prompt + output), one line per "
    "model and mode through its λ points; scripted baselines pay nothing. Right: a "
    "decision's tokens, prompt paid, output and prompt shared (reused prefixes, identical "
    "prompts answered once)."
)


def suite_stores(roots: Sequence[str | Path]) -> list[Path]:
    """The suite stores at or directly under each root.

    Raises:
        FileNotFoundError: A root holds no suite store.
    """
    from swalab.analysis.results import find_experiments
    from swalab.experiments.store import ResultStore

    found: list[Path] = []
    for root in roots:
        stores = [p for p in find_experiments(root) if ResultStore(p).kind() == "suite"]
        if not stores:
            raise FileNotFoundError(f"{root}: holds no suite (run `swalab bench suite` first)")
        found += stores
    return found


def read(roots: Sequence[str | Path], table: str) -> list[dict[str, Any]]:
    """Rows of ``table`` (``scorecard`` or ``curve``) over every suite store, each cell once."""
    import pyarrow.parquet as pq

    from swalab.experiments.store import ResultStore

    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for store_dir in suite_stores(roots):
        store = ResultStore(store_dir)
        for key in sorted(store.finished()):
            path = store_dir / "cells" / key / f"{table}.parquet"
            if key in seen or not path.is_file():
                continue
            seen.add(key)
            for row in pq.read_table(path).to_pylist():
                rows.append({"cell": key, **row})
    return rows


def scorecards(roots: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every stored scorecard, sorted by game, mode and model."""
    cards = read(roots, "scorecard")
    order = {"switch": 0, "mixed": 1, "dilemma": 2, "outsiders": 3}
    return sorted(cards, key=lambda c: (order.get(c["test"], 4), c["game"], c["mode"], c["model"]))


def _fmt(value: Any) -> tuple[str, str]:
    """(shown text, sort key) of a table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–", ""
    if isinstance(value, float):
        return f"{value:.4g}", repr(value)
    return str(value), str(value)


def plot_curves(curves: list[dict[str, Any]], out_dir: Path) -> list[tuple[str, Path]]:
    """Per game: overload rate against λ, one panel per agent mode, one line per model.

    Games are the congestion game at each β and each dilemma; a mixed-model population is
    one more line (``a+b``) in its mode's panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from swalab._plotting import save_png_svg

    switch = [c for c in curves if c["test"] in ("switch", "mixed", "dilemma")]
    figures = []
    for i, game in enumerate(sorted({c["game"] for c in switch})):
        rows = [c for c in switch if c["game"] == game]
        modes = [m for m in ("swi", "swi-llm", "prompted") if any(r["mode"] == m for r in rows)]
        panels = [*modes, "baselines"]
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), sharey=True)
        axes = list(axes) if len(panels) > 1 else [axes]
        for ax, panel in zip(axes, panels, strict=True):
            chosen = [
                r
                for r in rows
                if (r["mode"] == panel) or (panel == "baselines" and r["mode"] not in modes)
            ]
            for name in sorted({r["agent"] for r in chosen}):
                pts = sorted((r["lam"], r["overload_rate"]) for r in chosen if r["agent"] == name)
                pts = [(x, y) for x, y in pts if y is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker=".", label=name)
            ax.axhline(0.5, color="0.7", lw=0.8, ls=":")
            ax.set_title(panel)
            ax.set_xlabel("λ")
            if chosen:
                ax.legend(fontsize=7)
        axes[0].set_ylabel("overload rate")
        fig.suptitle(game, y=1.04)
        png = save_png_svg(fig, out_dir, f"leaderboard_{i}")[0]
        figures.append((f"Overload rate against λ, {game}", png))
    return figures


def _mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def cost_rows(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per game, model and agent mode: what a decision cost and the welfare it bought.

    Tokens per decision are means over the λ points played: prompt tokens paid, output
    tokens, and prompt tokens the backend reused (shared prefixes, identical prompts
    answered once); ``points`` lists each λ's paid tokens and welfare. Scripted baselines
    pay nothing. Curves stored before the ledger have no shared count (``None``).
    """
    played = [c for c in curves if c["test"] in ("switch", "mixed", "dilemma")]
    out = []
    for game, agent, mode in sorted({(c["game"], c["agent"], c["mode"]) for c in played}):
        mine = sorted(
            (c for c in played if (c["game"], c["agent"], c["mode"]) == (game, agent, mode)),
            key=lambda c: c["lam"] or 0.0,
        )
        paid, output = (
            _mean_of(mine, "tokens_per_decision"),
            _mean_of(mine, "output_tokens_per_decision"),
        )
        out.append(
            {
                "game": game,
                "model": agent,
                "mode": mode,
                "prompt_paid_per_decision": None if paid is None else paid - (output or 0.0),
                "output_per_decision": output,
                "shared_per_decision": _mean_of(mine, "shared_tokens_per_decision"),
                "mean_welfare": _mean_of(mine, "mean_welfare"),
                "points": [
                    {
                        "lam": c["lam"],
                        "tokens": c.get("tokens_per_decision") or 0.0,
                        "welfare": c["mean_welfare"],
                    }
                    for c in mine
                    if c.get("mean_welfare") is not None
                ],
            }
        )
    return out


def plot_cost(curves: list[dict[str, Any]], out_dir: Path) -> list[tuple[str, Path]]:
    """Per game: what cooperation costs in tokens, for each model and agent mode.

    Left, welfare against the tokens paid per decision (prompt + output), one line per
    model and mode through its λ points. Right, a decision's tokens split into prompt paid,
    output and prompt shared (:func:`cost_rows`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from swalab._plotting import save_png_svg

    rows = cost_rows(curves)
    figures = []
    for i, game in enumerate(sorted({r["game"] for r in rows})):
        mine = [r for r in rows if r["game"] == game]
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(10, 1.2 + 0.35 * max(len(mine), 4)), gridspec_kw={"width_ratios": [3, 2]}
        )
        names = [f"{r['model']} · {r['mode']}" for r in mine]
        for name, r in zip(names, mine, strict=True):
            if r["points"]:
                xy = [(p["tokens"], p["welfare"]) for p in r["points"]]
                left.plot(*zip(*xy, strict=True), marker=".", label=name)
        left.set_xlabel("tokens paid per decision (prompt + output)")
        left.set_ylabel("mean welfare per step")
        left.legend(fontsize=7)
        at = list(range(len(mine)))
        start = [0.0] * len(mine)
        for key, label, color in (
            ("prompt_paid_per_decision", "prompt, paid", "C0"),
            ("output_per_decision", "output", "C1"),
            ("shared_per_decision", "prompt, shared", "0.75"),
        ):
            widths = [r[key] or 0.0 for r in mine]
            right.barh(at, widths, left=start, color=color, label=label)
            start = [s + w for s, w in zip(start, widths, strict=True)]
        right.set_yticks(at, names, fontsize=7)
        right.set_xlabel("tokens per decision")
        right.legend(fontsize=7)
        fig.suptitle(game, y=1.02)
        png = save_png_svg(fig, out_dir, f"cost_{i}")[0]
        figures.append((f"What cooperation costs in tokens, {game}", png))
    return figures


def write_leaderboard(roots: Sequence[str | Path], out: str | Path) -> Path:
    """Write the leaderboard page for the suites under ``roots`` to ``out`` (HTML).

    Raises:
        FileNotFoundError: No suite under a root.
        ValueError: The suites hold no finished scorecard yet.
    """
    import jinja2

    cards = scorecards(roots)
    if not cards:
        raise ValueError("no finished scorecard yet: run `swalab bench suite` (it resumes)")
    curves = read(roots, "curve")
    with tempfile.TemporaryDirectory() as tmp:
        drawn = [(t, p, CURVES_CAPTION) for t, p in plot_curves(curves, Path(tmp))]
        drawn += [(t, p, COST_CAPTION) for t, p in plot_cost(curves, Path(tmp))]
        figures = [
            {
                "title": title,
                "caption": caption,
                "png": base64.b64encode(png.read_bytes()).decode("ascii"),
            }
            for title, png, caption in drawn
        ]

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("swalab.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    html = env.get_template("leaderboard.html.j2").render(
        generated=time.strftime("%Y-%m-%d %H:%M"),
        version=__version__,
        suites=[str(p) for p in suite_stores(roots)],
        columns=[header for _, header in SHOWN],
        rows=[[_fmt(c.get(name)) for name, _ in SHOWN] for c in cards],
        versions=sorted({str(c["suite_version"]) for c in cards}),
        figures=figures,
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path

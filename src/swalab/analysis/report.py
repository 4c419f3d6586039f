"""``swalab report DIR``: one self-contained HTML page, its figures and a JSON twin.

The page answers the question a reader brings: where did each system switch, with what
uncertainty, and how far is that from λ* and λ̃? Then it shows the figures, every metric
with its interval per λ, what the run cost (calls, tokens, time) and exactly what ran (the
resolved experiment files and manifests). Figures are embedded as PNG data, so the page can
be mailed or archived alone; the PNG and SVG files sit beside it for papers.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swalab import __version__
from swalab._json import dumps
from swalab.analysis import figures
from swalab.analysis.results import (
    METRICS,
    Curve,
    Results,
    load_results,
    manifest_summary,
    summarize,
)
from swalab.analysis.transition import LOCATED, Transition, estimate_transition

#: Systems drawn in the load time-series figure when no model is chosen.
MAX_SERIES_PANELS = 4


@dataclass
class Report:
    """A written report.

    Attributes:
        html: The page.
        json: The same content as data.
        figures: PNG and SVG files.
        transitions: One row per system (see :func:`transition_rows`).
    """

    html: Path
    json: Path
    figures: list[Path]
    transitions: list[dict[str, Any]]


def transition_rows(results: Results, transitions: list[Transition]) -> list[dict[str, Any]]:
    """The threshold table: each system's λ_c and interval beside λ*, λ̃ and their gaps.

    ``predicted`` is the threshold of the system's scorer (λ̃ for ``paper``, λ* for
    ``consistent``); ``gap`` is ``lambda_c − predicted``.
    """
    rows = []
    for c, t in zip(results.curves, transitions, strict=True):
        p = c.params
        rows.append({
            "experiment": c.experiment, "label": results.label(c), "scorer": p["scorer"],
            "model": c.model, "backend": p["backend"], "beta": p["beta"],
            "n_agents": p["n_agents"], "capacity": p["capacity"], "x_max": p["x_max"],
            "margin": p["margin"], "candidates": p["candidates"], "status": t.status,
            "lambda_c": t.lambda_c, "ci_low": t.ci_low, "ci_high": t.ci_high,
            "grid_low": t.grid_low, "grid_high": t.grid_high,
            "lambda_star": c.lambda_star, "lambda_tilde": c.lambda_tilde,
            "predicted": c.predicted,
            "gap": None if t.lambda_c is None else t.lambda_c - c.predicted,
            "lam_points": int(c.lams.size), "seeds": t.seeds,
            "located_share": t.located_share, "failed_episodes": c.failed,
        })  # fmt: skip
    return rows


def _series_curves(results: Results, model: str | None) -> list[int]:
    curves = results.curves
    if model is not None:
        chosen = [i for i, c in enumerate(curves) if c.model == model]
        if not chosen:
            known = sorted({c.model for c in curves})
            raise ValueError(f"--model: {model!r} is not in these results; they hold {known}")
        return chosen[:MAX_SERIES_PANELS]
    llm = [i for i, c in enumerate(curves) if c.params["model"] is not None]
    return (llm or list(range(len(curves))))[:MAX_SERIES_PANELS]


def _phase_tables(root: Path) -> list[tuple[Path, dict[str, np.ndarray]]]:
    """Phase diagrams written by ``swalab phase --out`` inside the analysed directory."""
    import pyarrow.parquet as pq

    found = sorted({*root.glob("phase.parquet"), *root.glob("*/phase.parquet")})
    return [(p, {k: np.asarray(v) for k, v in pq.read_table(p).to_pydict().items()}) for p in found]


#: Each resource dilemma's own figures (drawn only for systems that have the metric).
DILEMMA_FIGURES: dict[str, tuple[str, str]] = {
    "lockout_rate": (
        "Rate limit — lockout",
        "Share of steps the shared API key is locked out (the thundering herd) per system.",
    ),
    "completed": ("Rate limit — completed calls", "Calls the token bucket admitted per step."),
    "rejected": ("Rate limit — 429s", "Calls rejected per step (wasted, retried)."),
    "critical_loss": (
        "Context budget — critical instructions lost",
        "Mean share of the critical instructions evicted from the shared window per round.",
    ),
    "judge_agreement": (
        "Context budget — judge vs closed form",
        "Spearman's ρ between the "
        "LLM judge's grades and the closed-form group score of the same "
        "candidate messages.",
    ),
    "survival_time": ("Commons — survival", "Steps the stock survived before collapsing."),
    "total_harvest": ("Commons — total harvest", "Harvest summed over the episode."),
    "equality": ("Commons — equality", "Jain index of the agents' total harvests."),
    "drift": (
        "Commons — drift",
        "Mean harvest in the last quarter of the surviving steps "
        "minus the first quarter (> 0: behaviour degrades late).",
    ),
}


def write_report(
    root: str | Path,
    out: str | Path | None = None,
    *,
    model: str | None = None,
    seed: int = 0,
) -> Report:
    """Write ``report.html``, ``report.json`` and ``figures/`` for every cell under ``root``.

    Only committed cells are read, so a report of a running or killed sweep is a correct
    report of what finished (and says how much that is).

    Args:
        root: A result directory, or a folder of them (``swalab replicate``'s ``--out``).
        out: Where to write.
        model: The model whose load time series is drawn (default: the LLM systems, else
            the first systems).
        seed: Seed of every bootstrap (the report is reproducible to the digit).

    Raises:
        FileNotFoundError: ``root`` holds no result directory.
        ValueError: ``root`` holds no finished episode, or ``model`` is not in it.
    """
    results = load_results(root)
    if not results.curves:
        raise ValueError(
            f"{root}: no finished episode yet; run the experiment (or let it finish) first"
        )
    dest = Path(out) if out is not None else Path(root)
    fig_dir = dest / "figures"
    summaries = [summarize(c, seed=seed) for c in results.curves]
    transitions = [
        estimate_transition(*c.per_episode("overload_rate"), seed=seed) for c in results.curves
    ]
    rows = transition_rows(results, transitions)
    chosen = _series_curves(results, model)

    made: list[tuple[str, str, list[Path]]] = []  # (title, caption, files)

    def add(title: str, caption: str, paths: list[Path]) -> None:
        if paths:
            made.append((title, caption, paths))

    add("Fig. 1 — overload rate vs λ", "Seed-mean overload rate per system; band: 95 % "
        "bootstrap interval over seeds; solid line λ* (Theorem 1), dashed λ̃ (paper scorer).",
        figures.by_game(results, summaries, "overload_rate", fig_dir, "fig1_overload",
                        "Overload rate vs λ"))  # fmt: skip
    add("Fig. 2 — welfare gain ΔW vs λ", "ΔW(λ) = W̄(λ) − W̄(0), paired by seed.",
        figures.by_game(results, summaries, "welfare_gain", fig_dir, "fig2_welfare_gain",
                        "Welfare gain ΔW vs λ"))  # fmt: skip
    add("Fig. 3 — overload rate vs λ per β", "Dotted: each β's predicted threshold.",
        figures.by_beta(results, summaries, "overload_rate", fig_dir, "fig3_overload_beta",
                        "Overload rate vs λ per severity β"))  # fmt: skip
    add("Fig. 4 — mean welfare vs λ per β", "Episode-mean realised welfare W̄.",
        figures.by_beta(results, summaries, "mean_welfare", fig_dir, "fig4_welfare_beta",
                        "Mean welfare vs λ per severity β"))  # fmt: skip
    add("Load over time", "Mean load per step at several λ, including the two either side "
        "of the switch; band: 95 % bootstrap over seeds.",
        figures.load_series(results, chosen, transitions, fig_dir))  # fmt: skip
    for field, paths in figures.transition_vs(results, transitions, fig_dir):
        add(f"Switching point vs {figures.ROBUSTNESS[field]}",
            "λ_c per system with its 95 % bootstrap interval (seeds resampled within λ); "
            "hollow: no switch on the λ grid (drawn at the grid end); dashed: the scorer's "
            "threshold for clean, symmetric agents.", paths)  # fmt: skip
    add("Who pays — the prosocial agents' share of the cut",
        "Σ over prosocial agents (SWI with λ_i at or above their scorer's switch) of "
        "x_max_i − x̄_i, over the same sum for all agents; 1 means they carry the whole cut.",
        figures.by_game(results, summaries, "prosocial_cut_share", fig_dir, "who_pays_cut",
                        "Prosocial share of the cut vs λ"))  # fmt: skip
    add("Who pays — reward gap", "Mean reward of the other agents (outsiders, agents below "
        "their switch) minus that of the prosocial agents; > 0: the selfish earn more.",
        figures.by_game(results, summaries, "reward_gap", fig_dir, "who_pays_gap",
                        "Reward gap (others − prosocial) vs λ"))  # fmt: skip
    for metric, (title, caption) in DILEMMA_FIGURES.items():
        add(title, caption + " Solid line: the dilemma's closed-form switch point.",
            figures.by_game(results, summaries, metric, fig_dir, f"dilemma_{metric}",
                            f"{METRICS[metric]} vs λ"))  # fmt: skip
    add("Phase heatmap", "Systems swept over three or more β; lines: λ*(β), λ̃(β).",
        figures.phase_heatmaps(results, summaries, fig_dir))  # fmt: skip
    phase_tables = _phase_tables(results.root)
    if phase_tables:
        from swalab.swi.phase import plot_phase

        for n, (path, table) in enumerate(phase_tables):
            add(f"Phase diagram ({path.parent.name or path.name})", f"From {path}.",
                plot_phase(table, fig_dir, stem=f"phase_table_{n + 1}"))  # fmt: skip

    files = [p for _, _, paths in made for p in paths]
    data = {
        "report": str(dest / "report.html"),
        "root": str(results.root),
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "swalab_version": __version__,
        "transitions": rows,
        "figures": [str(p) for p in files],
        "experiments": [manifest_summary(e) for e in results.experiments],
        "accounting": _accounting(results),
        "metrics": [
            {"experiment": c.experiment, "label": results.label(c), "params": c.params, "rows": s}
            for c, s in zip(results.curves, summaries, strict=True)
        ],
    }
    dest.mkdir(parents=True, exist_ok=True)
    json_path = dest / "report.json"
    _atomic_write(json_path, dumps(data))
    html_path = dest / "report.html"
    _atomic_write(html_path, _html(results, data, made, dest))
    return Report(html=html_path, json=json_path, figures=files, transitions=rows)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _accounting(results: Results) -> list[dict[str, Any]]:
    """Per experiment and model: episodes, failures, LLM calls, tokens, time, cache hits."""
    from swalab.experiments.query import connect

    out = []
    for e in results.experiments:
        cur = connect(e.root).execute(
            "SELECT coalesce(model, 'model-based'), coalesce(backend, '-'), count(*), "
            "count(*) FILTER (WHERE status <> 'ok'), sum(prompts), sum(tokens_in), "
            "sum(tokens_out), sum(latency_s), avg(cached) FROM episodes GROUP BY ALL "
            "ORDER BY ALL"
        )
        for model, backend, n, failed, prompts, t_in, t_out, latency, cached in cur.fetchall():
            out.append({
                "experiment": e.name, "model": model, "backend": backend, "episodes": n,
                "failed": failed, "prompts": prompts, "tokens_in": t_in,
                "tokens_out": t_out, "llm_seconds": latency, "cached_share": cached,
                "cells": f"{e.finished} of {e.planned}",
            })  # fmt: skip
    return out


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:13px}pre{background:#f7f7f7;padding:.8em;overflow:auto}
.warn{color:#a40}.muted{color:#777}
"""


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return html.escape(str(x))


def _interval(low: Any, high: Any) -> str:
    if low is None and high is None:
        return "–"
    return f"[{_num(low) if low is not None else '−∞'}, {_num(high) if high is not None else '+∞'}]"


def _threshold_table(rows: list[dict[str, Any]]) -> str:
    head = ("system", "scorer", "β", "λ_c", "95 % CI", "between grid λ", "λ*", "λ̃",
            "λ_c − predicted", "status", "seeds")  # fmt: skip
    body = []
    for r in rows:
        mark = "λ̃" if r["scorer"] == "paper" else "λ*"
        gap = "–" if r["gap"] is None else f"{r['gap']:+.3f} (vs {mark})"
        status = html.escape(r["status"])
        if r["status"] != LOCATED:
            status = f'<span class="warn">{status}: no transition located</span>'
        body.append(
            f'<tr><td class="l">{html.escape(r["label"])}</td><td class="l">{r["scorer"]}</td>'
            f"<td>{_num(r['beta'])}</td><td><b>{_num(r['lambda_c'])}</b></td>"
            f"<td>{_interval(r['ci_low'], r['ci_high'])}</td>"
            f"<td>({_num(r['grid_low'])}, {_num(r['grid_high'])}]</td>"
            f"<td>{_num(r['lambda_star'])}</td><td>{_num(r['lambda_tilde'])}</td>"
            f'<td>{gap}</td><td class="l">{status}</td><td>{r["seeds"]}</td></tr>'
        )
    ths = "".join(f"<th>{h}</th>" for h in head)
    return f'<table id="thresholds"><tr>{ths}</tr>{"".join(body)}</table>'


def _metrics_table(curve: Curve, rows: list[dict[str, Any]]) -> str:
    shown = [m for m in METRICS if any(np.isfinite(r[m]) for r in rows)]
    head = "".join(f"<th>{html.escape(METRICS[m])}</th>" for m in shown)
    body = []
    for r in rows:
        cells = "".join(
            f"<td>{_num(r[m])} <span class='muted'>{_interval(r[m + '_low'], r[m + '_high'])}"
            "</span></td>"
            if np.isfinite(r[m + "_low"])
            else f"<td>{_num(r[m])}</td>"
            for m in shown
        )
        body.append(f"<tr><td>{r['lam']:g}</td><td>{r['seeds']}</td>{cells}</tr>")
    return f'<table class="metrics"><tr><th>λ</th><th>seeds</th>{head}</tr>{"".join(body)}</table>'


def _records_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "<p class='muted'>(none)</p>"
    keys = list(records[0])
    head = "".join(f'<th class="l">{html.escape(k)}</th>' for k in keys)
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{_num(r[k])}</td>' for k in keys) + "</tr>"
        for r in records
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(
    results: Results, data: dict[str, Any], made: list[tuple[str, str, list[Path]]], dest: Path
) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>swalab report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>swalab report</h1>",
        f"<p class='muted'>{html.escape(str(results.root))} · generated {data['generated']} "
        f"by swalab {__version__} · {len(results.curves)} systems in "
        f"{len(results.experiments)} experiment(s)</p>",
    ]
    partial = [e for e in results.experiments if e.finished < e.planned]
    for e in partial:
        parts.append(
            f"<p class='warn'>{html.escape(e.name)}: {e.finished} of {e.planned} cells "
            "finished; the report covers those only (rerun the experiment to finish it).</p>"
        )
    parts += [
        "<h2>Where each system switches</h2>",
        "<p>λ_c: where the non-increasing fit of the seed-mean overload rate crosses 0.5, "
        "interpolated between the grid λ either side; 95 % CI: stratified bootstrap over "
        "seeds (an end the data cannot bound shows as ∞). Predicted: λ̃ for the paper "
        "scorer, λ* for the consistent one (SPEC §2).</p>",
        _threshold_table(data["transitions"]),
        "<h2>Figures</h2>",
    ]
    for title, caption, paths in made:
        png = next(p for p in paths if p.suffix == ".png")
        svg = next((p for p in paths if p.suffix == ".svg"), None)
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        link = ""
        if svg is not None:
            rel = svg.relative_to(dest) if svg.is_relative_to(dest) else svg
            link = f" <a href='{html.escape(str(rel))}'>SVG</a>"
        parts.append(
            f"<figure><img src='data:image/png;base64,{encoded}' alt='{html.escape(title)}'>"
            f"<figcaption><b>{html.escape(title)}.</b> {html.escape(caption)}{link}"
            "</figcaption></figure>"
        )
    if not made:
        parts.append("<p class='muted'>(no figure: nothing to draw)</p>")
    parts.append("<h2>Metrics per λ (mean [95 % CI] over seeds)</h2>")
    for c, m in zip(results.curves, data["metrics"], strict=True):
        parts.append(
            f"<details><summary>{html.escape(m['label'])} — "
            f"{html.escape(figures._game_title(c.params))}</summary>"
            f"{_metrics_table(c, m['rows'])}</details>"
        )
    parts += ["<h2>Accounting</h2>", _records_table(data["accounting"]), "<h2>What ran</h2>"]
    for e, summary in zip(results.experiments, data["experiments"], strict=True):
        parts.append(
            f"<h3>{html.escape(e.name)}</h3><details><summary>experiment.yaml</summary>"
            f"<pre>{html.escape(e.config_yaml)}</pre></details><details><summary>manifest"
            f"</summary><pre>{html.escape(dumps(summary))}</pre></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)

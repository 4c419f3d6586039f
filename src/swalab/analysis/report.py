"""``swalab report DIR``: one self-contained HTML page, its figures and a JSON twin.

For sweeps the page answers the question a reader brings: where did each system switch,
with what uncertainty, and how far is that from λ* and λ̃? Then the figures, every metric
with its interval per λ, what the run cost (calls, tokens, time) and exactly what ran (the
resolved study files and manifests). Every other kind of study (phase, surface, stability,
lock-in, live, bench) adds its own section from :func:`swalab.analysis.maps.analyse`. One
page skeleton (a Jinja2 template, autoescaped) renders them all. Figures are embedded as
PNG data, so the page can be mailed or archived alone; the PNG and SVG files sit beside it.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swalab import __version__, theory
from swalab._json import dumps
from swalab.analysis import figures
from swalab.analysis.maps import Analysis, analyse
from swalab.analysis.results import (
    METRICS,
    Experiment,
    Results,
    load_results,
    manifest_summary,
    parse_warnings,
    summarize,
)
from swalab.experiments.store import ResultStore
from swalab.transition import LOCATED, Transition, estimate_transition

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
    studies: list[dict[str, Any]] = field(default_factory=list)


def transition_rows(results: Results, transitions: list[Transition]) -> list[dict[str, Any]]:
    """The threshold table: each system's λ_c and interval beside λ*, λ̃ and their gaps.

    ``predicted`` is the threshold of the system's scorer (λ̃ for ``paper``, λ* for
    ``consistent``); ``gap`` is ``lambda_c − predicted``.
    """
    rows = []
    for c, t in zip(results.curves, transitions, strict=True):
        p = c.params
        rows.append(
            {
                "experiment": c.experiment,
                "label": results.label(c),
                "scorer": p["scorer"],
                "model": c.model,
                "backend": p["backend"],
                "beta": p["beta"],
                "n_agents": p["n_agents"],
                "capacity": p["capacity"],
                "x_max": p["x_max"],
                "margin": p["margin"],
                "candidates": p["candidates"],
                "status": t.status,
                "lambda_c": t.lambda_c,
                "ci_low": t.ci_low,
                "ci_high": t.ci_high,
                "grid_low": t.grid_low,
                "grid_high": t.grid_high,
                "lambda_star": c.lambda_star,
                "lambda_tilde": c.lambda_tilde,
                "predicted": c.predicted,
                "gap": None if t.lambda_c is None else t.lambda_c - c.predicted,
                "lam_points": int(c.lams.size),
                "seeds": t.seeds,
                "located_share": t.located_share,
                "failed_episodes": c.failed,
            }
        )
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


def _check_writable(dest: Path, *, given: bool) -> None:
    """Refuse, before any analysis, a destination the report cannot be written to.

    A finished store stays readable when it is read-only (an archive, a shared mount): the
    user is told to write the report elsewhere rather than shown a traceback at the end.
    """
    probe = dest / f".report-probe.{os.getpid()}"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        hint = "choose another --out" if given else "give --out a writable directory"
        raise ValueError(
            f"{dest}: the report cannot be written there ({exc.strerror}); {hint}"
        ) from None


def write_report(
    root: str | Path,
    out: str | Path | None = None,
    *,
    model: str | None = None,
    seed: int = 0,
) -> Report:
    """Write ``report.html``, ``report.json`` and ``figures/`` for every study under ``root``.

    Only committed cells are read, so a report of a running or killed study is a correct
    report of what finished (and says how much that is).

    Args:
        root: A result directory, or a folder of them (``swalab replicate``'s ``--out``).
        out: Where to write.
        model: The model whose load time series is drawn (default: the LLM systems, else
            the first systems).
        seed: Seed of every bootstrap (the report is reproducible to the digit).

    Raises:
        FileNotFoundError: ``root`` holds no result directory.
        ValueError: ``root`` holds no finished episode or cell, or ``model`` is not in it,
            or the report cannot be written where it should go (a read-only store).
    """
    results = load_results(root)
    dest = Path(out) if out is not None else Path(root)
    _check_writable(dest, given=out is not None)
    fig_dir = dest / "figures"
    studies = [
        (e, analyse(e.root, fig_dir if e.name == "." else fig_dir / e.name))
        for e in results.experiments
        if e.kind != "sweep" and e.finished
    ]
    if not results.curves and not studies:
        failed = [f for e in results.experiments for f in ResultStore(e.root).failures().values()]
        why = f"; {len(failed)} cell(s) failed, e.g.: {failed[0].get('error')}" if failed else ""
        raise ValueError(
            f"{root}: no finished episode yet{why}; run the experiment (or let it finish) first"
        )
    summaries = [summarize(c, seed=seed) for c in results.curves]
    transitions = [
        estimate_transition(*c.per_episode("overload_rate"), seed=seed) for c in results.curves
    ]
    rows = transition_rows(results, transitions)
    made = _sweep_figures(results, summaries, transitions, fig_dir, model) if rows else []
    files = [p for _, _, paths in made for p in paths]
    files += [p for _, a in studies for _, _, paths in a.figures for p in paths]
    study_rows = [
        {"experiment": e.name, "kind": a.kind, "summary": a.summary, "rows": a.rows}
        for e, a in studies
    ]
    data: dict[str, Any] = {
        "report": str(dest / "report.html"),
        "root": str(results.root),
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "swalab_version": __version__,
        "transitions": rows,
        "studies": study_rows,
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
    _atomic_write(html_path, _html(results, data, made, studies, dest))
    return Report(
        html=html_path, json=json_path, figures=files, transitions=rows, studies=study_rows
    )


def _sweep_figures(
    results: Results,
    summaries: list[list[dict[str, Any]]],
    transitions: list[Transition],
    fig_dir: Path,
    model: str | None,
) -> list[tuple[str, str, list[Path]]]:
    """The sweeps' figures: ``(title, caption, files)`` for each that carries information."""
    made: list[tuple[str, str, list[Path]]] = []

    def add(title: str, caption: str, paths: list[Path]) -> None:
        if paths:
            made.append((title, caption, paths))

    def by_game(metric: str, stem: str, title: str) -> list[Path]:
        return figures.by_game(results, summaries, metric, fig_dir, stem, title)

    def by_beta(metric: str, stem: str, title: str) -> list[Path]:
        return figures.by_beta(results, summaries, metric, fig_dir, stem, title)

    add(
        "Fig. 1 — overload rate vs λ",
        "Seed-mean overload rate per system; band: 95 % bootstrap interval over seeds; solid "
        "line λ* (Theorem 1), dashed λ̃ (paper scorer).",
        by_game("overload_rate", "fig1_overload", "Overload rate vs λ"),
    )
    add(
        "Fig. 2 — welfare gain ΔW vs λ",
        "ΔW(λ) = W̄(λ) − W̄(0), paired by seed.",
        by_game("welfare_gain", "fig2_welfare_gain", "Welfare gain ΔW vs λ"),
    )
    add(
        "Fig. 3 — overload rate vs λ per β",
        "Dotted: each β's predicted threshold.",
        by_beta("overload_rate", "fig3_overload_beta", "Overload rate vs λ per severity β"),
    )
    add(
        "Fig. 4 — mean welfare vs λ per β",
        "Episode-mean realised welfare W̄.",
        by_beta("mean_welfare", "fig4_welfare_beta", "Mean welfare vs λ per severity β"),
    )
    add(
        "Load over time",
        "Mean load per step at several λ, including the two either side of the switch; "
        "band: 95 % bootstrap over seeds.",
        figures.load_series(results, _series_curves(results, model), transitions, fig_dir),
    )
    for name, paths in figures.transition_vs(results, transitions, fig_dir):
        add(
            f"Switching point vs {figures.ROBUSTNESS[name]}",
            "λ_c per system with its 95 % bootstrap interval (seeds resampled within λ); "
            "hollow: no switch on the λ grid (drawn at the grid end); dashed: the scorer's "
            "threshold for clean, symmetric agents.",
            paths,
        )
    add(
        "Who pays — the prosocial agents' share of the cut",
        "Σ over prosocial agents (SWI with λ_i at or above their scorer's switch) of "
        "x_max_i − x̄_i, over the same sum for all agents; 1 means they carry the whole cut.",
        by_game("prosocial_cut_share", "who_pays_cut", "Prosocial share of the cut vs λ"),
    )
    add(
        "Who pays — reward gap",
        "Mean reward of the other agents (outsiders, agents below their switch) minus that of "
        "the prosocial agents; > 0: the selfish earn more.",
        by_game("reward_gap", "who_pays_gap", "Reward gap (others − prosocial) vs λ"),
    )
    for metric, (title, caption) in DILEMMA_FIGURES.items():
        add(
            title,
            caption + " Solid line: the dilemma's closed-form switch point.",
            by_game(metric, f"dilemma_{metric}", f"{METRICS[metric]} vs λ"),
        )
    add(
        "Phase heatmap",
        "Systems swept over three or more β; lines: λ*(β), λ̃(β).",
        figures.phase_heatmaps(results, summaries, fig_dir),
    )
    return made


def json_text(value: Any) -> str:
    """A small value as compact JSON (a cell's assignment in a warning)."""
    return dumps(value).replace("\n", " ").replace("  ", "")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _accounting(results: Results) -> list[dict[str, Any]]:
    """Per experiment and model: episodes, failures, LLM calls, tokens, time, cache hits."""
    from swalab.experiments.query import connect

    out = []
    for e in (e for e in results.experiments if e.kind == "sweep"):
        cur = connect(e.root).execute(
            "SELECT coalesce(model, 'model-based'), coalesce(backend, '-'), count(*), "
            "count(*) FILTER (WHERE status <> 'ok'), sum(prompts), sum(tokens_in), "
            "sum(tokens_out), sum(latency_s), avg(cached) FROM episodes GROUP BY ALL "
            "ORDER BY ALL"
        )
        for model, backend, n, failed, prompts, t_in, t_out, latency, cached in cur.fetchall():
            out.append(
                {
                    "experiment": e.name,
                    "model": model,
                    "backend": backend,
                    "episodes": n,
                    "failed": failed,
                    "prompts": prompts,
                    "tokens_in": t_in,
                    "tokens_out": t_out,
                    "llm_seconds": latency,
                    "cached_share": cached,
                    "cells": f"{e.finished} of {e.planned}",
                }
            )
    return out


# --- the page -------------------------------------------------------------------------------


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _interval(low: Any, high: Any) -> str:
    if low is None and high is None:
        return "–"
    lo = _num(low) if low is not None else "−∞"
    hi = _num(high) if high is not None else "+∞"
    return f"[{lo}, {hi}]"


def _cell(text: Any, **extra: Any) -> dict[str, Any]:
    shown = text if isinstance(text, str) else _num(text)
    return {"text": shown, "cls": None, "strong": False, "note": None} | extra


def _table(
    columns: list[str], rows: list[list[dict[str, Any]]], *, left: int = 0, **extra: Any
) -> dict[str, Any]:
    """A table for the template: ``left`` first columns are left-aligned text."""
    return {
        "columns": columns,
        "rows": rows,
        "left": list(range(left)),
        "id": None,
        "cls": None,
    } | extra


def _records_table(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not records:
        return None
    keys = list(records[0])
    rows = [[_cell(r[k], cls="l") for k in keys] for r in records]
    return _table(keys, rows, left=len(keys))


def _threshold_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = [
        "system",
        "scorer",
        "β",
        "λ_c",
        "95 % CI",
        "between grid λ",
        "λ*",
        "λ̃",
        "λ_c − predicted",
        "status",
        "seeds",
    ]
    body = []
    for r in rows:
        mark = theory.switch_symbol(str(r["scorer"]))
        gap = "–" if r["gap"] is None else f"{r['gap']:+.3f} (vs {mark})"
        located = r["status"] == LOCATED
        body.append(
            [
                _cell(r["label"], cls="l"),
                _cell(str(r["scorer"]), cls="l"),
                _cell(r["beta"]),
                _cell(r["lambda_c"], strong=True),
                _cell(_interval(r["ci_low"], r["ci_high"])),
                _cell(f"({_num(r['grid_low'])}, {_num(r['grid_high'])}]"),
                _cell(r["lambda_star"]),
                _cell(r["lambda_tilde"]),
                _cell(gap),
                _cell(
                    r["status"] if located else f"{r['status']}: no transition located",
                    cls="l" if located else "l warn",
                ),
                _cell(r["seeds"]),
            ]
        )
    return _table(columns, body, left=2, id="thresholds")


def _metrics_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    shown = [m for m in METRICS if any(np.isfinite(r[m]) for r in rows)]
    body = []
    for r in rows:
        cells = [_cell(f"{r['lam']:g}"), _cell(r["seeds"])]
        for m in shown:
            ranged = np.isfinite(r[m + "_low"])
            note = _interval(r[m + "_low"], r[m + "_high"]) if ranged else None
            cells.append(_cell(r[m], note=note))
        body.append(cells)
    return _table(["λ", "seeds", *(METRICS[m] for m in shown)], body, cls="metrics")


def _figure(title: str, caption: str, paths: list[Path], dest: Path) -> dict[str, Any]:
    png = next(p for p in paths if p.suffix == ".png")
    svg = next((p for p in paths if p.suffix == ".svg"), None)
    link = None
    if svg is not None:
        link = str(svg.relative_to(dest) if svg.is_relative_to(dest) else svg)
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    return {"title": title, "caption": caption, "png": encoded, "svg": link}


#: Section titles of the kinds besides sweeps.
KIND_TITLES = {
    "phase": "Phase diagram",
    "surface": "Critical surface",
    "stability": "Belief stability",
    "lockin": "Lock-in",
    "live": "Live rate limit",
    "bench": "Benchmark",
    "suite": "swa-bench suite",
    "guard": "Client policies on a live rate limit",
}


def _study_section(e: Experiment, a: Analysis, dest: Path) -> dict[str, Any]:
    title = KIND_TITLES.get(a.kind, a.kind) + ("" if e.name == "." else f" — {e.name}")
    return {
        "title": title,
        "text": a.text,
        "table": _records_table(a.rows),
        "figures": [_figure(t, c, paths, dest) for t, c, paths in a.figures],
    }


def _html(
    results: Results,
    data: dict[str, Any],
    made: list[tuple[str, str, list[Path]]],
    studies: list[tuple[Experiment, Analysis]],
    dest: Path,
) -> str:
    import jinja2

    sections: list[dict[str, Any]] = []
    if data["transitions"]:
        sections.append(
            {
                "title": "Where each system switches",
                "text": "λ_c: where the non-increasing fit of the seed-mean overload rate crosses "
                "0.5, interpolated between the grid λ either side; 95 % CI: stratified bootstrap "
                "over seeds (an end the data cannot bound shows as ∞). Predicted: the scorer's "
                "own switch, λ̃ for the paper scorer and λ* for the consistent one "
                "(docs/theory.md).",
                "table": _threshold_table(data["transitions"]),
            }
        )
        sections.append(
            {
                "title": "Figures",
                "figures": [_figure(t, c, paths, dest) for t, c, paths in made],
                "empty": None if made else "(no figure: nothing to draw)",
            }
        )
    sections += [_study_section(e, a, dest) for e, a in studies]
    if results.curves:
        sections.append(
            {
                "title": "Metrics per λ (mean [95 % CI] over seeds)",
                "details": [
                    {
                        "summary": f"{m['label']} — {figures.game_title(c.params)}",
                        "table": _metrics_table(m["rows"]),
                    }
                    for c, m in zip(results.curves, data["metrics"], strict=True)
                ],
            }
        )
        sections.append({"title": "Accounting", "table": _records_table(data["accounting"])})
    sections.append(
        {
            "title": "What ran",
            "details": [
                d
                for e, summary in zip(results.experiments, data["experiments"], strict=True)
                for d in (
                    {"summary": f"{e.name}: experiment.yaml ({e.kind})", "text": e.config_yaml},
                    {"summary": f"{e.name}: manifest", "text": dumps(summary)},
                )
            ],
        }
    )
    warnings = [
        f"{e.name}: {e.finished} of {e.planned} cells finished; the report covers those only "
        "(rerun the experiment to finish it)."
        for e in results.experiments
        if e.finished < e.planned
    ]
    warnings += [
        f"{e.name}: cell {key} ({json_text(f.get('assignment'))}) failed: {f.get('error')}"
        for e in results.experiments
        for key, f in ResultStore(e.root).failures().items()
    ]
    warnings += parse_warnings(results.root)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("swalab.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    overview = f"{len(results.curves)} systems and {len(studies)} other studies in " + (
        f"{len(results.experiments)} experiment(s)"
    )
    return env.get_template("report.html.j2").render(
        root=str(results.root),
        generated=data["generated"],
        version=__version__,
        overview=overview,
        warnings=warnings,
        sections=[_complete(s) for s in sections],
    )


def _complete(section: dict[str, Any]) -> dict[str, Any]:
    """Every key the template reads (StrictUndefined refuses a missing one)."""
    details = [{"table": None, "text": ""} | d for d in section.get("details", [])]
    base: dict[str, Any] = {"text": "", "table": None, "figures": [], "empty": None}
    return base | section | {"details": details}


#: The columns of the switch table a command prints.
HEADLINE_COLUMNS = (
    "experiment",
    "model",
    "scorer",
    "beta",
    "lambda_c",
    "ci_low",
    "ci_high",
    "lambda_star",
    "lambda_tilde",
    "status",
)


def headline(root: str | Path, *, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """What a run says when it ends, without writing anything: per study its table.

    Sweeps give their switch table (λ_c with its interval beside λ* and λ̃); every other
    kind its own rows (:func:`swalab.analysis.maps.analyse` without figures).
    """
    results = load_results(root)
    out: dict[str, list[dict[str, Any]]] = {}
    if results.curves:
        transitions = [
            estimate_transition(*c.per_episode("overload_rate"), seed=seed) for c in results.curves
        ]
        rows = transition_rows(results, transitions)
        out["Where each system switches (λ_c, 95 % CI)"] = [
            {k: r[k] for k in HEADLINE_COLUMNS} for r in rows
        ]
    for e in results.experiments:
        if e.kind != "sweep" and e.finished:
            out[f"{e.kind}: {e.name}"] = analyse(e.root, draw=False).rows
    return out

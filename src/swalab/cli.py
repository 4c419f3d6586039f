"""The ``swalab`` command line: thin Typer commands over the library, no logic of their own.

Every failure a user can cause (a bad flag, an out-of-range parameter) ends with one line
on stderr, ``swalab: error: …``, and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from swalab import __version__
from swalab._json import json_safe
from swalab._validate import rename_field

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Socially-Weighted Alignment: thresholds, equilibria and SWI simulations.",
)

REFERENCE_LAMS = ",".join(f"{i * 0.05:.2f}" for i in range(21))


class UserError(Exception):
    """A problem with the user's input, reported as one line with exit code 2."""


def _numbers(flag: str, text: str) -> list[float]:
    """Parse a comma-separated list of numbers, naming ``flag`` if an item is not one."""
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        raise UserError(f"{flag}={text!r} is not a comma-separated list of numbers")
    out = []
    for s in items:
        try:
            out.append(float(s))
        except ValueError:
            raise UserError(f"{flag}: {s!r} is not a number") from None
    return out


def _per_agent(flag: str, text: str | None) -> float | list[float] | None:
    """Parse one number (for every agent) or one per agent."""
    if text is None:
        return None
    values = _numbers(flag, text)
    return values[0] if len(values) == 1 else values


def _emit(result: dict[str, Any] | list[dict[str, Any]], as_json: bool, title: str) -> None:
    """Print ``result`` as JSON, or as a table: one row per item, or key/value rows."""
    if as_json:
        typer.echo(json.dumps(json_safe(result), indent=2))
        return
    table = Table(title=title)
    if isinstance(result, dict):
        table.add_column("quantity")
        table.add_column("value", justify="right")
        for key, value in result.items():
            table.add_row(key, _fmt(json_safe(value)))
    else:
        for key in result[0]:
            table.add_column(key, justify="right")
        for row in result:
            table.add_row(*(_fmt(json_safe(x)) for x in row.values()))
    Console(width=max(Console().width, 140)).print(table)


def _fmt(value: Any) -> str:
    """A cell of a rich table: numbers to 4 digits, text escaped (``[...]`` is not markup)."""
    from rich.markup import escape

    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return escape("[" + ", ".join(_fmt(x) for x in value) + "]")
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {_fmt(x)}" for k, x in value.items()))
    return "n/a" if value is None else escape(str(value))


Agents = Annotated[int, typer.Option("--agents", help="Number of agents N (≥ 2).")]
Beta = Annotated[float, typer.Option("--beta", help="Congestion severity β (> 0).")]
Capacity = Annotated[float, typer.Option("--capacity", help="Capacity C (> 0).")]
XMax = Annotated[float, typer.Option("--x-max", help="Largest demand x_max (> 0).")]
Margin = Annotated[float, typer.Option("--margin", help="Safety margin m of the scorer.")]
Gamma = Annotated[float, typer.Option("--gamma", help="Centering strength γ (0 = off).")]
Alpha = Annotated[float, typer.Option("--alpha", help="EMA smoothing α of the belief.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Weights = Annotated[
    str | None, typer.Option("--weights", help="Impacts w_i on the load, comma list.")
]
Values = Annotated[str | None, typer.Option("--values", help="Private values v_i, comma list.")]


@app.command()
def threshold(
    agents: Agents = 5,
    beta: Beta = 1.6,
    capacity: Capacity = 20.0,
    x_max: XMax = 10.0,
    margin: Margin = 2.0,
    gamma: Gamma = 0.02,
    alpha: Alpha = 0.2,
    lam_per_agent: Annotated[
        str | None,
        typer.Option("--lam-per-agent", help="λ_i, comma list (or one for all): the surface test."),
    ] = None,
    weights: Weights = None,
    values: Values = None,
    as_json: AsJson = False,
) -> None:
    """Print λ* (Theorem 1), λ̃ (the paper scorer's own switch), lock-in and belief stability.

    With per-agent impacts/values also each agent's own threshold λ*_i; with
    ``--lam-per-agent`` also the critical-surface test: which agents sit below their
    threshold (they play x_max) and whether the system escapes overload.
    """
    from swalab import theory

    result: dict[str, Any] = {
        "lambda_star": theory.lambda_star(agents, beta),
        "lambda_tilde": theory.lambda_tilde(capacity, beta, x_max, margin),
        "effective_capacity": theory.effective_capacity(capacity, margin),
        "lockin_load": theory.lockin_load(capacity, beta, margin, gamma),
        "lockin_belief": theory.lockin_belief(agents, capacity, beta, margin, gamma),
        "belief_contraction": theory.belief_contraction(alpha, agents),
        "belief_stable": theory.belief_stable(alpha, agents),
    }
    if lam_per_agent is not None or weights is not None or values is not None:
        result |= _surface_terms(
            agents, beta, capacity, x_max, _per_agent("--lam-per-agent", lam_per_agent),
            _per_agent("--weights", weights), _per_agent("--values", values),
        )  # fmt: skip
    _emit(result, as_json, f"Thresholds (N={agents}, β={beta:g}, C={capacity:g})")


def _surface_terms(
    agents: int,
    beta: float,
    capacity: float,
    x_max: float | list[float],
    lam: float | list[float] | None,
    weights: float | list[float] | None,
    values: float | list[float] | None,
) -> dict[str, Any]:
    """Per-agent thresholds and, given λ_i, the critical-surface test (SPEC §3)."""
    from swalab import _validate as v
    from swalab import theory

    out: dict[str, Any] = {
        "per_agent_thresholds": theory.per_agent_thresholds(
            agents, beta, weights=weights, values=values
        )
    }
    if lam is None:
        return out
    try:
        lam_arr = v.per_agent("lam", lam, agents, 0.0, check="unit_interval")
    except ValueError as exc:
        raise UserError(rename_field(str(exc), {"lam": "--lam-per-agent"})) from None
    w = v.per_agent("weights", weights, agents, 1.0)
    xm = v.per_agent("x_max", x_max, agents, 1.0)
    below = lam_arr < out["per_agent_thresholds"]
    out |= {
        "sub_threshold_agents": np.flatnonzero(below),
        "sub_threshold_load": float(np.sum(w[below] * xm[below])),
        "escapes_overload": theory.escapes_overload(
            lam_arr, n_agents=agents, capacity=capacity, beta=beta, x_max=x_max,
            weights=weights, values=values,
        ),
    }  # fmt: skip
    return out


@app.command()
def equilibrium(
    lam: Annotated[
        str,
        typer.Option(
            "--lam", "--lam-per-agent", help="Social weight: one for all agents, or one per agent."
        ),
    ],
    agents: Agents = 5,
    beta: Beta = 1.6,
    capacity: Capacity = 20.0,
    x_max: Annotated[
        str, typer.Option("--x-max", help="Largest demand: one, or one per agent.")
    ] = "10",
    weights: Weights = None,
    values: Values = None,
    as_json: AsJson = False,
) -> None:
    """Solve the SWA game's Nash equilibrium (checked against every best response)."""
    from swalab import theory

    params: dict[str, Any] = {
        "n_agents": agents,
        "capacity": capacity,
        "beta": beta,
        "x_max": _per_agent("--x-max", x_max),
        "weights": _per_agent("--weights", weights),
        "values": _per_agent("--values", values),
    }
    lams = _numbers("--lam", lam)
    lam_value: float | list[float] = lams[0] if len(lams) == 1 else lams
    eq = theory.solve_equilibrium(lam_value, **params)
    result = {
        "demands": eq.demands,
        "load": eq.load,
        "welfare": eq.welfare,
        "overloaded": eq.overloaded,
        "thresholds": eq.thresholds,
        **_surface_terms(
            agents, beta, capacity, params["x_max"], lam_value, params["weights"], params["values"]
        ),
        "optimal_welfare": theory.optimal_welfare(**params),
        "price_of_anarchy": theory.price_of_anarchy(lam_value, **params),
    }
    _emit(result, as_json, "Nash equilibrium")


@app.command()
def simulate(
    agents: Agents = 5,
    capacity: Capacity = 20.0,
    beta: Beta = 1.6,
    x_max: XMax = 10.0,
    steps: Annotated[int, typer.Option("--steps", help="Horizon T.")] = 20,
    k: Annotated[int, typer.Option("--k", help="Random candidates per agent and step.")] = 7,
    grid_step: Annotated[float, typer.Option("--grid-step", help="Demand grid spacing.")] = 0.25,
    candidates: Annotated[
        str, typer.Option("--candidates", help="grid (whole grid) or random (k draws).")
    ] = "grid",
    anchors: Annotated[str, typer.Option("--anchors", help="Anchor candidates.")] = ("0,2,3,4,4.5"),
    scorer: Annotated[str, typer.Option("--scorer", help="paper or consistent.")] = "paper",
    margin: Margin = 2.0,
    gamma: Gamma = 0.02,
    alpha: Alpha = 0.2,
    initial_belief: Annotated[
        float | None, typer.Option("--initial-belief", help="μ̂₀ (default C/N).")
    ] = None,
    lam: Annotated[str, typer.Option("--lam", help="Social weights to sweep.")] = REFERENCE_LAMS,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per λ (0, 1, …).")] = 20,
    engine: Annotated[
        str, typer.Option("--engine", help="lockstep (compiled batch) or loop (per agent).")
    ] = "lockstep",
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="LLM backend (llamacpp, openai, transformers, vllm): "
            "proposals come from the model instead of --candidates.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Preset name, GGUF path or model id.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Server URL (openai backend).")
    ] = None,
    structured: Annotated[
        str | None,
        typer.Option(
            "--structured", help="openai backend: none, llamacpp, vllm, vllm-legacy, openai."
        ),
    ] = None,
    selector: Annotated[
        str, typer.Option("--selector", help="code (argmax) or llm (model picks a row).")
    ] = "code",
    fallback: Annotated[
        str, typer.Option("--fallback", help="On unusable proposals: anchors, grid or fail.")
    ] = "anchors",
    temperature: Annotated[
        float, typer.Option("--temperature", help="Proposal temperature.")
    ] = 0.7,
    cache: Annotated[
        str | None,
        typer.Option("--cache", help="Response cache file (default under ~/.cache/swalab)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the cache.")] = False,
    as_json: AsJson = False,
) -> None:
    """Run SWI episodes of congestion_v0 for each λ and seed (model-based or LLM-backed)."""
    from swalab import theory
    from swalab.swi import SimulationConfig
    from swalab.swi import simulate as run_sweep

    config = SimulationConfig(
        n_agents=agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        steps=steps,
        k=k,
        grid_step=grid_step,
        candidates=candidates,
        anchors=tuple(_numbers("--anchors", anchors)),
        scorer=scorer,
        margin=margin,
        gamma=gamma,
        alpha=alpha,
        initial_belief=initial_belief,
    )
    if backend is not None:
        options: dict[str, Any] = {}
        if base_url is not None:
            options["base_url"] = base_url
        if structured is not None:
            options["structured"] = structured
        _simulate_llm(config, _numbers("--lam", lam), seeds, backend, model, options,
                      selector=selector, fallback=fallback, temperature=temperature,
                      cache=cache, use_cache=not no_cache, as_json=as_json)  # fmt: skip
        return
    summaries = run_sweep(config, _numbers("--lam", lam), seeds, engine=engine)
    rows = [
        {
            "lam": s.lam,
            "overload_rate": s.overload_rate,
            "mean_welfare": s.mean_welfare,
            "delta_welfare": s.delta_welfare,
            "mean_load": s.mean_load,
            "fairness": s.fairness,
            "steps_to_stable": s.steps_to_stable,
        }
        for s in summaries
    ]
    if as_json:
        _emit(rows, True, "")
        return
    lam_star = theory.lambda_star(agents, beta)
    lam_tilde = theory.lambda_tilde(capacity, beta, x_max, margin)
    predicted = lam_tilde if scorer == "paper" else lam_star
    _emit(
        rows,
        False,
        f"SWI sweep: scorer={scorer}, candidates={candidates}, N={agents}, C={capacity:g}, "
        f"β={beta:g}, {seeds} seeds × T={steps}\n"
        f"λ*={lam_star:.4g} (Theorem 1), λ̃={lam_tilde:.4g} (paper scorer); "
        f"this scorer should switch at {predicted:.4g}",
    )


def _simulate_llm(
    config: Any, lams: list[float], seeds: int, backend: str, model: str | None,
    options: dict[str, Any], *, selector: str, fallback: str, temperature: float,
    cache: str | None, use_cache: bool, as_json: bool,
) -> None:  # fmt: skip
    """LLM-backed episodes (λ × seeds in lockstep) with per-episode accounting."""
    from swalab.llm.protocol import ProtocolConfig
    from swalab.llm.runner import run_llm_episodes
    from swalab.llm.stack import open_model

    protocol = ProtocolConfig(k=config.k, resolution=config.grid_step, selector=selector,
                              fallback=fallback, temperature=temperature)  # fmt: skip
    if seeds < 1:
        raise UserError(f"--seeds={seeds} is out of range: must be >= 1")
    stack = open_model(backend, model, cache=cache, use_cache=use_cache, **options)
    episodes = run_llm_episodes(config, stack.model, lams, range(seeds), protocol)
    rows = [ep.summary(config.capacity) for ep in episodes]
    totals = stack.counter.totals()
    totals["cache_hits"] = float(stack.cache.hits) if stack.cache else 0.0
    if as_json:
        _emit({"model": vars(stack.model.identity), "episodes": rows, "calls": totals}, True, "")
        return
    keep = ("lam", "seed", "status", "overload_rate", "mean_welfare", "mean_load",
            "proposal_failure_rate", "fallback_rate", "pick_agreement", "prompts",
            "tokens_in", "tokens_out", "latency_s", "cached")  # fmt: skip
    ident = stack.model.identity
    _emit(
        [{k: r.get(k) for k in keep} for r in rows],
        False,
        f"LLM SWI episodes: {ident.backend}/{ident.model}, selector={selector}, "
        f"N={config.n_agents}, T={config.steps}, K={config.k} proposals",
    )
    for ep in episodes:
        if ep.status != "ok":
            typer.echo(f"episode λ={ep.lam:g} seed={ep.seed} failed: {ep.error}")
    typer.echo(
        f"model calls: {totals['calls']:.0f} ({totals['prompts']:.0f} prompts, "
        f"{totals['tokens_in']:.0f} tokens in, {totals['tokens_out']:.0f} out, "
        f"{totals['latency_s']:.1f} s, {totals['tokens_out_per_s']:.1f} tok/s out); "
        f"cache hits: {totals['cache_hits']:.0f}"
    )


def _grid(flag: str, text: str) -> list[float]:
    """Parse ``start:stop:count`` (evenly spaced, ends included) or a comma list."""
    if ":" not in text:
        return _numbers(flag, text)
    parts = text.split(":")
    if len(parts) != 3:
        raise UserError(f"{flag}={text!r} must be start:stop:count or a comma list")
    start, stop = _numbers(flag, f"{parts[0]},{parts[1]}")
    try:
        count = int(parts[2])
    except ValueError:
        raise UserError(f"{flag}: count {parts[2]!r} is not an integer") from None
    if count < 1:
        raise UserError(f"{flag}: count {count} must be >= 1")
    return [start + (stop - start) * i / max(count - 1, 1) for i in range(count)]


@app.command()
def phase(
    lam: Annotated[str, typer.Option("--lam", help="λ grid: start:stop:count or list.")] = (
        "0:1:101"
    ),
    beta: Annotated[str, typer.Option("--beta", help="β grid: start:stop:count or list.")] = (
        "1:5:41"
    ),
    agents: Annotated[str, typer.Option("--agents", help="N, or a comma list of N.")] = "5",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per cell.")] = 100,
    steps: Annotated[int, typer.Option("--steps", help="Horizon T.")] = 100,
    scorer: Annotated[str, typer.Option("--scorer", help="paper or consistent.")] = "paper",
    candidates: Annotated[str, typer.Option("--candidates", help="random or grid.")] = "random",
    capacity: Capacity = 20.0,
    x_max: XMax = 10.0,
    margin: Margin = 2.0,
    gamma: Gamma = 0.02,
    alpha: Alpha = 0.2,
    out: Annotated[str, typer.Option("--out", help="Output directory.")] = "results/phase",
    as_json: AsJson = False,
) -> None:
    """Map overload rate and welfare over (λ, β[, N]); write Parquet and PNG/SVG heatmaps.

    For N other than 5 the capacity scales to keep C/N; the switching λ of each β column is
    printed beside λ* and λ̃.
    """
    import time
    from pathlib import Path

    from swalab.swi import SimulationConfig
    from swalab.swi.phase import phase_diagram, plot_phase, switch_points, write_table

    sizes = []
    for x in _numbers("--agents", agents):
        if not x.is_integer():
            raise UserError(f"--agents: {x!r} is not an integer")
        sizes.append(int(x))
    base = SimulationConfig(
        n_agents=int(sizes[0]), capacity=capacity, x_max=x_max, steps=steps,
        candidates=candidates, scorer=scorer, margin=margin, gamma=gamma, alpha=alpha,
    )  # fmt: skip
    start = time.perf_counter()
    table = phase_diagram(
        base, _grid("--lam", lam), _grid("--beta", beta), seeds=seeds, n_agents=sizes
    )
    seconds = time.perf_counter() - start
    out_dir = Path(out)
    parquet = write_table(table, out_dir / "phase.parquet")
    figures = plot_phase(table, out_dir)
    switches = switch_points(table)
    predicted = switches["lambda_tilde" if scorer == "paper" else "lambda_star"]
    gap = np.abs(switches["lambda_c"] - np.clip(predicted, 0, 1))
    result = {
        "table": str(parquet),
        "figures": [str(f) for f in figures],
        "cells": int(table["lam"].size),
        "seconds": seconds,
        "switch_vs_prediction_max_gap": float(np.nanmax(gap)) if np.isfinite(gap).any() else None,
        "switches": [
            {k: json_safe(float(switches[k][i])) for k in switches}
            for i in range(switches["beta"].size)
        ],
    }
    if as_json:
        _emit(result, True, "")
        return
    _emit(
        [{k: float(switches[k][i]) for k in switches} for i in range(switches["beta"].size)],
        False,
        f"Switching λ per β ({scorer} scorer; OR < 0.5 from λ_c on), {seconds:.2f} s",
    )
    typer.echo(f"table: {parquet}\nfigures: {', '.join(map(str, figures))}")


@app.command()
def surface(
    agents: Annotated[int, typer.Option("--agents", help="Number of agents N (≥ 2).")] = 10,
    capacity: Annotated[float, typer.Option("--capacity", help="Capacity C (> 0).")] = 40.0,
    beta: Annotated[float, typer.Option("--beta", help="Congestion severity β (> 0).")] = 3.0,
    x_max: XMax = 10.0,
    margin: Margin = 2.0,
    gamma: Gamma = 0.02,
    alpha: Annotated[
        float, typer.Option("--alpha", help="EMA smoothing α (< 2/N keeps beliefs stable).")
    ] = 0.1,
    lam_low: Annotated[
        str, typer.Option("--lam-low", help="λ grid of the low group: start:stop:count or list.")
    ] = "0:1:21",
    lam_high: Annotated[float, typer.Option("--lam-high", help="λ of the others.")] = 1.0,
    scorer: Annotated[str, typer.Option("--scorer", help="paper or consistent.")] = "consistent",
    candidates: Annotated[str, typer.Option("--candidates", help="grid or random.")] = "grid",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per cell.")] = 5,
    steps: Annotated[int, typer.Option("--steps", help="Horizon T.")] = 60,
    private: Annotated[
        bool,
        typer.Option("--private", help="Each agent observes the others' mean (own belief)."),
    ] = False,
    out: Annotated[str, typer.Option("--out", help="Output directory.")] = "results/surface",
    as_json: AsJson = False,
) -> None:
    """Map the critical surface: k of N agents at λ_low, the rest at λ_high, k = 0…N.

    Simulated overload beside two predictions: game theory (escape iff k·x_max ≤ C below
    λ*) and the SWI rule's own fixed point (its shared mean belief misjudges the others'
    load in a mixed population; it escapes only while the margin covers that error).
    Writes ``surface.parquet`` and ``surface.png``/``.svg``.
    """
    from pathlib import Path

    from swalab.swi import SimulationConfig
    from swalab.swi.phase import write_table
    from swalab.swi.surface import (
        agreement,
        critical_surface,
        plot_surface,
        swi_fixed_point_load,
    )

    base = SimulationConfig(
        n_agents=agents, capacity=capacity, beta=beta, x_max=x_max, steps=steps,
        candidates=candidates, scorer=scorer, margin=margin, gamma=gamma, alpha=alpha,
        private=private,
    )  # fmt: skip
    try:
        table = critical_surface(base, _grid("--lam-low", lam_low), lam_high=lam_high, seeds=seeds)
    except ValueError as exc:
        flags = {"lam_low": "--lam-low", "lam_high": "--lam-high"}
        raise UserError(rename_field(str(exc), flags)) from None
    out_dir = Path(out)
    parquet = write_table(table, out_dir / "surface.parquet")
    title = f"{scorer} scorer, N={agents}, C={capacity:g}, β={beta:g}, m={margin:g}, α={alpha:g}"
    figures = plot_surface(table, out_dir, title=title + (", private beliefs" if private else ""))
    nash, n_nash = agreement(table, "nash_overloaded")
    swi, n_swi = agreement(table, "swi_overloaded")
    result = {
        "table": str(parquet), "figures": [str(f) for f in figures],
        "cells": int(table["k"].size), "agreement_game_theory": nash,
        "interior_cells_game_theory": n_nash, "agreement_swi_fixed_point": swi,
        "interior_cells_swi_fixed_point": n_swi,
        "escape_up_to_k": {  # most agents below their switch that the system absorbs
            "game_theory": min(agents, int(capacity // x_max)),
            "swi_fixed_point": max(k for k in range(agents + 1)
                                   if swi_fixed_point_load(agents, capacity, margin, x_max, k)
                                   <= capacity),
        },
    }  # fmt: skip
    _emit(result, as_json, "Critical surface: simulation vs predictions")


@app.command()
def stability(
    alpha: Annotated[str, typer.Option("--alpha", help="α grid: start:stop:count or list.")] = (
        "0.025:0.5:20"
    ),
    agents: Annotated[str, typer.Option("--agents", help="Comma list of N.")] = (
        "2,3,4,5,6,8,10,12,16,20"
    ),
    lam: Annotated[float, typer.Option("--lam", help="λ of every agent.")] = 0.95,
    beta: Annotated[float, typer.Option("--beta", help="Congestion severity β (> 0).")] = 3.0,
    per_agent: Annotated[float, typer.Option("--capacity-per-agent", help="C/N.")] = 4.0,
    margin: Margin = 2.0,
    scorer: Annotated[str, typer.Option("--scorer", help="paper or consistent.")] = "paper",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per cell.")] = 5,
    steps: Annotated[int, typer.Option("--steps", help="Horizon T.")] = 60,
    out: Annotated[str, typer.Option("--out", help="Output directory.")] = "results/stability",
    as_json: AsJson = False,
) -> None:
    """Map belief stability over (α, N) at a λ far above the switch, against α < 2/N.

    An unstable shared EMA makes the load swing around capacity (a two-cycle: half the
    steps overloaded) whatever λ is. Writes ``stability.parquet`` and ``stability.png``/
    ``.svg``.
    """
    from pathlib import Path

    from swalab.swi import SimulationConfig
    from swalab.swi.phase import write_table
    from swalab.swi.stability import agreement, belief_stability_map, plot_plane

    try:
        ns = [int(x) for x in agents.split(",")]
    except ValueError:
        raise UserError(f"--agents={agents!r} must be a comma list of integers") from None
    base = SimulationConfig(beta=beta, margin=margin, steps=steps, scorer=scorer,
                            candidates="grid")  # fmt: skip
    try:
        table = belief_stability_map(_grid("--alpha", alpha), ns, base=base, lam=lam,
                                     capacity_per_agent=per_agent, seeds=seeds)  # fmt: skip
    except ValueError as exc:
        raise UserError(rename_field(str(exc), {"alphas": "--alpha", "n_agents": "--agents",
                                                "capacity_per_agent": "--capacity-per-agent"})
                        ) from None  # fmt: skip
    out_dir = Path(out)
    n_grid = np.linspace(max(min(ns), 2.0 / float(table["alpha"].max())), max(ns), 200)
    figures = plot_plane(
        table, "n_agents", "alpha", "predicted_stable", out_dir, stem="stability",
        xlabel=f"agents N (C = {per_agent:g}·N)", ylabel="EMA smoothing α",
        title=f"{scorer} scorer at λ = {lam:g}, β = {beta:g}, m = {margin:g}, T = {steps}",
        prediction="α = 2/N (closed form)", curve=(n_grid, 2.0 / n_grid),
    )  # fmt: skip
    unstable = table["late_overload_rate"] >= 0.25
    result = {
        "table": str(write_table(table, out_dir / "stability.parquet")),
        "figures": [str(f) for f in figures], "cells": int(table["alpha"].size),
        "agreement": agreement(table, "predicted_stable", cut=0.25, invert=True),
        "unstable_cells": int(unstable.sum()),
        "two_cycle_cells": int(np.isclose(table["late_overload_rate"], 0.5).sum()),
    }  # fmt: skip
    _emit(result, as_json, "Belief stability: simulation vs α < 2/N")


@app.command()
def lockin(
    belief: Annotated[
        str, typer.Option("--initial-belief", help="μ̂₀ grid: start:stop:count or list.")
    ] = "0:10.5:22",
    lam: Annotated[str, typer.Option("--lam", help="λ grid: start:stop:count or list.")] = (
        "0:1:21"
    ),
    agents: Annotated[int, typer.Option("--agents", help="Number of agents N (≥ 2).")] = 5,
    capacity: Annotated[float, typer.Option("--capacity", help="Capacity C (> 0).")] = 20.0,
    beta: Annotated[float, typer.Option("--beta", help="Congestion severity β (> 0).")] = 1.6,
    x_max: XMax = 10.0,
    margin: Margin = 2.0,
    gamma: Gamma = 0.02,
    scorer: Annotated[str, typer.Option("--scorer", help="paper or consistent.")] = "paper",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per cell.")] = 5,
    steps: Annotated[int, typer.Option("--steps", help="Horizon T.")] = 40,
    out: Annotated[str, typer.Option("--out", help="Output directory.")] = "results/lockin",
    as_json: AsJson = False,
) -> None:
    """Map lock-in over (initial belief μ̂₀, λ) against the closed-form lock-in belief.

    Defaults are the reference configuration. Writes ``lockin.parquet`` and
    ``lockin.png``/``.svg``.
    """
    from pathlib import Path

    from swalab.swi import SimulationConfig
    from swalab.swi.phase import write_table
    from swalab.swi.stability import agreement, lockin_map, plot_plane

    try:
        base = SimulationConfig(n_agents=agents, capacity=capacity, beta=beta, x_max=x_max,
                                margin=margin, gamma=gamma, scorer=scorer, steps=steps)  # fmt: skip
        table = lockin_map(_grid("--initial-belief", belief), _grid("--lam", lam), base=base,
                           seeds=seeds)  # fmt: skip
    except ValueError as exc:
        raise UserError(rename_field(str(exc), {**_FLAGS, "initial_beliefs": "--initial-belief",
                                                "lams": "--lam"})) from None  # fmt: skip
    out_dir = Path(out)
    locked_from = float(table["lockin_belief"][0])
    figures = plot_plane(
        table, "initial_belief", "lam", "predicted_locked", out_dir, stem="lockin",
        xlabel="initial belief μ̂₀", ylabel="λ",
        title=f"{scorer} scorer, N={agents}, C={capacity:g}, β={beta:g}, m={margin:g}, "
        f"γ={gamma:g}", prediction="closed form: λ < switch, or μ̂₀ ≥ lock-in belief",
    )  # fmt: skip
    result = {
        "table": str(write_table(table, out_dir / "lockin.parquet")),
        "figures": [str(f) for f in figures], "cells": int(table["lam"].size),
        "lockin_belief": locked_from if np.isfinite(locked_from) else None,
        "switch": float(table["switch"][0]),
        "agreement": agreement(table, "predicted_locked"),
    }  # fmt: skip
    _emit(result, as_json, "Lock-in: simulation vs closed form")


@app.command()
def live(
    lam: Annotated[str, typer.Option("--lam", help="Comma list of λ (one episode each).")] = (
        "0,1"
    ),
    retry: Annotated[
        int, typer.Option("--retry", help="Naive-retry clients (replace SWA agents).")
    ] = 0,
    steps: Annotated[int, typer.Option("--steps", help="Steps per episode.")] = 20,
    step_s: Annotated[float, typer.Option("--step-seconds", help="Seconds per step.")] = 0.5,
    refill: Annotated[str, typer.Option("--refill", help="interval or continuous.")] = "interval",
    as_json: AsJson = False,
) -> None:
    """Drive a live rate-limited HTTP server on 127.0.0.1 with SWA agents (rate_limit_v0).

    The server is started for each episode and stopped after it; every step's calls go out
    concurrently, and the measured 200s/429s/lockouts are printed beside the pure model's
    prediction for the same calls.
    """
    from swalab import envs
    from swalab.swi.dilemma import DilemmaAgents
    from swalab.swi.live import play_live

    try:
        dyn = envs.dynamics("rate_limit_v0", steps=steps)
    except ValueError as exc:
        raise UserError(f"--{exc}") from None
    n = dyn.n_agents
    if not 0 <= retry <= n:
        raise UserError(f"--retry={retry} is out of range: must lie in 0..{n}")
    agents = DilemmaAgents(kinds=("swi",) * (n - retry) + ("retry",) * retry,
                           demands=(float("nan"),) * (n - retry) + (8.0,) * retry)  # fmt: skip
    rows = []
    for value in _numbers("--lam", lam):
        if not 0 <= value <= 1:
            raise UserError(f"--lam={value} is out of range: must lie in [0, 1]")
        try:
            r = play_live(dyn, value, 0, agents, step_s=step_s, refill=refill)  # type: ignore[arg-type]
        except ValueError as exc:
            raise UserError(f"--{exc}".replace("--step_s", "--step-seconds")) from None
        rows.append({
            "lam": value, "calls": int(r.actions.sum()),
            "ok_measured": int(r.measured_ok.sum()), "ok_model": float(r.predicted_ok.sum()),
            "429_measured": int(r.measured_429.sum()),
            "429_model": float(r.predicted_429.sum()),
            "locked_measured": int(r.measured_locked.sum()),
            "locked_model": int(r.predicted_locked.sum()), "late_calls": r.late_calls,
        })  # fmt: skip
    _emit(rows, as_json, f"Live rate limit on 127.0.0.1 ({refill} refill, {steps} steps)")


@app.command()
def run(
    config: Annotated[str, typer.Argument(help="YAML config file, or a preset name.")],
    out: Annotated[
        str | None, typer.Option("--out", help="Output directory (default: the config's).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: dotted.key=value (repeatable)."),
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="local (processes) or ray.")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (default: local).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Local processes.")] = None,
    as_json: AsJson = False,
) -> None:
    """Run a sweep: every cell of the grid, stored as Parquet; a rerun resumes it."""
    from swalab.experiments import load_config, preset_path, run_experiment

    overrides = list(set_ or [])
    for key, value in (("kind", executor), ("address", address), ("workers", workers)):
        if value is not None:
            overrides.append(f"executor.{key}={value}")
    path = preset_path(config)
    cfg = load_config(path, overrides)
    summary = run_experiment(cfg, out=out, source=str(path), show_progress=not as_json)
    _report_run(summary, as_json)


def _report_run(summary: Any, as_json: bool) -> None:
    result = {
        "out": str(summary.out),
        "planned_cells": summary.planned,
        "finished_before": summary.skipped,
        "ran": summary.ran,
        "failed": len(summary.failed),
        "seconds": summary.seconds,
    }
    _emit(result, as_json, f"Sweep {summary.out}")
    for key, error in summary.failed:
        typer.echo(f"swalab: cell {key} failed: {error}", err=True)
    if summary.failed:
        typer.echo(
            f"swalab: error: {len(summary.failed)} cell(s) failed (see {summary.out}/run.log); "
            f"rerun the same command to retry them",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def query(
    directory: Annotated[str, typer.Argument(help="A sweep's output directory.")],
    sql: Annotated[str, typer.Argument(help="SQL over the views steps and episodes.")],
    as_json: AsJson = False,
) -> None:
    """Run SQL (DuckDB) over a sweep's results: views ``steps`` and ``episodes``."""
    from swalab.experiments import query as run_query

    try:
        columns, rows = run_query(directory, sql)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    records = [dict(zip(columns, r, strict=True)) for r in rows]
    if as_json:
        typer.echo(json.dumps(json_safe(records), indent=2, default=str))
        return
    if not records:
        typer.echo("(no rows)" if columns else "(no result)")
        return
    _emit(records, False, f"{len(records)} row(s)")


_TRANSITION_COLUMNS = ("experiment", "model", "scorer", "beta", "lambda_c", "ci_low", "ci_high",
                       "lambda_star", "lambda_tilde", "status")  # fmt: skip


def _transition_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in _TRANSITION_COLUMNS} for r in rows]


@app.command()
def report(
    directory: Annotated[
        str, typer.Argument(help="A result directory, or a folder of them (replicate --out).")
    ],
    out: Annotated[
        str | None, typer.Option("--out", help="Where to write (default: DIRECTORY).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model whose load time series is drawn.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Write report.html (figures embedded), report.json and figures/ (PNG + SVG).

    The report puts each system's measured switch λ_c, with a bootstrap interval over
    seeds, beside λ* and λ̃, and tabulates every metric per λ with its interval.
    """
    from swalab.analysis.report import write_report

    try:
        rep = write_report(directory, out, model=model)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(json_safe({
            "report": str(rep.html), "json": str(rep.json),
            "figures": [str(f) for f in rep.figures], "transitions": rep.transitions,
        }), indent=2))  # fmt: skip
        return
    _emit(_transition_table(rep.transitions), False, "Where each system switches (λ_c, 95 % CI)")
    typer.echo(f"report: {rep.html}")


replicate_app = typer.Typer(help="Replicate a paper's results with the presets.")
app.add_typer(replicate_app, name="replicate")


@replicate_app.command("paper")
def replicate_paper(
    quick: Annotated[
        bool, typer.Option("--quick", help="Embedded Gemma 3 270M + model-based sweep.")
    ] = False,
    backend: Annotated[str | None, typer.Option("--backend", help="LLM backend.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="One model instead of the paper's five.")
    ] = None,
    out: Annotated[str, typer.Option("--out", help="Output root.")] = "results/replicate",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field of the LLM presets (repeatable)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run the SWA paper's presets (``--quick``: minutes on a CPU), then write the report.

    Ends by printing each system's measured switch beside λ* and λ̃ and the path of
    ``report.html`` (in ``--out``).
    """
    from swalab.replicate import replicate_paper as run_replication

    def started(name: str, where: Any) -> None:
        if not as_json:
            typer.echo(f"preset {name} → {where}", err=True)

    rep = run_replication(quick=quick, out=out, backend=backend, model=model,
                          overrides=tuple(set_ or ()), show_progress=not as_json,
                          on_start=started)  # fmt: skip
    failed = sum(len(r.failed) for r in rep.runs.values())
    if as_json:
        typer.echo(json.dumps(json_safe({
            "runs": {k: {"out": str(r.out), "planned_cells": r.planned, "ran": r.ran,
                         "finished_before": r.skipped, "failed": len(r.failed)}
                     for k, r in rep.runs.items()},
            "report": str(rep.report.html),
            "transitions": rep.report.transitions,
        }), indent=2))  # fmt: skip
    else:
        _emit(_transition_table(rep.report.transitions), False,
              "Where each system switches (λ_c, 95 % CI) beside λ* and λ̃")  # fmt: skip
        typer.echo(f"report: {rep.report.html}")
    if failed:
        typer.echo(f"swalab: error: {failed} cell(s) failed; rerun to retry them", err=True)
        raise typer.Exit(1)


bench_app = typer.Typer(help="Benchmarks: speed and memory, measured side by side.")
app.add_typer(bench_app, name="bench")


@bench_app.command("engine")
def bench_engine(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes, T=20 (smoke test).")] = (
        False
    ),
    as_json: AsJson = False,
) -> None:
    """Lockstep engine vs per-agent loop: decisions/s, ratio and peak memory per size."""
    from swalab.experiments.bench import engine_benchmark

    result = engine_benchmark(quick=quick)
    if as_json:
        _emit(result, True, "")
        return
    _emit(
        result["rows"],
        False,
        f"Engine vs per-agent loop (K=12). Best: {result['engine_decisions_per_s']:.3g} "
        f"decisions/s, {result['ratio']:.0f}× the loop",
    )


@bench_app.command("phase")
def bench_phase(
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per cell.")] = 100,
    steps: Annotated[int, typer.Option("--steps", help="Horizon T.")] = 100,
    as_json: AsJson = False,
) -> None:
    """Time a 101 λ × 41 β phase diagram (N=5) with the given seeds and horizon."""
    from swalab.experiments.bench import phase_benchmark

    _emit(phase_benchmark(seeds=seeds, steps=steps), as_json, "Phase diagram timing")


@bench_app.command("llm")
def bench_llm(
    quick: Annotated[bool, typer.Option("--quick", help="T=2 instead of 4.")] = False,
    backend: Annotated[str, typer.Option("--backend", help="LLM backend.")] = "llamacpp",
    model: Annotated[str | None, typer.Option("--model", help="Model (default embedded).")] = (
        None
    ),
    as_json: AsJson = False,
) -> None:
    """Reference protocol vs swalab's batched constrained protocol: decisions/s, failures."""
    from swalab.experiments.bench import llm_benchmark

    result = llm_benchmark(quick=quick, backend=backend, model=model)
    if as_json:
        _emit(result, True, "")
        return
    flat = {k: v for k, v in result.items() if k != "machine"}
    _emit(flat, False, f"LLM protocol benchmark: swalab is {result['ratio']:.1f}× the "
          f"reference's decisions/s")  # fmt: skip


@app.command()
def version() -> None:
    """Print swalab's version."""
    typer.echo(__version__)


#: Library argument names and the flags users type for them.
_FLAGS = {
    "n_agents": "--agents",
    "x_max": "--x-max",
    "grid_step": "--grid-step",
    "k": "--k",
    "initial_belief": "--initial-belief",
    "weights": "--weights",
    "values": "--values",
    "capacity": "--capacity",
    "beta": "--beta",
    "margin": "--margin",
    "gamma": "--gamma",
    "alpha": "--alpha",
    "engine": "--engine",
    "steps": "--steps",
    "seeds": "--seeds",
    "anchors": "--anchors",
    "lam": "--lam",
    "scorer": "--scorer",
    "candidates": "--candidates",
    "selector": "--selector",
    "fallback": "--fallback",
    "temperature": "--temperature",
    "backend": "--backend",
    "model": "--model",
    "structured": "--structured",
}


def _run(command: Callable[..., Any], args: Sequence[str]) -> int:
    try:
        command(args=list(args) or ["--help"], prog_name="swalab", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: unknown flag, wrong type, ...
        typer.echo(f"swalab: error: {exc.format_message()}", err=True)
        return 2
    except (UserError, ValueError, ImportError) as exc:
        typer.echo(f"swalab: error: {rename_field(str(exc), _FLAGS)}", err=True)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swalab`` script; returns the exit code."""
    command = typer.main.get_command(app)
    code = _run(command, sys.argv[1:] if argv is None else argv)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()

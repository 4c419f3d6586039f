"""Commands over study files and stores: run, query, report, replicate, bench."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from swalab._json import json_safe
from swalab.cli._common import (
    AsJson,
    UserError,
    app,
    emit,
    fail_on,
    integers,
    numbers,
    options,
    run_study,
    show_progress,
    stamp,
)

Opt = typer.Option


@app.command()
def run(
    config: Annotated[str, typer.Argument(help="YAML study file, or a preset name.")],
    out: Annotated[
        str | None, Opt("--out", help="Output directory (default: the config's).")
    ] = None,
    set_: Annotated[
        list[str] | None, Opt("--set", help="Override a field: dotted.key=value (repeatable).")
    ] = None,
    executor: Annotated[str | None, Opt("--executor", help="local (processes) or ray.")] = None,
    address: Annotated[
        str | None, Opt("--address", help="Ray cluster address (default: local).")
    ] = None,
    workers: Annotated[int | None, Opt("--workers", help="Local processes.")] = None,
    as_json: AsJson = False,
) -> None:
    """Run a study of any kind: every cell, stored as Parquet; a rerun resumes it."""
    from swalab.experiments import load_config, preset_path, run_experiment

    overrides = list(set_ or [])
    for key, value in (("kind", executor), ("address", address), ("workers", workers)):
        if value is not None:
            overrides.append(f"executor.{key}={value}")
    path = preset_path(config)
    cfg = load_config(path, overrides)
    summary = run_experiment(cfg, out=out, source=str(path), show_progress=show_progress(as_json))
    result: dict[str, Any] = {
        "out": str(summary.out),
        "kind": cfg.kind,
        "planned_cells": summary.planned,
        "finished_before": summary.skipped,
        "ran": summary.ran,
        "failed": len(summary.failed),
        "seconds": summary.seconds,
    }
    if summary.finished:
        from swalab.analysis.report import headline

        result["headline"] = headline(summary.out)
    if as_json:
        emit(result, True, "")
    else:
        emit({k: v for k, v in result.items() if k != "headline"}, False, f"Study {summary.out}")
        for title, rows in result.get("headline", {}).items():
            emit(rows, False, title)
    fail_on(summary)


@app.command()
def query(
    directory: Annotated[str, typer.Argument(help="A study's output directory.")],
    sql: Annotated[str, typer.Argument(help="SQL over the study's tables (views).")],
    as_json: AsJson = False,
) -> None:
    """Run SQL (DuckDB) over a study's tables, one view each.

    A sweep has `steps` and `episodes`, a phase diagram `phase`, and so on.
    """
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
    emit(records, False, f"{len(records)} row(s)")


def _transition_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from swalab.analysis.report import HEADLINE_COLUMNS

    return [{k: r[k] for k in HEADLINE_COLUMNS} for r in rows]


@app.command()
def report(
    directory: Annotated[
        str, typer.Argument(help="A result directory, or a folder of them (replicate --out).")
    ],
    out: Annotated[str | None, Opt("--out", help="Where to write (default: DIRECTORY).")] = None,
    model: Annotated[
        str | None, Opt("--model", help="Model whose load time series is drawn.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Write report.html (figures embedded), report.json and figures/ (PNG + SVG).

    Renders any kind of study. For sweeps it puts each system's measured switch λ_c, with a
    bootstrap interval over seeds, beside λ* and λ̃, and tabulates every metric per λ.
    """
    from swalab.analysis.report import write_report

    try:
        rep = write_report(directory, out, model=model)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if as_json:
        emit(
            {
                "report": str(rep.html),
                "json": str(rep.json),
                "figures": [str(f) for f in rep.figures],
                "transitions": rep.transitions,
                "studies": rep.studies,
            },
            True,
            "",
        )
        return
    if rep.transitions:
        emit(_transition_table(rep.transitions), False, "Where each system switches (λ_c)")
    for study in rep.studies:
        emit(study["rows"], False, f"{study['kind']}: {study['experiment']}")
    typer.echo(f"report: {rep.html}")


replicate_app = typer.Typer(help="Replicate a paper's results with the presets.")
app.add_typer(replicate_app, name="replicate")


@app.command()
def reveal(
    directory: Annotated[
        str, typer.Argument(help="A result directory, or a folder of them (replicate --out).")
    ],
    utility: Annotated[
        str, Opt("--utility", help="scorer (the configured SWI scorer), game (SWA's), or both.")
    ] = "both",
    resamples: Annotated[
        int, Opt("--resamples", help="Bootstrap resamples of the logit estimate.", min=10)
    ] = 200,
    as_json: AsJson = False,
) -> None:
    """The social weight each group of agents behaves with, beside the one it was told.

    Per cell and agent kind: the interval of λ at which every choice is an argmax, or,
    when no λ explains them all, a logit maximum-likelihood λ with a bootstrap CI
    (docs/theory.md, "Revealed λ"). Then the calibration slope of revealed on told λ.
    """
    from swalab.analysis.reveal import reveal_rows
    from swalab.experiments.revealed import COLUMNS, calibration

    choices = {"scorer": ("scorer",), "game": ("game",), "both": ("scorer", "game")}
    if utility not in choices:
        raise UserError(f"--utility={utility!r} is not known: choose scorer, game or both")
    try:
        rows = reveal_rows(directory, utilities=choices[utility], resamples=resamples)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if not rows:
        raise UserError(f"{directory}: no congestion-game decisions to reveal λ from")
    if as_json:
        emit(rows, True, "")
        return
    shown = [c for c in COLUMNS if c not in ("experiment", "mode", "scorer")]
    emit([{c: r[c] for c in shown} for r in rows], False, "Revealed λ (told: lam)")
    emit(calibration(rows), False, "Calibration: slope of revealed on told λ (1: calibrated)")


@replicate_app.command("paper")
def replicate_paper(
    quick: Annotated[
        bool, Opt("--quick", help="Embedded Gemma 3 270M + model-based sweeps.")
    ] = False,
    backend: Annotated[str | None, Opt("--backend", help="LLM backend.")] = None,
    model: Annotated[
        str | None, Opt("--model", help="One model instead of the paper's five.")
    ] = None,
    out: Annotated[str, Opt("--out", help="Output root.")] = "results/replicate",
    set_: Annotated[
        list[str] | None, Opt("--set", help="Override a field of the LLM presets (repeatable).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run the SWA paper's presets (`--quick`: minutes on a CPU), then write the report.

    Ends by printing each system's measured switch beside λ* and λ̃ and the path of
    report.html (in `--out`).
    """
    from swalab.replicate import replicate_paper as run_replication

    def started(name: str, where: Any) -> None:
        if not as_json:
            typer.echo(f"preset {name} → {where}", err=True)

    rep = run_replication(
        quick=quick,
        out=out,
        backend=backend,
        model=model,
        overrides=tuple(set_ or ()),
        show_progress=show_progress(as_json),
        on_start=started,
    )
    failed = sum(len(r.failed) for r in rep.runs.values())
    if as_json:
        runs = {
            k: {
                "out": str(r.out),
                "planned_cells": r.planned,
                "ran": r.ran,
                "finished_before": r.skipped,
                "failed": len(r.failed),
            }
            for k, r in rep.runs.items()
        }
        emit(
            {"runs": runs, "report": str(rep.report.html), "transitions": rep.report.transitions},
            True,
            "",
        )
    else:
        emit(
            _transition_table(rep.report.transitions),
            False,
            "Where each system switches (λ_c, 95 % CI) beside λ* and λ̃",
        )
        typer.echo(f"report: {rep.report.html}")
    if failed:
        typer.echo(f"swalab: error: {failed} cell(s) failed; rerun to retry them", err=True)
        raise typer.Exit(1)


bench_app = typer.Typer(help="Benchmarks: speed and memory, measured side by side.")
app.add_typer(bench_app, name="bench")


def _bench(settings: dict[str, tuple[str, Any]], out: str | None, as_json: bool) -> dict[str, Any]:
    """Run a benchmark study (a fresh directory unless `--out` names one) and analyse it."""
    from swalab.analysis.maps import analyse

    benchmark = settings["benchmark"][1]
    where = run_study(
        "bench",
        settings,
        out=out or f"results/bench/{benchmark}-{stamp()}",
        as_json=as_json,
        name=f"bench_{benchmark}",
    )
    summary: dict[str, Any] = analyse(where).summary
    return summary


@bench_app.command("engine")
def bench_engine(
    quick: Annotated[bool, Opt("--quick", help="Small sizes, T=20 (a smoke run).")] = False,
    out: Annotated[str | None, Opt("--out", help="Output directory.")] = None,
    as_json: AsJson = False,
) -> None:
    """Lockstep engine vs per-agent loop: decisions/s, ratio and peak memory per size."""
    settings = {"benchmark": ("", "engine"), "quick": ("--quick", quick)}
    result = _bench(settings, out, as_json)
    if as_json:
        emit(result, True, "")
        return
    emit(
        result["rows"],
        False,
        f"Engine vs per-agent loop (K=12). Best: {result['engine_decisions_per_s']:.3g} "
        f"decisions/s, {result['ratio']:.0f}× the loop",
    )
    typer.echo(
        f"value drift: {result['drift_agents']:,} agents × {result['drift_rounds']:,} rounds "
        f"(T = {result['drift_steps']}) in {result['drift_seconds']:.1f} s, "
        f"{result['drift_decisions_per_s']:.3g} decisions/s"
    )


@bench_app.command("phase")
def bench_phase(
    seeds: Annotated[int, Opt("--seeds", help="Seeds per cell.")] = 100,
    steps: Annotated[int, Opt("--steps", help="Horizon T.")] = 100,
    out: Annotated[str | None, Opt("--out", help="Output directory.")] = None,
    as_json: AsJson = False,
) -> None:
    """Time a 101 λ × 41 β phase diagram (N=5) with the given seeds and horizon."""
    settings = {
        "benchmark": ("", "phase"),
        "seeds": ("--seeds", seeds),
        "steps": ("--steps", steps),
    }
    result = _bench(settings, out, as_json)
    emit({k: v for k, v in result.items() if k != "rows"}, as_json, "Phase diagram timing")


#: ``swalab bench suite --quick``: one congestion game (T = 3) and the rate limit (T = 4, no
#: table-picking mode), a coarse grid, one refinement round, one seed, one outsider share,
#: one mixed population.
QUICK_SUITE: dict[str, Any] = {
    "betas": [1.6],
    "lam": [0.0, 0.5, 1.0],
    "rounds": 1,
    "seeds": 1,
    "game.steps": 3,
    "outsiders": [0.4],
    "dilemmas": ["rate_limit_v0"],
    "dilemma_steps": 4,
    "dilemma_modes": ["swi", "prompted"],
    "mixed": ["swi"],
}


def suite_model(text: str) -> dict[str, Any]:
    """A ``--model`` of the suite as a model section.

    ``NAME`` or a GGUF path runs on llama.cpp; ``BACKEND:NAME`` picks another backend; an
    ``http(s)://…/v1`` URL (``#NAME`` to name the served model) is an OpenAI-compatible
    server, asked on its chat endpoint.
    """
    from swalab.llm.registry import BACKENDS

    if text.startswith(("http://", "https://")):
        url, _, name = text.partition("#")
        return {
            "backend": "openai",
            "name": name or None,
            "options": {"base_url": url, "endpoint": "chat", "structured": "auto"},
        }
    backend, sep, name = text.partition(":")
    if sep and backend in BACKENDS:
        return {"backend": backend, "name": name}
    return {"backend": "llamacpp", "name": text}


@bench_app.command("suite")
def bench_suite(
    model: Annotated[
        list[str] | None,
        Opt(
            "--model",
            help="A model to score (repeat): a preset or GGUF path, BACKEND:NAME, or an "
            "OpenAI-compatible URL (…/v1#served-name). Default: both embedded models.",
        ),
    ] = None,
    quick: Annotated[bool, Opt("--quick", help="One game, coarse grid, one seed.")] = False,
    set_: Annotated[
        list[str] | None,
        Opt("--set", help="Override a suite field: dotted.key=value (repeatable)."),
    ] = None,
    out: Annotated[str | None, Opt("--out", help="Output directory (resumes).")] = None,
    as_json: AsJson = False,
) -> None:
    """swa-bench: score each model in every agent mode beside scripted baselines.

    Writes the scorecards (Parquet, resumable) and leaderboard.html to the output
    directory; `--json` prints {"scorecards": [...], "leaderboard": path}.
    """
    from swalab.analysis.leaderboard import write_leaderboard
    from swalab.analysis.maps import analyse
    from swalab.experiments.config import ConfigError, parse_override

    settings: dict[str, tuple[str, Any]] = {}
    if model:
        settings["models"] = ("--model", [suite_model(m) for m in model])
    if quick:
        settings |= {k: ("--quick", v) for k, v in QUICK_SUITE.items()}
    for text in set_ or ():
        try:
            key, value = parse_override(text)
        except ConfigError as exc:
            raise UserError(str(exc)) from None
        settings[key] = (f"--set {key}", value)
    name = "suite_quick" if quick else "suite"
    where = run_study("suite", settings, out=out or f"results/{name}", as_json=as_json, name=name)
    page = write_leaderboard([where], where / "leaderboard.html")
    result = analyse(where, draw=False)
    if as_json:
        emit({"scorecards": result.summary["scorecards"], "leaderboard": str(page)}, True, "")
        return
    emit(result.rows, False, f"swa-bench scorecards ({where})")
    typer.echo(f"leaderboard: {page}")


@bench_app.command("guard")
def bench_guard(
    clients: Annotated[str, Opt("--clients", help="Numbers of clients N.")] = "10,100,1000",
    behaviour: Annotated[
        str, Opt("--behaviour", help="Server behaviours: plain, retry_after, lockout (list).")
    ] = "retry_after",
    policy: Annotated[
        str | None, Opt("--policy", help="Policies (list; default: all of them).")
    ] = None,
    lam: Annotated[str, Opt("--lam", help="The SWA guard's λ (list).")] = "0,1",
    seeds: Annotated[int | None, Opt("--seeds", help="Runs per point (3).")] = None,
    duration: Annotated[
        float | None, Opt("--duration", help="Seconds calls arrive for (12).")
    ] = None,
    mixed: Annotated[
        str | None,
        Opt("--mixed", help="Shares (0, 1) of clients wearing the SWA guard among naive ones."),
    ] = None,
    clock: Annotated[
        str | None,
        Opt("--clock", help="live (a real server) or simulated (discrete events, fast)."),
    ] = None,
    out: Annotated[str | None, Opt("--out", help="Output directory (resumes).")] = None,
    as_json: AsJson = False,
) -> None:
    """Client policies on a live rate-limited server: the SWA guard against the baselines.

    Per behaviour and N, every policy (naive retry, backoff with full / equal /
    decorrelated jitter, a client token bucket, SRE adaptive throttling, the SWA guard at
    each --lam, alone and with its clients pooling one belief) plays the same seeded load
    (twice the limit) on a fresh server, once per seed: goodput, 429 share, locked windows,
    latency, fairness, the server's counters beside, pooled over seeds with 95 % intervals.
    A study of the `guard` kind: each run is stored as it ends, and the same command
    resumes an interrupted study. `--clock simulated` plays the same runs as discrete
    events (no server; seconds per run).
    """
    from swalab.analysis import write_report

    def words(text: str | None) -> list[str] | None:
        return None if text is None else [w.strip() for w in text.split(",") if w.strip()]

    settings = {
        "clients": ("--clients", integers("--clients", clients)),
        "behaviours": ("--behaviour", words(behaviour)),
        "policies": ("--policy", words(policy)),
        "lam": ("--lam", numbers("--lam", lam)),
        "seeds": ("--seeds", seeds),
        "duration_s": ("--duration", duration),
        "guarded": ("--mixed", None if mixed is None else [1.0, *numbers("--mixed", mixed)]),
        "clock": ("--clock", clock),
    }
    where = run_study("guard", settings, out=out, as_json=as_json)
    report = write_report(where)
    (result,) = report.studies
    summary = result["summary"]
    if as_json:
        emit(summary | {"report": str(report.html)}, True, "")
        return
    title = f"Client policies on a live limit ({summary['limit']} calls a window)"
    emit([r for r in result["rows"] if r["guarded"] == 1.0], False, title)
    if summary["mixed"]:
        keys = ("behaviour", "clients", "policy", "guarded", "seeds", "goodput_share")
        who = ("guarded_succeeded_per_client", "naive_succeeded_per_client")
        pays = ("guarded_rejected_per_client", "naive_rejected_per_client", "locked_runs")
        table = [{k: r[k] for k in (*keys, "reject_share", *who, *pays)} for r in summary["mixed"]]
        emit(table, False, "Guarded clients among naive ones: who pays")
    typer.echo(f"report: {report.html}")


@bench_app.command("llm")
def bench_llm(
    quick: Annotated[bool, Opt("--quick", help="T=2 instead of 4.")] = False,
    backend: Annotated[str, Opt("--backend", help="LLM backend.")] = "llamacpp",
    model: Annotated[str | None, Opt("--model", help="Model (default embedded).")] = None,
    agents: Annotated[
        str | None,
        Opt("--agents", help="Populations N at scale, e.g. 5,100,1000 (one episode each)."),
    ] = None,
    steps: Annotated[
        int | None, Opt("--steps", help="Steps per episode with --agents (2).")
    ] = None,
    cells: Annotated[
        int,
        Opt("--cells", help="With --agents: cells of a β sweep sharing each call (1)."),
    ] = 1,
    option: Annotated[
        list[str] | None,
        Opt("--option", help="Backend option KEY=VALUE (repeatable), e.g. dtype=bfloat16."),
    ] = None,
    out: Annotated[str | None, Opt("--out", help="Output directory.")] = None,
    as_json: AsJson = False,
) -> None:
    """Reference protocol vs swalab's batched constrained protocol: decisions/s, failures.

    With `--agents`, one episode per N (per cell with `--cells`): decisions/s beside the
    reference (asked on a sample of 10 agents above N = 10), tokens/s, prompt tokens
    evaluated, shared and naive, peak RSS. `--option` passes settings to the backend
    (transformers: `dtype=bfloat16`, `attention=padded`, `batch_size=512`).
    """
    settings = {
        "benchmark": ("", "llm"),
        "quick": ("--quick", quick),
        "backend": ("--backend", backend),
        "model": ("--model", model),
        "agents": ("--agents", None if agents is None else numbers("--agents", agents)),
        "steps": ("--steps", steps),
        "cells": ("--cells", cells),
        "options": ("--option", options("--option", option)),
    }
    result = _bench(settings, out, as_json)
    if as_json:
        emit(result, True, "")
        return
    title = f"LLM protocol benchmark: swalab is {result['ratio']:.1f}× the reference's decisions/s"
    if agents is not None:
        emit(result["rows"], False, title + f" at N = {result['agents']}")
        return
    emit({k: v for k, v in result.items() if k not in ("rows", "machine")}, False, title)

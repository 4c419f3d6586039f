"""Commands that run one study from their flags: simulate, the maps, live, drift, stance.

Each is flags → overrides of its kind's config → the library's run path (plan, store with
manifest and resume, report) → print. Defaults are the kind's defaults (the reference
configuration unless a study says otherwise); the same flags rerun resume the same store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from swalab._validate import unit_interval
from swalab.cli._common import (
    REFERENCE_LAMS,
    AsJson,
    Out,
    app,
    emit,
    grid,
    integers,
    numbers,
    run_study,
    shared,
)

Opt = typer.Option


def show(where: Path, as_json: bool, title: str) -> None:
    """Write a stored study's report; print its numbers (JSON, or a table) and the report."""
    from swalab.analysis import write_report

    report = write_report(where)
    (analysis,) = report.studies
    if as_json:
        emit(analysis["summary"] | {"report": str(report.html)}, True, "")
        return
    emit(analysis["rows"], False, title)
    typer.echo(f"report: {report.html}")


@app.command()
def simulate(
    agents: Annotated[int | None, Opt("--agents", help="Number of agents N (≥ 2).")] = None,
    capacity: Annotated[float | None, Opt("--capacity", help="Capacity C.")] = None,
    beta: Annotated[float | None, Opt("--beta", help="Congestion severity β.")] = None,
    x_max: Annotated[float | None, Opt("--x-max", help="Largest demand x_max.")] = None,
    steps: Annotated[int | None, Opt("--steps", help="Horizon T.")] = None,
    k: Annotated[int | None, Opt("--k", help="Random candidates per agent and step.")] = None,
    grid_step: Annotated[float | None, Opt("--grid-step", help="Demand grid spacing.")] = None,
    candidates: Annotated[
        str | None, Opt("--candidates", help="grid (whole grid) or random (k draws).")
    ] = None,
    anchors: Annotated[str | None, Opt("--anchors", help="Anchor candidates.")] = None,
    scorer: Annotated[str | None, Opt("--scorer", help="paper or consistent.")] = None,
    margin: Annotated[float | None, Opt("--margin", help="Safety margin m.")] = None,
    gamma: Annotated[float | None, Opt("--gamma", help="Centering strength γ.")] = None,
    alpha: Annotated[float | None, Opt("--alpha", help="EMA smoothing α.")] = None,
    initial_belief: Annotated[
        float | None, Opt("--initial-belief", help="μ̂₀ (default C/N).")
    ] = None,
    lam: Annotated[str, Opt("--lam", help="Social weights to sweep.")] = REFERENCE_LAMS,
    seeds: Annotated[int, Opt("--seeds", help="Seeds per λ (0, 1, …).")] = 20,
    engine: Annotated[
        str, Opt("--engine", help="lockstep (compiled batch) or loop (per agent).")
    ] = "lockstep",
    backend: Annotated[
        str | None,
        Opt("--backend", help="LLM backend: proposals come from the model, not --candidates."),
    ] = None,
    model: Annotated[str | None, Opt("--model", help="Preset name, GGUF path or model id.")] = None,
    base_url: Annotated[str | None, Opt("--base-url", help="Server URL (openai backend).")] = None,
    structured: Annotated[
        str | None, Opt("--structured", help="openai: none, llamacpp, vllm, vllm-legacy, openai.")
    ] = None,
    mode: Annotated[
        str | None,
        Opt("--mode", help="swi (the rule scores the model's proposals) or prompted (told λ)."),
    ] = None,
    selector: Annotated[
        str | None, Opt("--selector", help="code (argmax) or llm (the model picks a row).")
    ] = None,
    fallback: Annotated[
        str | None, Opt("--fallback", help="On unusable proposals: anchors, grid or fail.")
    ] = None,
    temperature: Annotated[float | None, Opt("--temperature", help="Proposal temperature.")] = None,
    cache: Annotated[str | None, Opt("--cache", help="Response cache file.")] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="Do not use the response cache.")] = False,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Sweep λ over seeds with the SWI rule on congestion_v0, model-based or LLM-backed.

    Prints per λ the seed means (with ΔW against λ = 0, run on the same seeds); with
    `--backend`, one row per episode with its failure rates and cost.
    """
    from swalab.analysis.results import episode_table, lambda_means

    lams = [unit_interval(f"--lam[{i}]", x) for i, x in enumerate(numbers("--lam", lam))]
    llm = backend is not None
    settings: dict[str, tuple[str, Any]] = shared(
        n_agents=agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        steps=steps,
        k=k,
        grid_step=grid_step,
        candidates="llm" if llm else candidates,
        anchors=None if anchors is None else numbers("--anchors", anchors),
        scorer=scorer,
        margin=margin,
        gamma=gamma,
        alpha=alpha,
        initial_belief=initial_belief,
        mode=mode,
        selector=selector,
        fallback=fallback,
        seeds=seeds,
    ) | {
        "grid.lam": ("--lam", lams if llm else [0.0, *lams]),
        "executor.engine": ("--engine", engine),
    }
    if llm:
        settings |= {
            "model.backend": ("--backend", backend),
            "model.name": ("--model", model),
            "model.options.base_url": ("--base-url", base_url),
            "model.options.structured": ("--structured", structured),
            "model.temperature": ("--temperature", temperature),
            "model.cache": ("--cache", False if no_cache else cache),
        }
    where = run_study("sweep", _deduplicated(settings), out=out, as_json=as_json, name="simulate")
    if llm:
        rows = episode_table(where)
        emit(rows, as_json, f"LLM SWI episodes: {backend}/{model or 'default'} ({where})")
        return
    rows = [r for r in lambda_means(where) if r["lam"] in lams]
    if as_json:
        emit(rows, True, "")
        return
    from swalab import theory
    from swalab.experiments import ExperimentConfig, load_config

    stored = load_config(where / "experiment.yaml")
    assert isinstance(stored, ExperimentConfig)
    g, p = stored.game, stored.policy
    cap = g.x_max
    assert isinstance(cap, float)  # one number from --x-max
    star = theory.lambda_star(g.n_agents, g.beta)
    tilde = theory.lambda_tilde(g.capacity, g.beta, cap, p.margin)
    predicted = theory.predicted_switch(
        p.scorer,
        n_agents=g.n_agents,
        capacity=g.capacity,
        beta=g.beta,
        x_max=cap,
        margin=p.margin,
    )
    emit(
        rows,
        False,
        f"SWI sweep: scorer={p.scorer}, candidates={p.candidates}, N={g.n_agents}, "
        f"C={g.capacity:g}, β={g.beta:g}, {seeds} seeds × T={g.steps}\n"
        f"λ*={star:.4g} (Theorem 1), λ̃={tilde:.4g} (paper scorer); "
        f"this scorer should switch at {predicted:.4g}",
    )
    typer.echo(f"results: {where}")


def _deduplicated(settings: dict[str, tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """The λ grid without repeats (λ = 0 is added for ΔW and may have been asked for)."""
    flag, lams = settings["grid.lam"]
    return settings | {"grid.lam": (flag, list(dict.fromkeys(lams)))}


@app.command()
def phase(
    lam: Annotated[str, Opt("--lam", help="λ grid: start:stop:count or list.")] = "0:1:101",
    beta: Annotated[str, Opt("--beta", help="β grid: start:stop:count or list.")] = "1:5:41",
    agents: Annotated[str | None, Opt("--agents", help="N, or a comma list of N.")] = None,
    seeds: Annotated[int | None, Opt("--seeds", help="Seeds per point (default 100).")] = None,
    steps: Annotated[int | None, Opt("--steps", help="Horizon T (default 100).")] = None,
    scorer: Annotated[str | None, Opt("--scorer", help="paper or consistent.")] = None,
    candidates: Annotated[str | None, Opt("--candidates", help="random or grid.")] = None,
    capacity: Annotated[float | None, Opt("--capacity", help="Capacity C at N.")] = None,
    x_max: Annotated[float | None, Opt("--x-max", help="Largest demand.")] = None,
    margin: Annotated[float | None, Opt("--margin", help="Safety margin m.")] = None,
    gamma: Annotated[float | None, Opt("--gamma", help="Centering strength γ.")] = None,
    alpha: Annotated[float | None, Opt("--alpha", help="EMA smoothing α.")] = None,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Map overload rate and welfare over (λ, β[, N]) and print each β column's switch.

    For N other than 5 the capacity scales to keep C/N. The switching λ of every column is
    printed beside λ*, λ̃ and the scorer's own prediction; the report draws the heatmaps.
    """
    settings = shared(
        seeds=seeds,
        steps=steps,
        scorer=scorer,
        candidates=candidates,
        capacity=capacity,
        x_max=x_max,
        margin=margin,
        gamma=gamma,
        alpha=alpha,
    ) | {
        "lam": ("--lam", grid("--lam", lam)),
        "beta": ("--beta", grid("--beta", beta)),
        "agents": ("--agents", None if agents is None else integers("--agents", agents)),
    }
    where = run_study("phase", settings, out=out, as_json=as_json)
    show(where, as_json, "Switching λ per β (OR < 0.5 from λ_c on)")


@app.command()
def surface(
    agents: Annotated[int | None, Opt("--agents", help="N (default 10).")] = None,
    capacity: Annotated[float | None, Opt("--capacity", help="Capacity C (default 40).")] = None,
    beta: Annotated[float | None, Opt("--beta", help="Severity β (default 3).")] = None,
    x_max: Annotated[float | None, Opt("--x-max", help="Largest demand.")] = None,
    margin: Annotated[float | None, Opt("--margin", help="Safety margin m.")] = None,
    gamma: Annotated[float | None, Opt("--gamma", help="Centering strength γ.")] = None,
    alpha: Annotated[
        float | None, Opt("--alpha", help="EMA smoothing α (default 0.1; < 2/N is stable).")
    ] = None,
    lam_low: Annotated[
        str, Opt("--lam-low", help="λ grid of the low group: start:stop:count or list.")
    ] = "0:1:21",
    lam_high: Annotated[float | None, Opt("--lam-high", help="λ of the others (1).")] = None,
    scorer: Annotated[str | None, Opt("--scorer", help="paper or consistent.")] = None,
    candidates: Annotated[str | None, Opt("--candidates", help="grid or random.")] = None,
    seeds: Annotated[int | None, Opt("--seeds", help="Seeds per point (5).")] = None,
    steps: Annotated[int | None, Opt("--steps", help="Horizon T (60).")] = None,
    private: Annotated[
        bool, Opt("--private", help="Each agent observes the others' mean (own belief).")
    ] = False,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Map the critical surface: k of N agents at λ_low, the rest at λ_high, k = 0…N.

    The simulated overload goes beside two predictions: game theory (escape iff k·x_max ≤ C
    below λ*) and the SWI rule's own fixed point (its shared mean belief misjudges a mixed
    population; it escapes only while the margin covers that error).
    """
    settings = shared(
        n_agents=agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        margin=margin,
        gamma=gamma,
        alpha=alpha,
        scorer=scorer,
        candidates=candidates,
        seeds=seeds,
        steps=steps,
        private=True if private else None,
    ) | {
        "lam_low": ("--lam-low", grid("--lam-low", lam_low)),
        "lam_high": ("--lam-high", lam_high),
    }
    where = run_study("surface", settings, out=out, as_json=as_json)
    show(where, as_json, "Critical surface: simulation vs predictions")


@app.command()
def stability(
    alpha: Annotated[str, Opt("--alpha", help="α grid: start:stop:count or list.")] = (
        "0.025:0.5:20"
    ),
    agents: Annotated[str | None, Opt("--agents", help="Comma list of N.")] = None,
    lam: Annotated[float | None, Opt("--lam", help="λ of every agent (0.95).")] = None,
    beta: Annotated[float | None, Opt("--beta", help="Severity β (3).")] = None,
    per_agent: Annotated[float | None, Opt("--capacity-per-agent", help="C/N (4).")] = None,
    margin: Annotated[float | None, Opt("--margin", help="Safety margin m.")] = None,
    scorer: Annotated[str | None, Opt("--scorer", help="paper or consistent.")] = None,
    seeds: Annotated[int | None, Opt("--seeds", help="Seeds per point (5).")] = None,
    steps: Annotated[int | None, Opt("--steps", help="Horizon T (60).")] = None,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Map belief stability over (α, N) at a λ far above the switch, against α < 2/N.

    An unstable shared EMA makes the load swing around capacity (a two-cycle: half the
    steps overloaded) whatever λ is.
    """
    settings = shared(
        beta=beta,
        margin=margin,
        scorer=scorer,
        seeds=seeds,
        steps=steps,
    ) | {
        "alpha": ("--alpha", grid("--alpha", alpha)),
        "agents": ("--agents", None if agents is None else integers("--agents", agents)),
        "lam": ("--lam", lam),
        "capacity_per_agent": ("--capacity-per-agent", per_agent),
    }
    where = run_study("stability", settings, out=out, as_json=as_json)
    show(where, as_json, "Belief stability: simulation vs α < 2/N")


@app.command()
def lockin(
    belief: Annotated[
        str, Opt("--initial-belief", help="μ̂₀ grid: start:stop:count or list.")
    ] = "0:10.5:22",
    lam: Annotated[str, Opt("--lam", help="λ grid: start:stop:count or list.")] = "0:1:21",
    agents: Annotated[int | None, Opt("--agents", help="Number of agents N.")] = None,
    capacity: Annotated[float | None, Opt("--capacity", help="Capacity C.")] = None,
    beta: Annotated[float | None, Opt("--beta", help="Severity β.")] = None,
    x_max: Annotated[float | None, Opt("--x-max", help="Largest demand.")] = None,
    margin: Annotated[float | None, Opt("--margin", help="Safety margin m.")] = None,
    gamma: Annotated[float | None, Opt("--gamma", help="Centering strength γ.")] = None,
    scorer: Annotated[str | None, Opt("--scorer", help="paper or consistent.")] = None,
    seeds: Annotated[int | None, Opt("--seeds", help="Seeds per point (5).")] = None,
    steps: Annotated[int | None, Opt("--steps", help="Horizon T (40).")] = None,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Map lock-in over (initial belief μ̂₀, λ) against the closed-form lock-in belief.

    Defaults are the reference configuration.
    """
    settings = shared(
        n_agents=agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        margin=margin,
        gamma=gamma,
        scorer=scorer,
        seeds=seeds,
        steps=steps,
    ) | {
        "initial_belief": ("--initial-belief", grid("--initial-belief", belief)),
        "lam": ("--lam", grid("--lam", lam)),
    }
    where = run_study("lockin", settings, out=out, as_json=as_json)
    show(where, as_json, "Lock-in: simulation vs closed form")


@app.command()
def live(
    lam: Annotated[str, Opt("--lam", help="Comma list of λ (one episode each).")] = "0,1",
    retry: Annotated[
        int | None, Opt("--retry", help="Naive-retry clients (they replace SWA agents).")
    ] = None,
    steps: Annotated[int | None, Opt("--steps", help="Steps per episode (20).")] = None,
    step_s: Annotated[float | None, Opt("--step-seconds", help="Seconds per step (0.5).")] = None,
    refill: Annotated[str | None, Opt("--refill", help="interval or continuous.")] = None,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Drive a live rate-limited HTTP server on 127.0.0.1 with SWA agents (rate_limit_v0).

    The server is started for each episode and stopped after it; every step's calls go out
    concurrently, and the measured 200s/429s/lockouts are printed beside the pure model's
    prediction for the same calls.
    """
    settings = shared() | {
        "lam": ("--lam", numbers("--lam", lam)),
        "retry": ("--retry", retry),
        "steps": ("--steps", steps),
        "step_seconds": ("--step-seconds", step_s),
        "refill": ("--refill", refill),
    }
    where = run_study("live", settings, out=out, as_json=as_json)
    show(where, as_json, "Live rate limit on 127.0.0.1: measured beside the model")


@app.command()
def drift(
    rule: Annotated[
        str,
        Opt(
            "--rule",
            help="imitation, replicator, reinforcement, conformity, principal or none (list).",
        ),
    ] = "imitation",
    population: Annotated[
        int | None, Opt("--population", help="Agents in the population (1000).")
    ] = None,
    rounds: Annotated[int | None, Opt("--rounds", help="Rounds (100).")] = None,
    selection: Annotated[str, Opt("--selection", help="Selection strength s (list).")] = "1",
    rate: Annotated[
        float | None,
        Opt(
            "--rate", help="Share revising per round; conformity step, pull or learning rate (0.2)."
        ),
    ] = None,
    mutation: Annotated[str, Opt("--mutation", help="Mutation chance μ (list).")] = "0",
    price: Annotated[
        str, Opt("--price", help="Congestion price per unit demanded in overload (list).")
    ] = "0",
    fine: Annotated[str, Opt("--fine", help="Peer sanction per demand above C/N (list).")] = "0",
    sanction_cost: Annotated[
        float | None, Opt("--sanction-cost", help="Cost of issuing a sanction (0).")
    ] = None,
    reputation: Annotated[
        str, Opt("--reputation", help="Weight of a public record of excess demand (list).")
    ] = "0",
    memory: Annotated[
        float | None, Opt("--memory", help="Weight of the latest round in the record (1).")
    ] = None,
    talk: Annotated[
        str, Opt("--talk", help="What agents hear first: none, cheap, mediator (list).")
    ] = "none",
    types: Annotated[str, Opt("--types", help="Starting λ values.")] = "0.9,0.3",
    shares: Annotated[str, Opt("--shares", help="Their starting shares.")] = "0.9,0.1",
    agents: Annotated[int | None, Opt("--agents", help="Group size N (5).")] = None,
    beta: Annotated[str | None, Opt("--beta", help="Severities β (list: a cell each).")] = None,
    scorer: Annotated[str | None, Opt("--scorer", help="paper or consistent.")] = None,
    steps: Annotated[int | None, Opt("--steps", help="Steps per round (5).")] = None,
    seeds: Annotated[int | None, Opt("--seeds", help="Independent runs (5).")] = None,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """Value drift: λ moved by imitation, replication, reinforcement, conformity or a pull.

    The population is matched into groups that play the congestion game each round; the
    mean-field map predicts two-type runs. `--price`, `--fine`, `--reputation` and `--talk`
    switch on institutions (each value a cell, paired with the control on the same seeds); `--beta`
    with several values makes a mechanism × rule × β grid. `--json`
    prints rounds, mean_lam and overload_rate per round, and collapsed_at (the first round
    whose mean λ is below the scorer's switch, or null). A YAML of `kind: drift` runs with
    `swalab run`.
    """
    settings = shared(n_agents=agents, scorer=scorer, seeds=seeds, steps=steps) | {
        "beta": ("--beta", None if beta is None else numbers("--beta", beta)),
        "rule": ("--rule", [r.strip() for r in rule.split(",")]),
        "agents": ("--population", population),
        "rounds": ("--rounds", rounds),
        "selection": ("--selection", numbers("--selection", selection)),
        "rate": ("--rate", rate),
        "mutation": ("--mutation", numbers("--mutation", mutation)),
        "price": ("--price", numbers("--price", price)),
        "fine": ("--fine", numbers("--fine", fine)),
        "sanction_cost": ("--sanction-cost", sanction_cost),
        "reputation": ("--reputation", numbers("--reputation", reputation)),
        "memory": ("--memory", memory),
        "talk": ("--talk", [x.strip() for x in talk.split(",")]),
        "types": ("--types", numbers("--types", types)),
        "shares": ("--shares", numbers("--shares", shares)),
    }
    where = run_study("drift", settings, out=out, as_json=as_json)
    show(where, as_json, "Value drift: simulation vs mean-field map")


@app.command()
def stance(
    lam: Annotated[str, Opt("--lam", help="Starting λ values (a cell each).")] = "0.9",
    steps: Annotated[int | None, Opt("--steps", help="Steps per episode (200).")] = None,
    every: Annotated[int | None, Opt("--every", help="Steps between reflections (10).")] = None,
    max_chars: Annotated[int | None, Opt("--max-chars", help="Longest stance (160).")] = None,
    agents: Annotated[int | None, Opt("--agents", help="Agents N (5).")] = None,
    beta: Annotated[float | None, Opt("--beta", help="Severity β.")] = None,
    seeds: Annotated[int | None, Opt("--seeds", help="Episodes per starting λ (2).")] = None,
    backend: Annotated[str | None, Opt("--backend", help="LLM backend (llamacpp).")] = None,
    model: Annotated[str | None, Opt("--model", help="The agents' model (embedded).")] = None,
    judge: Annotated[
        str | None, Opt("--judge", help="Judge model on the same backend (default: --model).")
    ] = None,
    talk: Annotated[
        bool, Opt("--talk", help="Cheap talk: agents say what they will request first.")
    ] = False,
    out: Out = None,
    as_json: AsJson = False,
) -> None:
    """LLM agents whose stance drifts: they rewrite it every --every steps from their payoffs.

    Prompted agents read a stance in words (at first, their λ in words) and answer their
    demand; each epoch's stances are graded by a judge and set beside the λ their demands
    reveal. `--json` prints, per starting λ, judged and revealed λ per epoch, the judge's
    calibration and the cost. A YAML of `kind: stance` runs with `swalab run`.
    """
    settings = shared(n_agents=agents, beta=beta, steps=steps) | {
        "lam": (
            "--lam",
            [unit_interval(f"--lam[{i}]", x) for i, x in enumerate(numbers("--lam", lam))],
        ),
        "every": ("--every", every),
        "max_chars": ("--max-chars", max_chars),
        "seeds": ("--seeds", seeds),
        "talk": ("--talk", talk or None),
        "model.backend": ("--backend", backend),
        "model.name": ("--model", model),
    }
    if judge is not None:
        settings |= {
            "judge.backend": ("--backend", backend or "llamacpp"),
            "judge.name": ("--judge", judge),
        }
    where = run_study("stance", settings, out=out, as_json=as_json)
    show(where, as_json, "LLM stances that drift: judged and revealed λ per epoch")

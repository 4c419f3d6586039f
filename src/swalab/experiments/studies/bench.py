"""The ``bench`` kind: speed and memory, measured side by side, stored like any study.

Targets live here, never in timed unit tests: these machines are noisy, so the engine and
the per-agent loop are measured in the same run and compared as a ratio (likewise the LLM
protocol and the reference protocol). A benchmark is one cell that runs in the driver,
alone; its ``rows`` table holds one row per measured size, its ``summary`` table the
headline numbers and the machine.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from swalab._measure import PeakMemory, machine_info
from swalab.experiments.cells import Cell, CellResult, Task, digest, payload
from swalab.experiments.config import NOT_HASHED, ConfigError, ExecutorConfig, StudyConfig
from swalab.experiments.kinds import OnStep
from swalab.experiments.limits import Work
from swalab.llm.scale import llm_scale_benchmark
from swalab.swi.config import SimulationConfig
from swalab.swi.engine import LockstepBatch, run_lockstep
from swalab.swi.simulation import run_episode

#: Agents per benchmark size (E × N with N = 5), as asked for: 1e2 … 1e6.
FULL_SIZES = (100, 1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (100, 1_000)


def _best_time(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def engine_benchmark(*, quick: bool = False, steps: int | None = None) -> dict[str, Any]:
    """Measure decisions/s of the lockstep engine and of the per-agent loop, side by side.

    The work is the reference game with random candidates (k = 7 draws + 5 anchors = K 12),
    λ = 0.8, T = 100 (20 with ``quick``). The loop plays a prefix of the same episodes for
    about a second (its rate does not depend on batch size) and its trajectories are
    checked against the engine's, so both really did the same work.

    Returns:
        ``engine_decisions_per_s`` and ``loop_decisions_per_s`` at the best size, their
        ``ratio``, and a ``rows`` list with one entry per size.
    """
    horizon = steps if steps is not None else (20 if quick else 100)
    config = SimulationConfig(candidates="random", steps=horizon)
    n = config.n_agents
    k_total = config.k + len(config.anchors)

    def batch(agents: int) -> LockstepBatch:
        return LockstepBatch.from_config(config, [0.8], range(max(1, agents // n)))

    compile_start = time.perf_counter()
    run_lockstep(batch(n))  # compile (or load the on-disk cache)
    compile_s = time.perf_counter() - compile_start

    # The per-agent loop on the first episodes of the same batch.
    reference = run_lockstep(batch(n * 64), record=True).demands
    assert reference is not None
    loop_episodes = 0
    loop_start = time.perf_counter()
    while time.perf_counter() - loop_start < (0.5 if quick else 1.5) and loop_episodes < 64:
        ep = run_episode(config, 0.8, seed=loop_episodes)
        if not np.array_equal(ep.demands, reference[loop_episodes]):
            raise AssertionError("per-agent loop and engine disagree: benchmark is invalid")
        loop_episodes += 1
    loop_rate = loop_episodes * n * horizon / (time.perf_counter() - loop_start)

    rows = []
    for agents in QUICK_SIZES if quick else FULL_SIZES:
        with PeakMemory() as mem:  # building the batch counts: it is the engine's input
            b = batch(agents)
            decisions = b.n_episodes * n * horizon
            repeats = 1 if decisions > 2e7 else 3
            seconds = _best_time(functools.partial(run_lockstep, b), repeats)
        rate = decisions / seconds
        rows.append(
            {
                "agents": b.n_episodes * n,
                "episodes": b.n_episodes,
                "k": k_total,
                "steps": horizon,
                "seconds": seconds,
                "engine_decisions_per_s": rate,
                "loop_decisions_per_s": loop_rate,
                "ratio": rate / loop_rate,
                "peak_mib": mem.used_mib,
            }
        )
    best = max(rows, key=lambda r: r["engine_decisions_per_s"])
    drift = drift_benchmark(
        agents=1_000 if quick else 10_000, rounds=20 if quick else 1_000, steps=5
    )
    return {
        "engine_decisions_per_s": best["engine_decisions_per_s"],
        "loop_decisions_per_s": loop_rate,
        "ratio": best["ratio"],
        "best_agents": best["agents"],
        "compile_or_cache_load_s": compile_s,
        **{f"drift_{k}": x for k, x in drift.items()},
        "rows": rows,
        "machine": machine_info(),
    }


def drift_benchmark(*, agents: int, rounds: int, steps: int) -> dict[str, Any]:
    """Time value drift on the engine: ``agents`` matched in groups of 5, ``rounds`` rounds.

    Each round plays ``steps`` steps of the reference game (random candidates, as the
    engine's benchmark) and then the imitation rule; decisions count every agent's steps.
    """
    from swalab.swi.drift import DriftRule, run_drift, two_types

    config = SimulationConfig(candidates="random", steps=steps)
    lam0 = two_types(agents, (0.9, 0.3), 0.9)
    run_drift(config, lam0[: config.n_agents * 2], 1, DriftRule())  # compile or load cache
    with PeakMemory() as mem:
        start = time.perf_counter()
        run_drift(config, lam0, rounds, DriftRule(rate=0.2))
        seconds = time.perf_counter() - start
    return {
        "agents": agents,
        "rounds": rounds,
        "steps": steps,
        "seconds": seconds,
        "decisions_per_s": agents * rounds * steps / seconds,
        "rounds_per_s": rounds / seconds,
        "peak_mib": mem.used_mib,
    }


def phase_benchmark(*, seeds: int = 100, steps: int = 100) -> dict[str, Any]:
    """Time the issue's phase diagram: 101 λ × 41 β × ``seeds`` seeds × T, N = 5."""
    from swalab.swi.phase import phase_diagram

    config = replace(SimulationConfig(candidates="random"), steps=steps)
    lams = np.linspace(0, 1, 101)
    betas = np.linspace(1.0, 5.0, 41)
    phase_diagram(config, lams[:2], betas[:2], seeds=1)  # compile or load the cache
    start = time.perf_counter()
    with PeakMemory() as mem:
        table = phase_diagram(config, lams, betas, seeds=seeds)
    seconds = time.perf_counter() - start
    decisions = lams.size * betas.size * seeds * config.n_agents * steps
    return {
        "cells": int(table["lam"].size),
        "episodes": lams.size * betas.size * seeds,
        "seconds": seconds,
        "decisions_per_s": decisions / seconds,
        "peak_mib": mem.used_mib,
        "machine": machine_info(),
    }


def llm_benchmark(
    *,
    quick: bool = False,
    backend: str = "llamacpp",
    model: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Reference protocol vs swalab's protocol on the same model, side by side.

    (a) reference: per agent, sequentially, an unconstrained proposal call then an
    unconstrained choose call, JSON parsing with fallbacks; (b) swalab: one batched,
    grammar-constrained proposal call per step for every agent of every episode, choice in
    code. Both uncached, N = 5; the reference plays one episode, swalab a small sweep
    (2 λ × 2 seeds; 2 λ × 4 seeds in the full run) as experiments do.
    """
    from swalab.llm.protocol import ProtocolConfig
    from swalab.llm.reference import run_reference
    from swalab.llm.registry import load_model
    from swalab.llm.runner import run_llm_episodes

    steps = 2 if quick else 4
    config = SimulationConfig(steps=steps)
    lm = load_model(backend, model=model, **options)
    lm.generate(["warm up"], max_tokens=1)
    ref = run_reference(config, lm, lam=0.8, seed=0)
    start = time.perf_counter()
    episodes = run_llm_episodes(config, lm, [0.5, 0.9], range(2 if quick else 4), ProtocolConfig())
    wall = time.perf_counter() - start
    rows = [r for ep in episodes for r in ep.rows]
    failures = sum(r["proposal_error"] is not None for r in rows)
    ref_rate = ref.decisions / ref.wall_s
    ours = len(rows) / wall
    return {
        "backend": backend,
        "model": lm.identity.model,
        "swalab_decisions_per_s": ours,
        "reference_decisions_per_s": ref_rate,
        "ratio": ours / ref_rate,
        "swalab_parse_failure_rate": failures / max(len(rows), 1),
        "reference_parse_failure_rate": ref.proposal_failures / ref.decisions,
        "reference_choose_failure_rate": ref.choose_failures / ref.decisions,
        "swalab_decisions": len(rows),
        "reference_decisions": ref.decisions,
        "swalab_seconds": wall,
        "reference_seconds": ref.wall_s,
        "swalab_episodes_failed": sum(ep.status != "ok" for ep in episodes),
        "swalab_tokens_out": sum(ep.accounting["tokens_out"] for ep in episodes),
        "reference_tokens_out": ref.tokens_out,
        "machine": machine_info(),
    }


class BenchConfig(StudyConfig):
    """A benchmark: ``engine`` (vs the per-agent loop), ``phase`` or ``llm``.

    (``swalab bench guard`` runs a study of the ``guard`` kind: a cell per run, not one.)
    """

    kind: Literal["bench"] = "bench"
    name: str = "bench"
    benchmark: Literal["engine", "phase", "llm"] = Field(
        "engine", description="engine (vs the per-agent loop), phase, or llm (vs reference)."
    )
    quick: bool = Field(False, description="Small sizes: a smoke run.")
    seeds: int = Field(100, ge=1, le=10**4, description="phase: seeds per cell.")
    steps: int | None = Field(None, ge=1, le=10**4, description="Horizon (default per benchmark).")
    backend: str = Field("llamacpp", description="llm: the backend.")
    model: str | None = Field(None, description="llm: the model (default: embedded).")
    agents: list[Annotated[int, Field(ge=2, le=100_000)]] | None = Field(
        None,
        description="llm: populations N to measure at scale (e.g. [5, 100, 1000]); null: "
        "the N = 5 comparison with a small sweep.",
    )
    cells: int = Field(
        1,
        ge=1,
        le=1000,
        description="llm with agents: cells of a sweep over β played together, one call per "
        "step for all (as a sweep's cells share it).",
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="llm: backend options, e.g. {dtype: bfloat16} on transformers.",
    )


def measure(config: BenchConfig) -> dict[str, Any]:
    """Run the benchmark ``config`` names; its result as the functions above return it."""
    if config.benchmark == "engine":
        return engine_benchmark(quick=config.quick, steps=config.steps)
    if config.benchmark == "phase":
        return phase_benchmark(seeds=config.seeds, steps=config.steps or 100)
    backend_options: dict[str, Any] = dict(config.options)
    if config.agents:
        return llm_scale_benchmark(
            agents=config.agents,
            steps=config.steps or 2,
            cells=config.cells,
            backend=config.backend,
            model=config.model,
            **backend_options,
        )
    return llm_benchmark(
        quick=config.quick, backend=config.backend, model=config.model, **backend_options
    )


class Bench:
    """The ``bench`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "bench"
    summary = "speed and memory: engine vs per-agent loop, phase diagram, LLM protocol"
    config = BenchConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {"rows": None, "summary": None}

    def plan(self, config: BenchConfig, source: str) -> list[Cell]:
        """One cell: the whole benchmark (its sizes are measured side by side)."""
        if config.benchmark == "llm":
            from swalab.llm.registry import check_available

            try:
                check_available(config.backend)
            except (ImportError, ValueError) as exc:
                raise ConfigError(f"{source}: backend={config.backend!r}: {exc}") from None
        data = {"kind": self.name, **payload(config, NOT_HASHED)}
        if not config.options:  # hashes from before backend options stay valid
            del data["options"]
        return [Cell(key=digest(data), config=config, assignment={"benchmark": config.benchmark})]

    def work(self, config: BenchConfig) -> Work:
        """One cell; its sizes are the benchmark's own."""
        return Work(cells=1, episodes=1, steps=1, agents=1, candidates=1)

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """Each benchmark alone in the driver."""
        return [Task("driver", (c,)) for c in cells]

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Measure, then store the rows and the summary."""
        out = []
        for cell in task.cells:
            start = time.perf_counter()
            result = measure(cell.config)
            rows = result.get("rows") or [{k: v for k, v in result.items() if k != "machine"}]
            summary = {k: v for k, v in result.items() if k not in ("rows", "machine")}
            summary["machine"] = json.dumps(result["machine"])
            tables = {
                "rows": pa.Table.from_pylist(rows),
                "summary": pa.Table.from_pylist([summary]),
            }
            out.append(CellResult(cell=cell, tables=tables, seconds=time.perf_counter() - start))
        return out


BENCH = Bench()

"""The batched protocol at scale against the reference protocol: ``swalab bench llm --agents``.

Light on purpose: it needs the model layer and the runner, not the store, so
``scripts/gpu_check.py`` can run it on a machine that has PyTorch and little else.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from swalab._measure import PeakMemory, machine_info
from swalab.llm.base import LanguageModel
from swalab.swi.config import SimulationConfig

#: Agents the reference protocol asks one by one, at most, in the scale benchmark.
REFERENCE_SAMPLE = 10
#: β of the scale benchmark's cells, in turn (the paper's severities).
SWEEP_BETAS = (1.6, 1.2, 2.0, 2.5, 3.0, 4.0)


def llm_scale_benchmark(
    *,
    agents: Sequence[int],
    steps: int = 2,
    cells: int = 1,
    backend: str = "llamacpp",
    model: str | None = None,
    reference_sample: int = REFERENCE_SAMPLE,
    lm: LanguageModel | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The batched protocol at N agents against the reference protocol, per N.

    One episode of N agents (capacity 4 per agent, λ = 0.8, ``steps`` steps) per cell of a
    sweep over β (:data:`SWEEP_BETAS`, in turn; seed = the cell's number), every cell
    sharing each step's call as a sweep's cells do, through the batched, constrained
    protocol: decisions/s, tokens/s in (the prompt tokens the backend
    evaluated, shared prefixes once) and out, those prompt tokens against the naive count
    (every prompt in full), the process's peak RSS. Beside it the reference protocol on the
    same episode; above ``reference_sample`` agents it asks a sample of that many (the rest
    take the rule's choice without a call) and its rate is over the sample alone.
    Uncached. The top-level keys are the largest N's; ``rows`` holds every N. ``lm``: a
    model already loaded (then ``backend``, ``model`` and ``options`` are not read).
    """
    from swalab.llm.accounting import CountingModel
    from swalab.llm.constraints import NumberList
    from swalab.llm.protocol import ProtocolConfig
    from swalab.llm.reference import run_reference
    from swalab.llm.registry import load_model
    from swalab.llm.runner import run_llm_pairs

    if lm is None:
        lm = load_model(backend, **({} if model is None else {"model": model}), **options)
    # Warm up, a format's token tables included (built once per model, not per step).
    lm.generate(["warm up"], constraint=NumberList(k=1, x_max=1), max_tokens=1)
    rows = []
    for n in agents:
        games = [
            SimulationConfig(
                n_agents=n, capacity=4.0 * n, steps=steps, beta=SWEEP_BETAS[j % len(SWEEP_BETAS)]
            )
            for j in range(cells)
        ]
        sample = None if n <= reference_sample else list(range(reference_sample))
        ref = run_reference(games[0], lm, lam=0.8, seed=0, asked=sample)
        counter = CountingModel(model=lm)
        with PeakMemory() as mem:
            start = time.perf_counter()
            played = run_llm_pairs(
                games[0], counter, [(0.8, j) for j in range(cells)], ProtocolConfig(), games=games
            )
            wall = time.perf_counter() - start
        totals = counter.totals()
        decided = [r for episode in played for r in episode.rows]
        decisions = len(decided)
        ours, theirs = decisions / wall, ref.decisions / ref.wall_s
        rows.append(
            {
                "agents": n,
                "cells": cells,
                "steps": steps,
                "swalab_decisions_per_s": ours,
                "reference_decisions_per_s": theirs,
                "ratio": ours / theirs,
                "reference_agents_asked": len(sample) if sample else n,
                "swalab_parse_failure_rate": sum(r["proposal_error"] is not None for r in decided)
                / max(decisions, 1),
                "swalab_seconds_per_step": wall / steps,
                "tokens_in_per_s": totals["tokens_in"] / wall,
                "tokens_out_per_s": totals["tokens_out"] / wall,
                "prompt_tokens_evaluated": totals["tokens_in"],
                "prompt_tokens_shared": totals["tokens_shared"],
                # every prompt in full: what a call without shared prefixes evaluates
                "prompt_tokens_naive": totals["tokens_in"] + totals["tokens_shared"],
                "peak_rss_mib": mem.peak / 2**20,
                "swalab_episode_failed": any(episode.status != "ok" for episode in played),
            }
        )
    return {
        "backend": lm.identity.backend,
        "model": lm.identity.model,
        **rows[-1],
        "rows": rows,
        "machine": machine_info(),
    }

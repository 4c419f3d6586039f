"""The λ sweep: metrics per social weight over seeds, by the engine or the per-agent loop.

Both paths play bit-identical episodes, so :func:`simulate` gives the same numbers whichever
it uses; the loop is there to check the engine, and the engine to make sweeps cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from swalab import _validate as v
from swalab.metrics import jain_fairness, mean_welfare, overload_rate, steps_to_stable
from swalab.swi.config import SimulationConfig
from swalab.swi.engine import LockstepBatch, run_lockstep
from swalab.swi.simulation import run_episode


@dataclass(frozen=True, kw_only=True)
class LambdaSummary:
    """Metrics of one λ over seeds (``docs/theory.md``, "Metrics").

    Attributes:
        lam: The social weight.
        overload_rate: Mean over seeds of the fraction of overloaded steps.
        mean_welfare: Mean over seeds of the episode-mean welfare ``W̄``.
        delta_welfare: ``W̄(λ) − W̄(0)``, same seeds.
        mean_load: Mean load over steps and seeds.
        fairness: Mean Jain fairness of demands over steps and seeds.
        steps_to_stable: Mean first step from which the load stays ``≤ C`` (``T``: never).
        seeds: Number of seeds.
    """

    lam: float
    overload_rate: float
    mean_welfare: float
    delta_welfare: float
    mean_load: float
    fairness: float
    steps_to_stable: float
    seeds: int


def _loop_summaries(config: SimulationConfig, lam: float, seeds: int) -> tuple[float, ...]:
    rows = []
    for seed in range(seeds):  # episodes may differ in length (geometric horizon)
        ep = run_episode(config, lam, seed)
        cap = np.asarray(config.capacity)
        rows.append(
            (
                float(overload_rate(ep.loads, cap)),
                float(mean_welfare(ep.welfare)),
                float(ep.loads.mean()),
                float(jain_fairness(ep.demands).mean()),
                float(steps_to_stable(ep.loads, cap)),
            )
        )
    return tuple(float(x) for x in np.mean(np.asarray(rows), axis=0))


def _lockstep_summaries(
    config: SimulationConfig, lams: list[float], seeds: int
) -> dict[float, tuple[float, ...]]:
    res = run_lockstep(LockstepBatch.from_config(config, lams, range(seeds)))
    shape = (len(lams), seeds)
    columns = [
        res.overload_rate,
        res.mean_welfare,
        res.mean_load,
        res.fairness,
        res.steps_to_stable,
    ]
    means = [c.reshape(shape).mean(axis=1) for c in columns]
    return {lam: tuple(float(m[i]) for m in means) for i, lam in enumerate(lams)}


ENGINES = ("lockstep", "loop")


def simulate(
    config: SimulationConfig, lams: Iterable[float], seeds: int = 20, engine: str = "lockstep"
) -> list[LambdaSummary]:
    """Sweep λ over ``seeds`` seeds (0, 1, …); ΔW uses a λ = 0 run with the same seeds.

    Args:
        config: The experiment.
        lams: Social weights to sweep.
        seeds: Seeds per λ.
        engine: ``"lockstep"`` (compiled, all episodes at once) or ``"loop"`` (the
            per-agent reference path). Both play bit-identical episodes.

    Raises:
        ValueError: If a λ is outside [0, 1], ``seeds < 1`` or the engine is unknown.
    """
    lam_list = [v.unit_interval(f"lam[{i}]", x) for i, x in enumerate(lams)]
    if not lam_list:
        raise ValueError("lam is empty: give at least one social weight")
    n_seeds = v.integer_at_least("seeds", seeds, 1)
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} is not known: choose one of {list(ENGINES)}")
    unique = list(dict.fromkeys([0.0, *lam_list]))
    if engine == "loop":
        cache = {lam: _loop_summaries(config, lam, n_seeds) for lam in unique}
    else:
        cache = _lockstep_summaries(config, unique, n_seeds)
    base = cache[0.0][1]
    return [
        LambdaSummary(
            lam=lam,
            overload_rate=s[0],
            mean_welfare=s[1],
            delta_welfare=s[1] - base,
            mean_load=s[2],
            fairness=s[3],
            steps_to_stable=s[4],
            seeds=n_seeds,
        )
        for lam in lam_list
        for s in [cache[lam]]
    ]

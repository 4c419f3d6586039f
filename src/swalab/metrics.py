"""Episode metrics over arrays of per-step loads and welfare, and over step tables.

The definitions are those of ``docs/theory.md`` ("Metrics"). They sit below every layer that
plays episodes (the per-agent loop, the engine, the LLM runner), so each computes its
summaries with the same functions the analysis reads back.

Steps are on the last axis; any axes before it (seeds, λ values, …) are kept, so one call
summarises a whole sweep. :func:`episode_metrics` recomputes every stored episode metric
from a result store's step rows alone, which makes the stored numbers checkable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from swalab._validate import FloatArray


def overload_rate(loads: ArrayLike, capacity: ArrayLike) -> FloatArray:
    """Return the fraction of steps with ``X > C`` (a load exactly at capacity is safe)."""
    result: FloatArray = np.mean(np.asarray(loads) > np.asarray(capacity)[..., None], axis=-1)
    return result


def mean_welfare(welfare: ArrayLike) -> FloatArray:
    """Return the episode mean of the realised welfare ``W_t``."""
    result: FloatArray = np.mean(np.asarray(welfare, dtype=np.float64), axis=-1)
    return result


def steps_to_stable(loads: ArrayLike, capacity: ArrayLike) -> FloatArray:
    """Return the first step from which the load stays ``≤ C`` to the end.

    ``T`` (the number of steps) means the episode never settled, including when its last
    step is overloaded.
    """
    over = np.asarray(loads) > np.asarray(capacity)[..., None]
    t = over.shape[-1]
    # Index of the last overloaded step + 1; 0 when no step is overloaded.
    last_over = np.where(over.any(axis=-1), t - np.argmax(over[..., ::-1], axis=-1), 0)
    result: FloatArray = last_over.astype(np.float64)
    return result


def jain_fairness(demands: ArrayLike) -> FloatArray:
    """Return Jain's index ``(Σx)²/(N·Σx²)`` over agents (last axis); 1 when all are 0."""
    x = np.asarray(demands, dtype=np.float64)
    num = x.sum(axis=-1) ** 2
    den = x.shape[-1] * (x**2).sum(axis=-1)
    result: FloatArray = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return result


def who_pays(
    demands: ArrayLike, rewards: ArrayLike, x_max: ArrayLike, prosocial: ArrayLike
) -> dict[str, Any]:
    """Who carries the cut in one episode (steps on the first axis, agents on the second).

    Returns:
        ``demand_per_agent`` and ``reward_per_agent`` (episode means); ``reward_gap``: the
        mean reward of the other agents minus that of the prosocial ones (``None`` unless
        both groups exist; positive when the selfish earn more); ``prosocial_cut_share``:
        the prosocial agents' share of the total cut ``Σ_i (x_max_i − x̄_i)`` below the caps
        (``None`` without prosocial agents or without any cut).
    """
    d = np.asarray(demands, dtype=np.float64).mean(axis=0)
    r = np.asarray(rewards, dtype=np.float64).mean(axis=0)
    mask = np.asarray(prosocial, dtype=bool)
    cut = np.asarray(x_max, dtype=np.float64) - d
    both = bool(mask.any() and (~mask).any())
    total = float(cut.sum())
    return {
        "demand_per_agent": d.tolist(),
        "reward_per_agent": r.tolist(),
        "reward_gap": float(r[~mask].mean() - r[mask].mean()) if both else None,
        "prosocial_cut_share": float(cut[mask].sum() / total) if mask.any() and total > 0 else None,
    }


def episode_metrics(
    steps: Mapping[str, Sequence[Any]],
    capacity: float | Mapping[str, float],
    x_max: Mapping[tuple[str, int], Sequence[float]] | None = None,
) -> dict[tuple[str, int], dict[str, Any]]:
    """Every episode metric of a result store, from its step rows (one per step and agent).

    Args:
        steps: Columns of :data:`~swalab.experiments.store.STEP_SCHEMA` (``cell``, ``seed``,
            ``step``, ``agent``, ``load``, ``welfare``, ``demand``, ``overloaded``,
            ``proposal_error``, ``fallback``, ``pick_agrees``, ``pick_error``), e.g. a
            table's ``to_pydict()``.
        capacity: ``C``, one for all cells or per cell key (for ``utilisation`` only: the
            overload flags of the rows already say ``X > C``).
        x_max: Per ``(cell, seed)``, the agents' caps; with them (and the rows' ``reward``
            and ``prosocial`` columns) the :func:`who_pays` metrics are recomputed too.

    Returns:
        ``(cell, seed)`` → ``overload_rate, mean_welfare, mean_load, utilisation, fairness,
        steps_to_stable`` and, where the rows come from an LLM run (a ``fallback`` is
        recorded), ``proposal_failure_rate, fallback_rate, pick_failure_rate`` and
        ``pick_agreement`` (the share of LLM picks equal to the argmax; ``None`` when no
        pick was asked for or none parsed).
    """
    cols = {k: list(v) for k, v in steps.items()}
    n = len(cols["cell"])
    episodes: dict[tuple[str, int], list[int]] = {}
    for r in range(n):
        episodes.setdefault((cols["cell"][r], int(cols["seed"][r])), []).append(r)
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for (cell, seed), rows in episodes.items():
        rows.sort(key=lambda r: (cols["step"][r], cols["agent"][r]))
        n_steps = len({cols["step"][r] for r in rows})
        first = {cols["step"][r]: r for r in reversed(rows)}  # a step's first row
        order = [first[s] for s in sorted(first)]
        loads = np.array([cols["load"][r] for r in order], dtype=np.float64)
        over = np.array([bool(cols["overloaded"][r]) for r in order])
        demands = np.array([cols["demand"][r] for r in rows], dtype=np.float64)
        cap = capacity[cell] if isinstance(capacity, Mapping) else capacity
        metrics: dict[str, Any] = {
            "overload_rate": float(over.mean()),
            "mean_welfare": float(mean_welfare([cols["welfare"][r] for r in order])),
            "mean_load": float(loads.mean()),
            "utilisation": float(loads.mean() / cap),
            "fairness": float(jain_fairness(demands.reshape(n_steps, -1)).mean()),
            # steps_to_stable reads "> C"; the flags already are that comparison.
            "steps_to_stable": float(steps_to_stable(over.astype(np.float64), np.float64(0.5))),
        }
        if x_max is not None:
            shape = (n_steps, -1)
            rewards = np.array([cols["reward"][r] for r in rows], dtype=np.float64)
            prosocial = [bool(cols["prosocial"][r]) for r in rows[: demands.size // n_steps]]
            metrics |= who_pays(
                demands.reshape(shape), rewards.reshape(shape), x_max[(cell, seed)], prosocial
            )
        asked = [r for r in rows if cols["fallback"][r] is not None]  # LLM decisions
        if asked:
            picks = [
                bool(cols["pick_agrees"][r]) for r in asked if cols["pick_agrees"][r] is not None
            ]
            metrics |= {
                "proposal_failure_rate": _share(cols["proposal_error"], asked),
                "fallback_rate": sum(cols["fallback"][r] != "none" for r in asked) / len(asked),
                "pick_failure_rate": _share(cols["pick_error"], asked),
                "pick_agreement": sum(picks) / len(picks) if picks else None,
            }
        out[(cell, seed)] = metrics
    return out


def _share(column: list[Any], rows: list[int]) -> float:
    """Share of ``rows`` where ``column`` is set (an error message was recorded)."""
    return sum(column[r] is not None for r in rows) / len(rows)


def dilemma_metrics(
    actions: ArrayLike,
    rewards: ArrayLike,
    welfare: ArrayLike,
    load: ArrayLike,
    overloaded: ArrayLike,
    extras: dict[str, Any],
    nominal_capacity: float,
) -> dict[str, float | None]:
    """One resource-dilemma episode's metrics (steps on the first axis, agents on the second).

    The shared ones (overload rate, welfare, load, utilisation against the sustainable use,
    Jain fairness of actions, steps until no step is overloaded) and each dilemma's own:
    completed calls, 429s and locked share (``rate_limit_v0``); critical context lost
    (``context_budget_v0``); survival time, total harvest, equality of harvests (Jain over
    agents' totals) and drift, the mean harvest of the last quarter of the surviving steps
    minus that of the first quarter (``commons_v0``). Metrics a dilemma lacks are None.
    """
    a = np.asarray(actions, dtype=np.float64)
    over = np.asarray(overloaded, dtype=np.float64)
    w = np.asarray(welfare, dtype=np.float64)
    x = np.asarray(load, dtype=np.float64)
    out: dict[str, float | None] = {
        "overload_rate": float(over.mean()),
        "mean_welfare": float(w.mean()),
        "mean_load": float(x.mean()),
        "utilisation": float(x.mean() / nominal_capacity) if nominal_capacity > 0 else None,
        "fairness": float(jain_fairness(a).mean()),
        "steps_to_stable": float(steps_to_stable(over, np.asarray(0.5))),
    }
    for key in (
        "completed",
        "rejected",
        "lockout_rate",
        "critical_loss",
        "survival_time",
        "total_harvest",
        "equality",
        "drift",
    ):
        out[key] = None
    if "admitted" in extras:
        out["completed"] = float(np.mean(extras["admitted"]))
        out["rejected"] = float(np.mean(extras["rejected"]))
        out["lockout_rate"] = float(np.mean(extras["locked"]))
    if "critical_lost" in extras:
        out["critical_loss"] = float(np.mean(extras["critical_lost"]))
    if "alive" in extras:
        alive = np.asarray(extras["alive"]) > 0.5
        out["survival_time"] = float(alive.sum())
        out["total_harvest"] = float(w.sum())
        out["equality"] = float(jain_fairness(np.asarray(rewards).sum(axis=0)))
        lived = a[alive]
        q = len(lived) // 4
        out["drift"] = float(lived[-q:].mean() - lived[:q].mean()) if q >= 1 else None
    return out

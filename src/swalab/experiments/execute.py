"""Run one task: its cells advance together and come back as tidy tables.

Model-based tasks build one lockstep batch over every episode of every cell (parameters
may differ per episode) and, when ``record_decisions`` is on, replay each decision to store
the candidate set and its scores. LLM tasks run every cell's episodes through one model in
lockstep: one batched call per step for all of them. Workers only compute; the driver
writes, so the store has one writer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from swalab import _validate as v
from swalab.experiments.plan import Cell, Task
from swalab.experiments.store import EPISODE_SCHEMA, METRIC_FIELDS, STEP_SCHEMA, table


@dataclass
class CellResult:
    """One finished cell.

    Attributes:
        cell: The cell.
        steps: Step rows (:data:`~swalab.experiments.store.STEP_SCHEMA`).
        episodes: Episode rows (:data:`~swalab.experiments.store.EPISODE_SCHEMA`).
        seconds: Wall time of the task that computed it, shared evenly over its cells.
    """

    cell: Cell
    steps: pa.Table
    episodes: pa.Table
    seconds: float


def params(cell: Cell) -> dict[str, Any]:
    """The parameter columns of a cell's episode rows."""
    c = cell.config
    g, p, m = c.game, c.policy, c.model
    n = g.n_agents
    lam = v.per_agent("lam", c.lam, n, 0.0, check="unit_interval").tolist()
    x_max = v.per_agent("x_max", g.x_max, n, 1.0).tolist()
    return {
        "env": c.env,
        "n_agents": n,
        "capacity": g.capacity,
        "beta": g.beta,
        "x_max": float(np.mean(x_max)),
        "x_max_per_agent": x_max,
        "weights_per_agent": v.per_agent("weights", g.weights, n, 1.0).tolist(),
        "values_per_agent": v.per_agent("values", g.values, n, 1.0).tolist(),
        "steps": g.steps,
        "lam": float(np.mean(lam)),
        "lam_per_agent": lam,
        "scorer": p.scorer,
        "candidates": p.candidates,
        "k": p.k,
        "grid_step": p.grid_step,
        "anchors": [float(a) for a in p.anchors],
        "margin": p.margin,
        "gamma": p.gamma,
        "belief": p.belief.kind,
        "alpha": p.belief.alpha,
        "initial_belief": p.belief.initial if p.belief.initial is not None else g.capacity / n,
        "selector": p.selector if m is not None else None,
        "fallback": p.fallback if m is not None else None,
        "backend": m.backend if m is not None else None,
        "model": (m.name or "default") if m is not None else None,
        "temperature": m.temperature if m is not None else None,
    }


def run_engine_task(task: Task) -> list[CellResult]:
    """Play every episode of a model-based task in one lockstep batch."""
    from swalab.swi.engine import LockstepBatch, run_lockstep
    from swalab.swi.simulation import replay_decisions

    start = time.perf_counter()
    cells = task.cells
    first = cells[0].simulation()
    n, t = first.n_agents, first.steps
    sims = [c.simulation() for c in cells]
    episodes = [(ci, seed) for ci, c in enumerate(cells) for seed in c.config.seed_list()]

    cell_params = [params(c) for c in cells]  # once per cell, not per episode

    def per_episode(name: str) -> Any:
        return np.array([cell_params[ci][name] for ci, _ in episodes], dtype=np.float64)

    def col(fn: Callable[[int], Any]) -> Any:
        return np.array([fn(ci) for ci, _ in episodes], dtype=np.float64)

    batch = LockstepBatch(
        n_agents=n, steps=t, scorer=first.scorer, candidates=first.candidates, k=first.k,
        grid_step=first.grid_step, anchors=first.anchors,
        lam=per_episode("lam_per_agent"),
        capacity=col(lambda ci: sims[ci].capacity), beta=col(lambda ci: sims[ci].beta),
        x_max=per_episode("x_max_per_agent"),
        weights=per_episode("weights_per_agent"),
        values=per_episode("values_per_agent"),
        margin=col(lambda ci: sims[ci].margin), gamma=col(lambda ci: sims[ci].gamma),
        alpha=col(lambda ci: sims[ci].alpha),
        initial_belief=col(lambda ci: np.nan if sims[ci].initial_belief is None
                           else sims[ci].initial_belief),
        seed=np.array([s for _, s in episodes], dtype=np.int64),
    )  # fmt: skip
    res = run_lockstep(batch, record=True)
    assert res.demands is not None and res.loads is not None and res.welfare is not None
    assert res.beliefs is not None and res.rewards is not None
    steps_rows: dict[int, list[dict[str, Any]]] = {ci: [] for ci in range(len(cells))}
    ep_rows: dict[int, list[dict[str, Any]]] = {ci: [] for ci in range(len(cells))}
    for e, (ci, seed) in enumerate(episodes):
        cell = cells[ci]
        cap = sims[ci].capacity
        lam = cell_params[ci]["lam_per_agent"]
        decisions = (
            replay_decisions(sims[ci], lam, seed, res.beliefs[e])
            if cell.config.record_decisions
            else None
        )
        for step in range(t):
            load = float(res.loads[e, step])
            for i in range(n):
                row: dict[str, Any] = {
                    "cell": cell.key,
                    "seed": seed,
                    "step": step,
                    "agent": i,
                    "lam": lam[i],
                    "belief": float(res.beliefs[e, step, i]),
                    "demand": float(res.demands[e, step, i]),
                    "reward": float(res.rewards[e, step, i]),
                    "load": load,
                    "welfare": float(res.welfare[e, step]),
                    "overloaded": load > cap,
                }
                if decisions is not None:
                    d = decisions[step][i]
                    if d.action != row["demand"]:  # the engine and the per-agent path agree
                        raise RuntimeError(
                            f"cell {cell.key} seed {seed} step {step} agent {i}: replayed "
                            f"decision {d.action} differs from the engine's {row['demand']}"
                        )
                    row |= {
                        "candidates": d.candidates.tolist(),
                        "private": d.private.tolist(),
                        "group": d.group.tolist(),
                        "utility": d.utility.tolist(),
                        "argmax_demand": d.action,
                    }
                steps_rows[ci].append(row)
        ep_rows[ci].append(
            {
                "cell": cell.key,
                "seed": seed,
                "status": "ok",
                "error": None,
                "steps_played": t,
                **cell_params[ci],
                "overload_rate": float(res.overload_rate[e]),
                "mean_welfare": float(res.mean_welfare[e]),
                "mean_load": float(res.mean_load[e]),
                "utilisation": float(res.mean_load[e]) / cap,
                "fairness": float(res.fairness[e]),
                "steps_to_stable": float(res.steps_to_stable[e]),
            }
        )
    share = (time.perf_counter() - start) / len(cells)
    return [
        CellResult(
            cell=c,
            steps=table(steps_rows[ci], STEP_SCHEMA),
            episodes=table(ep_rows[ci], EPISODE_SCHEMA),
            seconds=share,
        )
        for ci, c in enumerate(cells)
    ]


_STEP_KEYS = frozenset(STEP_SCHEMA.names)


def run_llm_task(
    task: Task, model: Any, on_step: Callable[[int], None] | None = None
) -> list[CellResult]:
    """Play every cell of an LLM task in lockstep through ``model`` (loaded by the caller)."""
    from swalab.llm.runner import run_llm_episodes

    start = time.perf_counter()
    cells = task.cells
    first = cells[0]
    seeds = first.config.seed_list()
    lams = [float(c.config.lam) for c in cells]  # type: ignore[arg-type]
    sim = first.simulation()
    episodes = run_llm_episodes(sim, model, lams, seeds, first.protocol(), on_step=on_step)
    share = (time.perf_counter() - start) / len(cells)
    out = []
    for ci, cell in enumerate(cells):
        mine = episodes[ci * len(seeds) : (ci + 1) * len(seeds)]
        steps_rows = []
        ep_rows = []
        cell_params = params(cell)
        for ep in mine:
            for r in ep.rows:
                row = {k: x for k, x in r.items() if k in _STEP_KEYS}
                steps_rows.append({"cell": cell.key, "seed": ep.seed, "lam": ep.lam, **row})
            summary = ep.summary(sim.capacity)
            metrics = {k: summary.get(k) for k, _ in METRIC_FIELDS}
            if metrics["mean_load"] is not None:
                metrics["utilisation"] = metrics["mean_load"] / sim.capacity
            ep_rows.append(
                {
                    "cell": cell.key,
                    "seed": ep.seed,
                    "status": ep.status,
                    "error": ep.error,
                    "steps_played": len(ep.loads),
                    **cell_params,
                    **metrics,
                }
            )
        out.append(
            CellResult(
                cell=cell,
                steps=table(steps_rows, STEP_SCHEMA),
                episodes=table(ep_rows, EPISODE_SCHEMA),
                seconds=share,
            )
        )
    return out

"""Run one task: its cells advance together and come back as tidy tables.

Model-based tasks build one lockstep batch over every episode of every cell (parameters
may differ per episode) and, when ``record_decisions`` is on, replay each decision to store
the candidate set and its scores. LLM tasks run every cell's episodes through one model in
lockstep: one batched call per step for all of them. Workers only compute; the driver
writes, so the store has one writer.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from swalab.experiments import adapt
from swalab.experiments.cells import Cell, CellResult, Roster, Task
from swalab.experiments.store import EPISODE_SCHEMA, METRIC_FIELDS, STEP_SCHEMA, table


def params(cell: Cell) -> dict[str, Any]:
    """The parameter columns of a cell's episode rows (per-agent lists: see :func:`agents`).

    A column holds its config field as is, paired by :data:`~swalab.experiments.fields.FIELDS`
    (``policy.belief.window`` → ``belief_window``); the rest are summaries: one number for a
    per-agent value, the population's name, μ̂₀'s default C/N, and model fields only when a
    model plays.
    """
    from swalab.experiments.fields import column_values
    from swalab.experiments.population import heterogeneity, nominal, population_label

    c = cell.config
    g, m, b = c.game, c.model, c.policy.belief
    out = column_values(c.model_dump(mode="json"))
    out |= {
        "env": c.env,
        "x_max": nominal(c, "x_max"),
        "lam": nominal(c, "lam"),
        "population": population_label(c),
        "heterogeneity": heterogeneity(c),
        "anchors": [float(a) for a in c.policy.anchors],
        "initial_belief": b.initial if b.initial is not None else g.capacity / g.n_agents,
    }
    if m is None:  # these describe how a model is asked
        out |= dict.fromkeys(("selector", "fallback", "backend", "model", "temperature"))
    else:
        out["model"] = m.name or "default"
    return out


def agents(cell: Cell, seed: int) -> dict[str, Any]:
    """One episode's per-agent columns, and which agents count as prosocial.

    An agent is prosocial when it uses SWI with λ_i at or above its scorer's own switch:
    its scorer's predicted switch (:func:`swalab.theory.predicted_switch`).
    """
    from swalab import theory
    from swalab.experiments.population import realize

    c = cell.config
    g = c.game
    per = realize(c, seed)
    kinds, _ = c.agent_kinds()
    switch = [
        theory.predicted_switch(
            c.policy.scorer,
            n_agents=g.n_agents,
            capacity=g.capacity,
            beta=g.beta,
            x_max=x,
            margin=c.policy.margin,
            weight=w,
            value=v,
        )
        for x, w, v in zip(per["x_max"], per["weights"], per["values"], strict=True)
    ]
    prosocial = [
        k == "swi" and lam >= s - 1e-12 for k, lam, s in zip(kinds, per["lam"], switch, strict=True)
    ]
    return {
        "lam_per_agent": per["lam"],
        "x_max_per_agent": per["x_max"],
        "weights_per_agent": per["weights"],
        "values_per_agent": per["values"],
        "kinds": kinds,
        "prosocial": prosocial,
    }


_EPISODE_KEYS = frozenset(EPISODE_SCHEMA.names)

Episodes = dict[tuple[int, int], Any]


def _per_episode(
    cells: tuple[Cell, ...], pairs: list[tuple[int, int]]
) -> tuple[Episodes, Episodes]:
    """Each (cell index, seed)'s SimulationConfig and :func:`agents` columns.

    Built once per cell, and per seed only where a per-agent value is drawn per seed.
    """
    from swalab.experiments.population import sampled

    sims: Episodes = {}
    per: Episodes = {}
    done: dict[int, tuple[int, int]] = {}  # a cell's first episode, whose values it shares
    for ci, seed in pairs:
        key = (ci, seed)
        if ci in done and not sampled(cells[ci].config):
            sims[key], per[key] = sims[done[ci]], per[done[ci]]
            continue
        done.setdefault(ci, key)
        sims[key], per[key] = adapt.simulation(cells[ci].config, seed), agents(cells[ci], seed)
    return sims, per


class _Rows:
    """A task's step and episode rows, built one way for the engine, LLM and dilemma runners.

    Every row names its cell and seed; every episode row carries its cell's parameter
    columns, the episode's per-agent columns and its metrics.
    """

    def __init__(self, cells: tuple[Cell, ...], cell_params: list[dict[str, Any]]) -> None:
        self.cells = cells
        self.params = cell_params
        self.steps: list[list[dict[str, Any]]] = [[] for _ in cells]
        self.episodes: list[list[dict[str, Any]]] = [[] for _ in cells]
        self.start = time.perf_counter()

    def step(self, ci: int, seed: int, row: dict[str, Any]) -> dict[str, Any]:
        """Add one step row of cell ``ci`` (returned, for the caller to extend)."""
        full = {"cell": self.cells[ci].key, "seed": seed, **row}
        self.steps[ci].append(full)
        return full

    def episode(
        self,
        ci: int,
        seed: int,
        agent_columns: dict[str, Any],
        metrics: dict[str, Any],
        *,
        played: int,
        status: str = "ok",
        error: str | None = None,
    ) -> None:
        """Add one episode row of cell ``ci``."""
        self.episodes[ci].append(
            {
                "cell": self.cells[ci].key,
                "seed": seed,
                "status": status,
                "error": error,
                "steps_played": played,
                **self.params[ci],
                **{k: x for k, x in agent_columns.items() if k in _EPISODE_KEYS},
                **metrics,
            }
        )

    def results(self) -> list[CellResult]:
        """Each cell's rows as tables; the task's wall time is shared evenly."""
        share = (time.perf_counter() - self.start) / len(self.cells)
        return [
            CellResult(
                cell=c,
                tables={
                    "steps": table(self.steps[ci], STEP_SCHEMA),
                    "episodes": table(self.episodes[ci], EPISODE_SCHEMA),
                },
                seconds=share,
            )
            for ci, c in enumerate(self.cells)
        ]


def run_engine_task(task: Task) -> list[CellResult]:
    """Play every episode of a model-based task in one lockstep batch."""
    if adapt.is_dilemma(task.cells[0].config):
        return run_dilemma_task(task)
    from swalab.metrics import who_pays
    from swalab.swi.engine import LockstepBatch, run_lockstep
    from swalab.swi.simulation import play_episodes, replay_decisions

    cells = task.cells
    rows = _Rows(cells, [params(c) for c in cells])  # parameters once per cell
    episodes = [(ci, seed) for ci, c in enumerate(cells) for seed in c.config.seed_list()]
    sims, per = _per_episode(cells, episodes)
    first = sims[episodes[0]]
    horizons = np.array([sims[key].realized_steps(key[1]) for key in episodes], dtype=np.int64)

    def col(get: Callable[[Any], Any], source: dict[Any, Any] = sims) -> Any:
        return np.array([get(source[key]) for key in episodes])

    if cells[0].config.executor.engine == "loop":
        lam_rows = [per[key]["lam_per_agent"] for key in episodes]
        res = play_episodes([sims[key] for key in episodes], lam_rows, [s for _, s in episodes])
    else:
        batch = LockstepBatch(
            n_agents=first.n_agents,
            steps=int(horizons.max()),
            scorer=first.scorer,
            candidates=first.candidates,
            k=first.k,
            grid_step=first.grid_step,
            anchors=first.anchors,
            lam=col(lambda a: a["lam_per_agent"], per),
            capacity=col(lambda x: x.capacity),
            beta=col(lambda x: x.beta),
            x_max=col(lambda a: a["x_max_per_agent"], per),
            weights=col(lambda a: a["weights_per_agent"], per),
            values=col(lambda a: a["values_per_agent"], per),
            margin=col(lambda x: x.margin),
            gamma=col(lambda x: x.gamma),
            alpha=col(lambda x: x.alpha),
            initial_belief=col(lambda x: np.nan if x.initial_belief is None else x.initial_belief),
            seed=np.array([s for _, s in episodes], dtype=np.int64),
            belief=col(lambda x: x.belief_kind),
            window=col(lambda x: x.window),
            private=col(lambda x: x.private),
            delay=col(lambda x: x.delay),
            noise=col(lambda x: x.noise),
            agents=col(lambda a: a["kinds"], per),
            agent_demands=col(lambda x: x.agent_kinds()[1]),
            episode_steps=horizons,
        )
        res = run_lockstep(batch, record=True)
    assert res.demands is not None and res.loads is not None and res.welfare is not None
    assert res.beliefs is not None and res.rewards is not None
    for e, (ci, seed) in enumerate(episodes):
        cell = cells[ci]
        sim = sims[(ci, seed)]
        a = per[(ci, seed)]
        lam, played = a["lam_per_agent"], int(res.steps_played[e])
        decisions = (
            replay_decisions(sim, lam, seed, res.beliefs[e, :played])
            if cell.config.record_decisions
            else None
        )
        for step in range(played):
            load = float(res.loads[e, step])
            for i in range(sim.n_agents):
                row = rows.step(
                    ci,
                    seed,
                    {
                        "step": step,
                        "agent": i,
                        "kind": a["kinds"][i],
                        "prosocial": a["prosocial"][i],
                        "lam": lam[i],
                        "belief": float(res.beliefs[e, step, i]),
                        "demand": float(res.demands[e, step, i]),
                        "reward": float(res.rewards[e, step, i]),
                        "load": load,
                        "welfare": float(res.welfare[e, step]),
                        "overloaded": load > sim.capacity,
                    },
                )
                d = None if decisions is None else decisions[step][i]
                if d is not None:
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
        rows.episode(
            ci,
            seed,
            a,
            {
                "overload_rate": float(res.overload_rate[e]),
                "mean_welfare": float(res.mean_welfare[e]),
                "mean_load": float(res.mean_load[e]),
                "utilisation": float(res.mean_load[e]) / sim.capacity,
                "fairness": float(res.fairness[e]),
                "steps_to_stable": float(res.steps_to_stable[e]),
                **who_pays(
                    res.demands[e, :played],
                    res.rewards[e, :played],
                    a["x_max_per_agent"],
                    a["prosocial"],
                ),
            },
            played=played,
        )
    return rows.results()


_STEP_KEYS = frozenset(STEP_SCHEMA.names)


def run_llm_task(
    task: Task, model: Any, on_step: Callable[[int], None] | None = None
) -> list[CellResult]:
    """Play every cell of an LLM task in lockstep through ``model`` (loaded by the caller).

    The cells share the models, the protocol and N (:func:`~swalab.experiments.plan.
    make_tasks`); each episode plays its own cell's game, so one call per step serves them
    all.

    ``model`` is a :class:`~swalab.experiments.cells.Roster` when the cells' agents are
    answered by several models (their ``model_roster()``, in order).
    """
    if adapt.is_dilemma(task.cells[0].config):
        return run_dilemma_task(task, model, on_step)
    from swalab.llm.runner import run_llm_pairs
    from swalab.metrics import who_pays

    cells = task.cells
    first = cells[0].config
    rows = _Rows(cells, [params(c) for c in cells])
    sim = adapt.simulation(first)
    pairs = [(ci, seed) for ci, c in enumerate(cells) for seed in c.config.seed_list()]
    games, per = _per_episode(cells, pairs)
    models = model.models if isinstance(model, Roster) else (model,)
    roster = first.model_roster()
    if len(models) != len(roster):
        raise ValueError(f"the task needs {len(roster)} loaded models, got {len(models)}")
    played = run_llm_pairs(
        sim,
        models[0],
        [(per[key]["lam_per_agent"], key[1]) for key in pairs],
        adapt.protocol(first),
        on_step=on_step,
        games=[games[key] for key in pairs],
        others=[(m, adapt.protocol(first, c)) for m, c in zip(models[1:], roster[1:], strict=True)],
        seat_of=first.model_seats(),
    )
    for (ci, seed), ep in zip(pairs, played, strict=True):
        a, capacity = per[(ci, seed)], games[(ci, seed)].capacity
        for r in ep.rows:
            row = {k: x for k, x in r.items() if k in _STEP_KEYS}
            rows.step(ci, seed, {"prosocial": a["prosocial"][r["agent"]], **row})
        summary = ep.summary(capacity)
        metrics = {k: summary.get(k) for k, _ in METRIC_FIELDS}
        if metrics["mean_load"] is not None:
            metrics["utilisation"] = metrics["mean_load"] / capacity
            rewards = np.array([r["reward"] for r in ep.rows]).reshape(len(ep.loads), -1)
            metrics |= who_pays(np.stack(ep.demands), rewards, a["x_max_per_agent"], a["prosocial"])
        rows.episode(ci, seed, a, metrics, played=len(ep.loads), status=ep.status, error=ep.error)
    return rows.results()


def _dilemma_params(cell: Cell, dyn: Any) -> dict[str, Any]:
    """Episode parameter columns of a dilemma cell (the congestion-only ones are null)."""
    out = params(cell)
    nominal = dyn.fair_share() * dyn.n_agents
    switch = dyn.switch_point()
    out |= {
        "env_params": json.dumps(dyn.params(), sort_keys=True),
        "switch_point": None if math.isnan(switch) else float(switch),
        "capacity": float(nominal),
        "beta": None,
        "x_max": float(dyn.x_max),
        "margin": 0.0,
        "gamma": 0.0,
        "initial_belief": (
            cell.config.policy.belief.initial
            if cell.config.policy.belief.initial is not None
            else dyn.fair_share()
        ),
    }
    return out


def _dilemma_agents_cols(cell: Cell, dyn: Any, lam: list[float]) -> dict[str, Any]:
    kinds, _ = cell.config.agent_kinds()
    switch = dyn.switch_point()
    prosocial = [
        k == "swi" and (lam_i >= switch - 1e-12) for k, lam_i in zip(kinds, lam, strict=True)
    ]
    n = dyn.n_agents
    return {
        "lam_per_agent": lam,
        "x_max_per_agent": [float(dyn.x_max)] * n,
        "weights_per_agent": [1.0] * n,
        "values_per_agent": [1.0] * n,
        "kinds": kinds,
        "prosocial": prosocial,
    }


def _llm_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An LLM dilemma episode's failure, fallback and pick shares over its SWI decisions."""
    asked = [r for r in rows if r.get("fallback") is not None]
    n = max(len(asked), 1)
    picks = [r["pick_agrees"] for r in asked if r.get("pick_agrees") is not None]
    return {
        "proposal_failure_rate": sum(r["proposal_error"] is not None for r in asked) / n,
        "fallback_rate": sum(r["fallback"] != "none" for r in asked) / n,
        "pick_failure_rate": sum(r.get("pick_error") is not None for r in asked) / n,
        "pick_agreement": sum(picks) / len(picks) if picks else None,
    }


def run_dilemma_task(
    task: Task, model: Any = None, on_step: Callable[[int], None] | None = None
) -> list[CellResult]:
    """Play every episode of a dilemma task in lockstep (model-based, or through ``model``).

    The task's cells share one dynamics and one way of deciding (they differ in λ and
    seeds), so all their episodes advance together: one welfare-model call per step, and
    with a model one batched generation per step.
    """
    from swalab.experiments.population import realize
    from swalab.metrics import dilemma_metrics, who_pays
    from swalab.swi.dilemma import play_dilemma

    cells = task.cells
    first = cells[0]
    dyn = adapt.dynamics(first.config)
    rows = _Rows(cells, [_dilemma_params(c, dyn) for c in cells])
    agents_cfg = adapt.dilemma_agents(first.config)
    pairs = [(ci, seed) for ci, c in enumerate(cells) for seed in c.config.seed_list()]
    lams = [list(realize(cells[ci].config, seed)["lam"]) for ci, seed in pairs]
    seeds = [seed for _, seed in pairs]
    record = first.config.record_decisions
    rows_by_ep: list[list[dict[str, Any]]] | None = None
    agreement: float | None = None
    accounting: dict[str, float] = {}
    if model is None:
        res = play_dilemma(dyn, np.array(lams), seeds, agents_cfg, record=record)
    else:
        from swalab.llm.dilemmas import run_llm_dilemma
        from swalab.llm.judge import LLMJudge

        c = first.config
        assert c.model is not None
        judge = LLMJudge(model=model) if c.policy.scorer == "judge" else None
        run = run_llm_dilemma(
            dyn,
            model,
            np.array(lams),
            seeds,
            agents_cfg,
            k=c.policy.k,
            temperature=c.model.temperature,
            max_tokens=c.model.max_tokens,
            constrained=c.model.constrained,
            text=getattr(dyn, "mode", "") == "text",
            judge=judge,
            mode=c.policy.mode,
            selector=c.policy.selector,
            choose_template=adapt.protocol(c).choose_template,
            on_step=on_step,
        )
        res, rows_by_ep, agreement = run.result, run.rows, run.judge_agreement
        accounting = {
            k: x / len(pairs)
            for k, x in run.accounting.items()
            if k in ("prompts", "tokens_in", "tokens_shared", "tokens_out", "latency_s", "cached")
        }
    nominal = dyn.fair_share() * dyn.n_agents
    for e, (ci, seed) in enumerate(pairs):
        cell = cells[ci]
        a = _dilemma_agents_cols(cell, dyn, lams[e])
        for t in range(dyn.steps):
            for i in range(dyn.n_agents):
                row = rows.step(
                    ci,
                    seed,
                    {
                        "step": t,
                        "agent": i,
                        "kind": a["kinds"][i],
                        "prosocial": a["prosocial"][i],
                        "lam": lams[e][i],
                        "belief": float(res.beliefs[e, t, i]),
                        "demand": float(res.actions[e, t, i]),
                        "reward": float(res.rewards[e, t, i]),
                        "load": float(res.load[e, t]),
                        "welfare": float(res.welfare[e, t]),
                        "overloaded": bool(res.overloaded[e, t]),
                    },
                )
                if rows_by_ep is not None:
                    llm_row = rows_by_ep[e][t * dyn.n_agents + i]
                    row |= {k: x for k, x in llm_row.items() if k in _STEP_KEYS and k not in row}
                elif record and a["kinds"][i] == "swi" and res.private is not None:
                    assert res.group is not None
                    row |= {
                        "candidates": res.candidates.tolist(),
                        "private": res.private[e, t, i].tolist(),
                        "group": res.group[e, t, i].tolist(),
                        "argmax_demand": row["demand"],
                    }
        metrics = dilemma_metrics(
            res.actions[e],
            res.rewards[e],
            res.welfare[e],
            res.load[e],
            res.overloaded[e],
            {k: x[e] for k, x in res.extras.items()},
            nominal,
        )
        rows.episode(
            ci,
            seed,
            a,
            {
                **metrics,
                "judge_agreement": agreement,
                **accounting,
                **(_llm_rates(rows_by_ep[e]) if rows_by_ep is not None else {}),
                **who_pays(res.actions[e], res.rewards[e], a["x_max_per_agent"], a["prosocial"]),
            },
            played=dyn.steps,
            **_backend_failure(rows_by_ep[e] if rows_by_ep is not None else [], dyn.n_agents),
        )
    return rows.results()


def _backend_failure(rows: list[dict[str, Any]], n_agents: int) -> dict[str, Any]:
    """An LLM dilemma episode whose backend gave no answer is failed (its cell reruns)."""
    from swalab.llm.dilemmas import BACKEND_FAILURE

    for at, row in enumerate(rows):
        if row.get(BACKEND_FAILURE):
            step, agent = divmod(at, n_agents)
            message = (
                f"step {step}, agent {agent + 1}: backend gave no answer: {row[BACKEND_FAILURE]}"
            )
            return {"status": "failed", "error": message}
    return {}

"""SWI agents in the resource dilemmas, every episode of a batch in lockstep.

For ``rate_limit_v0``, ``context_budget_v0`` and ``commons_v0`` the group scorer's welfare
model is the environment's own :class:`~swalab.envs.dynamics.Dynamics`: each agent scores
each candidate by the transition of the joint action in which it plays the candidate and
everyone else plays its belief (their mean action), plus the dynamics' continuation. The
scorer is the ``consistent`` one of the congestion game, on one common scale:

* ``private(a) = R̂_i(a) + cont/N`` (own predicted reward, own share of what follows);
* ``group(a) = (Ŵ(a) + cont)/N``;

and the choice is ``argmax (1 − λ_i)·private + λ_i·group`` (ties to the smaller action).
The belief is the paper's EMA of the public mean action, starting at the dynamics' fair
share. One ``transition`` call per step scores every candidate of every agent of every
episode, so a sweep costs a few array operations per step.

Outsiders play their own rule: ``greedy`` (x_max), ``fixed`` (its demand), ``random``
(a seeded draw from the candidate grid) and, in ``rate_limit_v0``, ``retry`` (naive
retries: its demand of new calls plus every call rejected last step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.envs.dynamics import Dynamics, State
from swalab.swi import _rng

#: Agent kinds a dilemma population may hold.
DILEMMA_KINDS = ("swi", "greedy", "fixed", "random", "retry")


def candidate_grid(dyn: Dynamics, grid_step: float, anchors: Sequence[float] = ()) -> FloatArray:
    """The candidate actions: ``{0, step, …, x_max}`` united with anchors, sorted.

    Integer-action dynamics (API calls) use step 1 and round anchors to whole calls.
    """
    step = 1.0 if dyn.integer_actions else v.positive("grid_step", grid_step)
    size = math.floor(dyn.x_max / step + 1e-9) + 1
    grid = np.minimum(np.arange(size) * step, dyn.x_max)
    extra = np.clip(np.asarray(list(anchors), dtype=np.float64), 0.0, dyn.x_max)
    if dyn.integer_actions:
        extra = np.round(extra)
    return np.unique(np.concatenate([grid, extra, [dyn.x_max]]))


@dataclass(frozen=True, kw_only=True)
class DilemmaAgents:
    """How the agents of a dilemma decide.

    Attributes:
        grid_step: Candidate grid spacing (1 for integer actions).
        anchors: Extra candidates.
        alpha: EMA smoothing of the mean-action belief.
        initial_belief: μ̂₀; None: the dynamics' fair share.
        kinds: Each agent's kind (:data:`DILEMMA_KINDS`); None: all SWI.
        demands: Each agent's demand parameter (``fixed``, ``retry``); NaN: none.
    """

    grid_step: float = 0.25
    anchors: tuple[float, ...] = ()
    alpha: float = 0.2
    initial_belief: float | None = None
    kinds: tuple[str, ...] | None = None
    demands: tuple[float, ...] | None = None

    def agent_kinds(self, dyn: Dynamics) -> tuple[list[str], list[float]]:
        """Every agent's kind and demand, checked against ``dyn``.

        Raises:
            ValueError: Naming the agent and what is allowed.
        """
        n = dyn.n_agents
        kinds = list(self.kinds) if self.kinds is not None else ["swi"] * n
        demands = list(self.demands) if self.demands is not None else [math.nan] * n
        if len(kinds) != n or len(demands) != n:
            raise ValueError(f"population has {len(kinds)} agents: {dyn.name} has n_agents={n}")
        for i, (kind, demand) in enumerate(zip(kinds, demands, strict=True)):
            if kind not in DILEMMA_KINDS:
                raise ValueError(f"population[{i}].kind={kind!r} is not known in {dyn.name}: "
                                 f"choose one of {list(DILEMMA_KINDS)}")  # fmt: skip
            if kind == "retry" and "last_rejected" not in dyn.initial():
                raise ValueError(f"population[{i}].kind='retry' needs rejected calls: only "
                                 f"rate_limit_v0 has them, not {dyn.name}")  # fmt: skip
            if kind in ("fixed",) and math.isnan(demand):
                raise ValueError(f"population[{i}].kind='fixed' needs a demand")
        return kinds, demands


@dataclass
class DilemmaResult:
    """A batch of played episodes (E episodes, T steps, N agents, M candidates).

    Attributes:
        actions: ``(E, T, N)``.
        rewards: ``(E, T, N)``.
        welfare: ``(E, T)``.
        load: ``(E, T)``.
        capacity: ``(E, T)``.
        overloaded: ``(E, T)``.
        beliefs: ``(E, T, N)``: the mean-action belief each agent decided with.
        extras: The dynamics' extras, ``(E, T, ...)`` each.
        candidates: ``(M,)`` the candidate grid.
        private: ``(E, T, N, M)`` private scores, when recorded.
        group: ``(E, T, N, M)`` group scores, when recorded.
    """

    actions: FloatArray
    rewards: FloatArray
    welfare: FloatArray
    load: FloatArray
    capacity: FloatArray
    overloaded: np.ndarray
    beliefs: FloatArray
    extras: dict[str, np.ndarray]
    candidates: FloatArray
    private: FloatArray | None = None
    group: FloatArray | None = None


def outsider_action(kind: str, demand: float, dyn: Dynamics, state: State, agent: int,
                    seed: int, step: int, grid: FloatArray) -> float:  # fmt: skip
    """One outsider's action in one (unbatched) state."""
    if kind == "greedy":
        return float(dyn.x_max)
    if kind == "fixed":
        return float(min(demand, dyn.x_max))
    if kind == "random":
        u = _rng.uniform(_rng.stream_key(seed, step, _rng.OUTSIDER_STREAM + agent), 0)
        return float(grid[min(math.floor(u * len(grid)), len(grid) - 1)])
    if kind == "retry":
        new = dyn.fair_share() if math.isnan(demand) else demand
        return float(min(dyn.x_max, round(new + float(state["last_rejected"][agent]))))
    raise ValueError(f"kind={kind!r} is not an outsider: choose one of {list(DILEMMA_KINDS[1:])}")


def score(dyn: Dynamics, state: State, belief: FloatArray, grid: FloatArray
          ) -> tuple[FloatArray, FloatArray]:  # fmt: skip
    """``(private, group)`` of every candidate for every agent (see the module docstring)."""
    own, welfare = dyn.counterfactual(state, belief, grid)
    return own, welfare / dyn.n_agents


def play_dilemma(
    dyn: Dynamics,
    lam: FloatArray,
    seeds: Sequence[int],
    agents: DilemmaAgents | None = None,
    *,
    record: bool = False,
) -> DilemmaResult:
    """Play one episode per row of ``lam`` (``(E, N)`` or ``(E,)``), all in lockstep.

    Args:
        dyn: The dilemma.
        lam: Social weights, one row per episode (one value per episode or per agent).
        seeds: Episode seeds (name the outsiders' random draws).
        agents: How agents decide (default: all SWI on a 0.25 grid, α = 0.2).
        record: Keep every candidate's private and group score.
    """
    agents = agents or DilemmaAgents()
    n = dyn.n_agents
    lam_arr = np.asarray(lam, dtype=np.float64)
    if lam_arr.ndim == 1:
        lam_arr = np.repeat(lam_arr[:, None], n, axis=1)
    if lam_arr.ndim != 2 or lam_arr.shape[1] != n:
        raise ValueError(f"lam has shape {lam_arr.shape}: must be (episodes,) or (episodes, {n})")
    if np.isnan(lam_arr).any() or (lam_arr < 0).any() or (lam_arr > 1).any():
        raise ValueError("lam is out of range: every λ must lie in [0, 1]")
    e_count = lam_arr.shape[0]
    seed_list = [v.integer_at_least(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds)]
    if len(seed_list) != e_count:
        raise ValueError(f"seeds has {len(seed_list)} entries: must have one per episode")
    v.in_range("alpha", agents.alpha, 0.0, 1.0)
    kinds, demands = agents.agent_kinds(dyn)
    swi = np.array([k == "swi" for k in kinds])
    grid = candidate_grid(dyn, agents.grid_step, agents.anchors)
    t_steps = dyn.steps
    state = dyn.initial((e_count,))
    mu0 = dyn.fair_share() if agents.initial_belief is None else agents.initial_belief
    mu = np.full(e_count, float(mu0))
    shape = (e_count, t_steps)
    res = DilemmaResult(
        actions=np.zeros((*shape, n)), rewards=np.zeros((*shape, n)),
        welfare=np.zeros(shape), load=np.zeros(shape), capacity=np.zeros(shape),
        overloaded=np.zeros(shape, dtype=bool), beliefs=np.zeros((*shape, n)),
        extras={}, candidates=grid,
        private=np.zeros((*shape, n, len(grid))) if record else None,
        group=np.zeros((*shape, n, len(grid))) if record else None,
    )  # fmt: skip
    for t in range(t_steps):
        belief = np.repeat(mu[:, None], n, axis=1)
        private, group = score(dyn, state, belief, grid)
        utility = (1.0 - lam_arr[..., None]) * private + lam_arr[..., None] * group
        if np.isnan(utility).any():
            raise ValueError(f"{dyn.name}: the welfare model returned NaN at step {t}")
        # argmax takes the first maximum: the smallest action, as grid is sorted.
        actions = grid[np.argmax(utility, axis=-1)]
        for i in np.flatnonzero(~swi):
            for e in range(e_count):
                one = {key: val[e] for key, val in state.items()}
                actions[e, i] = outsider_action(kinds[i], demands[i], dyn, one, int(i),
                                                seed_list[e], t, grid)  # fmt: skip
        state, out = dyn.transition(state, actions)
        res.actions[:, t] = actions
        res.rewards[:, t] = out.rewards
        res.welfare[:, t] = out.welfare
        res.load[:, t] = out.load
        res.capacity[:, t] = out.capacity
        res.overloaded[:, t] = out.overloaded
        res.beliefs[:, t] = belief
        for key, value in out.extras.items():
            arr = np.asarray(value)
            if key not in res.extras:
                res.extras[key] = np.zeros(shape + arr.shape[1:], dtype=arr.dtype)
            res.extras[key][:, t] = arr
        if res.private is not None and res.group is not None:
            res.private[:, t] = private
            res.group[:, t] = group
        mu = (1.0 - agents.alpha) * mu + agents.alpha * actions.mean(axis=1)
    return res


def episode_row(res: DilemmaResult, e: int) -> dict[str, Any]:
    """Episode ``e`` as plain arrays (for metrics and stores)."""
    return {
        "actions": res.actions[e], "rewards": res.rewards[e], "welfare": res.welfare[e],
        "load": res.load[e], "capacity": res.capacity[e], "overloaded": res.overloaded[e],
        "extras": {k: x[e] for k, x in res.extras.items()},
    }  # fmt: skip

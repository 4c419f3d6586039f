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

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.envs.dynamics import Dynamics, Outcome, State
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
                raise ValueError(
                    f"population[{i}].kind={kind!r} is not known in {dyn.name}: "
                    f"choose one of {list(DILEMMA_KINDS)}"
                )
            if kind == "retry" and "last_rejected" not in dyn.initial():
                raise ValueError(
                    f"population[{i}].kind='retry' needs rejected calls: only "
                    f"rate_limit_v0 has them, not {dyn.name}"
                )
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

    @classmethod
    def empty(
        cls, episodes: int, steps: int, n: int, grid: FloatArray, record: bool
    ) -> DilemmaResult:
        """Zeroed arrays for ``episodes × steps`` (scores only when ``record``)."""
        shape = (episodes, steps)
        return cls(
            actions=np.zeros((*shape, n)),
            rewards=np.zeros((*shape, n)),
            welfare=np.zeros(shape),
            load=np.zeros(shape),
            capacity=np.zeros(shape),
            overloaded=np.zeros(shape, dtype=bool),
            beliefs=np.zeros((*shape, n)),
            extras={},
            candidates=grid,
            private=np.zeros((*shape, n, len(grid))) if record else None,
            group=np.zeros((*shape, n, len(grid))) if record else None,
        )

    def put(
        self,
        t: int,
        actions: FloatArray,
        out: Outcome,
        belief: FloatArray,
        private: FloatArray | None = None,
        group: FloatArray | None = None,
    ) -> None:
        """Record step ``t`` of every episode."""
        self.actions[:, t] = actions
        self.rewards[:, t] = out.rewards
        self.welfare[:, t] = out.welfare
        self.load[:, t] = out.load
        self.capacity[:, t] = out.capacity
        self.overloaded[:, t] = out.overloaded
        self.beliefs[:, t] = belief
        for key, value in out.extras.items():
            arr = np.asarray(value)
            if key not in self.extras:
                shape = self.welfare.shape + arr.shape[1:]
                self.extras[key] = np.zeros(shape, dtype=arr.dtype)
            self.extras[key][:, t] = arr
        if self.private is not None and private is not None:
            self.private[:, t] = private
        if self.group is not None and group is not None:
            self.group[:, t] = group


def outsider_action(
    kind: str,
    demand: float,
    dyn: Dynamics,
    state: State,
    agent: int,
    seed: int,
    step: int,
    grid: FloatArray,
) -> float:
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


def score(
    dyn: Dynamics, state: State, belief: FloatArray, grid: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``(private, group)`` of every candidate for every agent (see the module docstring)."""
    own, welfare = dyn.counterfactual(state, belief, grid)
    return own, welfare / dyn.n_agents


def choose(grid: FloatArray, utility: FloatArray) -> FloatArray:
    """The best candidate per row (last axis), ties to the smaller action.

    ``grid`` is ``(M,)`` or shaped like ``utility``; candidates must be sorted ascending
    along the last axis (``argmax`` takes the first maximum).
    """
    if np.isnan(utility).any():
        raise ValueError("utility contains NaN: the welfare model returned an invalid score")
    best = np.argmax(utility, axis=-1)
    if np.ndim(grid) == 1:
        result: FloatArray = np.asarray(grid)[best]
        return result
    return np.take_along_axis(np.asarray(grid), best[..., None], axis=-1)[..., 0]


class Lockstep:
    """A batch of dilemma episodes advanced one step at a time.

    :meth:`decide` gives every agent's action from the current state and beliefs;
    :meth:`advance` plays them through the pure dynamics and updates the beliefs. Live
    runs and LLM runs drive the same object with other sources of actions or outcomes.
    """

    def __init__(
        self,
        dyn: Dynamics,
        lam: FloatArray,
        seeds: Sequence[int],
        agents: DilemmaAgents | None = None,
    ) -> None:
        """Check the inputs and set up the initial state and beliefs.

        Raises:
            ValueError: Naming the bad argument and what is allowed.
        """
        self.dyn = dyn
        self.agents = agents or DilemmaAgents()
        n = dyn.n_agents
        lam_arr = np.asarray(lam, dtype=np.float64)
        if lam_arr.ndim == 1:
            lam_arr = np.repeat(lam_arr[:, None], n, axis=1)
        if lam_arr.ndim != 2 or lam_arr.shape[1] != n:
            raise ValueError(
                f"lam has shape {lam_arr.shape}: must be (episodes,) or (episodes, {n})"
            )
        if np.isnan(lam_arr).any() or (lam_arr < 0).any() or (lam_arr > 1).any():
            raise ValueError("lam is out of range: every λ must lie in [0, 1]")
        self.lam = lam_arr
        self.seeds = [v.integer_at_least(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds)]
        if len(self.seeds) != lam_arr.shape[0]:
            raise ValueError(f"seeds has {len(self.seeds)} entries: must have one per episode")
        v.in_range("alpha", self.agents.alpha, 0.0, 1.0)
        self.kinds, self.demands = self.agents.agent_kinds(dyn)
        self.grid = candidate_grid(dyn, self.agents.grid_step, self.agents.anchors)
        self.state = dyn.initial((lam_arr.shape[0],))
        mu0 = dyn.fair_share() if self.agents.initial_belief is None else self.agents.initial_belief
        self.mu = np.full(lam_arr.shape[0], float(mu0))

    @property
    def belief(self) -> FloatArray:
        """``(E, N)``: every agent's estimate of the others' mean action."""
        return np.repeat(self.mu[:, None], self.dyn.n_agents, axis=1)

    def scores(self, candidates: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
        """``(private, group)`` of every candidate (default: the grid) of every agent."""
        grid = self.grid if candidates is None else candidates
        return score(self.dyn, self.state, self.belief, grid)

    def utility(self, private: FloatArray, group: FloatArray) -> FloatArray:
        """``(1 − λ_i)·private + λ_i·group``."""
        lam = self.lam[..., None]
        result: FloatArray = (1.0 - lam) * private + lam * group
        return result

    def outsiders(self, actions: FloatArray, t: int) -> FloatArray:
        """``actions`` with every non-SWI agent's entry replaced by its own rule."""
        out = np.array(actions, dtype=np.float64)
        others = [i for i, kind in enumerate(self.kinds) if kind != "swi"]
        if not others:
            return out
        for e, seed in enumerate(self.seeds):
            one = {key: val[e] for key, val in self.state.items()}
            for i in others:
                out[e, i] = outsider_action(
                    self.kinds[i], self.demands[i], self.dyn, one, i, seed, t, self.grid
                )
        return out

    def decide(self, t: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Every agent's action at step ``t`` on the grid, with the scores behind it."""
        private, group = self.scores()
        actions = self.outsiders(choose(self.grid, self.utility(private, group)), t)
        return actions, private, group

    def advance(self, actions: FloatArray) -> Outcome:
        """Play ``actions`` through the pure dynamics; beliefs see the mean action."""
        self.state, out = self.dyn.transition(self.state, actions)
        alpha = self.agents.alpha
        self.mu = (1.0 - alpha) * self.mu + alpha * np.asarray(actions).mean(axis=-1)
        return out


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
    run = Lockstep(dyn, lam, seeds, agents)
    res = DilemmaResult.empty(len(run.seeds), dyn.steps, dyn.n_agents, run.grid, record)
    for t in range(dyn.steps):
        belief = run.belief
        actions, private, group = run.decide(t)
        res.put(t, actions, run.advance(actions), belief, private, group)
    return res

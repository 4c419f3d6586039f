"""Model-based SWI episodes of ``congestion_v0``: the per-agent reference path.

Every agent of every step is decided one at a time by :class:`SWIPolicy` on its own
candidate set, and the joint action is paid by the environment itself; this mirrors the
structure of the paper's code and is the path a faster engine is checked against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.analysis.metrics import jain_fairness, mean_welfare, overload_rate, steps_to_stable
from swalab.envs.congestion_v0 import CongestionEnv
from swalab.swi import _rng
from swalab.swi.beliefs import BELIEF_KINDS, BeliefModel, make_belief
from swalab.swi.candidates import (
    REFERENCE_ANCHORS,
    CandidateSource,
    GridCandidates,
    RandomGridCandidates,
    candidate_set,
)
from swalab.swi.outsiders import check_kind, outsider_demand
from swalab.swi.policy import Decision, SWIPolicy
from swalab.swi.scorers import LoadContext, make_scorer

CANDIDATE_MODES = ("grid", "random")
HORIZONS = ("fixed", "geometric")
#: A geometric horizon is cut at this multiple of its mean (probability about e^-20).
HORIZON_CAP = 20


def realized_horizon(horizon: str, steps: int, seed: int) -> int:
    """The number of steps an episode plays: ``steps``, or a seeded geometric draw.

    A geometric horizon (support 1, 2, …, mean ``steps``) hides the last step from the
    agents, so nothing invites backward induction; the draw comes from the counter-based
    stream of the seed, so every path and executor plays the same T.
    """
    if horizon == "fixed" or steps == 1:
        return steps
    if horizon != "geometric":
        raise ValueError(f"horizon={horizon!r} is not known: choose one of {list(HORIZONS)}")
    u = _rng.uniform(_rng.stream_key(seed, 0, _rng.HORIZON_STREAM), 0)
    draw = 1 + math.floor(math.log1p(-u) / math.log1p(-1.0 / steps))
    return min(draw, HORIZON_CAP * steps)


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """A model-based SWI experiment; defaults are the paper's reference configuration.

    Attributes:
        n_agents: Agents ``N``.
        capacity: Capacity ``C``.
        beta: Severity ``β``.
        x_max: Demand cap, one for all agents or one per agent.
        weights: Per-agent impacts w_i on the load (default 1).
        values: Per-agent private values v_i (default 1).
        steps: Horizon ``T``.
        k: Random draws per agent and step (``candidates="random"``).
        grid_step: Spacing of the demand grid candidates are taken from.
        candidates: ``"grid"`` (the whole grid) or ``"random"`` (``k`` seeded draws).
        anchors: Always-present candidates, clipped to ``[0, x_max]``.
        scorer: ``"paper"`` or ``"consistent"``.
        margin: Safety margin ``m``.
        gamma: Centering strength (0 turns centering off).
        alpha: EMA smoothing.
        initial_belief: ``μ̂₀``; ``None`` means ``C/N``.
        belief_kind: ``"ema"`` (paper), ``"last"`` or ``"window"``.
        window: Observations a window belief pools.
        private: Each agent observes the others' mean rather than the public mean.
        delay: Agents decide with the belief of ``delay`` steps earlier.
        noise: Standard deviation of Gaussian noise on every agent's belief.
        agents: Per-agent kinds (:data:`~swalab.swi.outsiders.AGENT_KINDS`); ``None``
            means every agent uses SWI.
        agent_demands: Per-agent demand parameter of ``fixed`` / ``tit_for_tat`` agents
            (NaN: the default).
        horizon: ``"fixed"`` (``steps`` steps) or ``"geometric"`` (mean ``steps``).
    """

    n_agents: int = 5
    capacity: float = 20.0
    beta: float = 1.6
    x_max: float | tuple[float, ...] = 10.0
    weights: tuple[float, ...] | None = None
    values: tuple[float, ...] | None = None
    steps: int = 20
    k: int = 7
    grid_step: float = 0.25
    candidates: str = "grid"
    anchors: tuple[float, ...] = field(default=REFERENCE_ANCHORS)
    scorer: str = "paper"
    margin: float = 2.0
    gamma: float = 0.02
    alpha: float = 0.2
    initial_belief: float | None = None
    belief_kind: str = "ema"
    window: int = 5
    private: bool = False
    delay: int = 0
    noise: float = 0.0
    agents: tuple[str, ...] | None = None
    agent_demands: tuple[float, ...] | None = None
    horizon: str = "fixed"

    def __post_init__(self) -> None:
        if self.candidates not in CANDIDATE_MODES:
            known = list(CANDIDATE_MODES)
            raise ValueError(f"candidates={self.candidates!r} is not known: choose one of {known}")
        object.__setattr__(self, "anchors", v.float_list("anchors", self.anchors))
        # Building every part once validates all fields with messages that name them.
        for name in ("x_max", "weights", "values"):
            value = getattr(self, name)
            if isinstance(value, list | tuple | np.ndarray):
                object.__setattr__(self, name, v.float_list(name, value))
        if self.horizon not in HORIZONS:
            raise ValueError(f"horizon={self.horizon!r} is not known: choose one of "
                             f"{list(HORIZONS)}")  # fmt: skip
        self.agent_kinds()
        self.env()
        self.candidate_source()
        self.scoring_policy()
        self.belief()

    def agent_kinds(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Every agent's kind and demand parameter (NaN: none or the default), checked."""
        n = v.integer_at_least("n_agents", self.n_agents, 2)
        kinds = ("swi",) * n if self.agents is None else tuple(self.agents)
        demands = (math.nan,) * n if self.agent_demands is None else self.agent_demands
        for name, seq in (("agents", kinds), ("agent_demands", demands)):
            if len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries: must have one per agent ({n})")
        for i, (kind, demand) in enumerate(zip(kinds, demands, strict=True)):
            check_kind(f"agents[{i}]", kind, float(demand))
        return kinds, tuple(float(d) for d in demands)

    def realized_steps(self, seed: int) -> int:
        """The horizon episode ``seed`` plays (see :func:`realized_horizon`)."""
        return realized_horizon(self.horizon, self.steps, seed)

    def env(self, steps: int | None = None) -> CongestionEnv:
        """Return a fresh ``congestion_v0`` with this game's parameters."""
        return CongestionEnv(
            n_agents=self.n_agents,
            capacity=self.capacity,
            beta=self.beta,
            x_max=self.x_max,
            steps=self.steps if steps is None else steps,
            weights=self.weights,
            values=self.values,
        )

    def candidate_source(self) -> CandidateSource:
        """Return the proposal source named by ``candidates`` (per-agent caps included)."""
        if self.candidates == "grid":
            return GridCandidates(x_max=self.x_max, step=self.grid_step)
        return RandomGridCandidates(x_max=self.x_max, k=self.k, step=self.grid_step)

    def scoring_policy(self) -> SWIPolicy:
        """Return the SWI policy with the named scorer (λ is given per decision)."""
        scorer = make_scorer(
            self.scorer,
            n_agents=self.n_agents,
            capacity=self.capacity,
            beta=self.beta,
            margin=self.margin,
            gamma=self.gamma,
        )
        return SWIPolicy(scorer=scorer)

    def belief(self) -> BeliefModel:
        """Return the belief model, wrapped by its delay and noise."""
        if self.belief_kind not in BELIEF_KINDS:
            raise ValueError(f"belief_kind={self.belief_kind!r} is not known: choose one of "
                             f"{list(BELIEF_KINDS)}")  # fmt: skip
        return make_belief(
            self.belief_kind, alpha=self.alpha, window=self.window,
            initial=self.initial_belief, private=self.private, delay=self.delay,
            noise=self.noise,
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Episode:
    """The trajectory of one episode (steps on the first axis).

    Attributes:
        demands: ``(T, N)`` chosen demands.
        loads: ``(T,)`` total loads.
        welfare: ``(T,)`` realised welfare.
        beliefs: ``(T, N)`` beliefs the agents decided with.
        rewards: ``(T, N)`` intrinsic rewards paid.
    """

    demands: FloatArray
    loads: FloatArray
    welfare: FloatArray
    beliefs: FloatArray
    rewards: FloatArray


def run_episode(
    config: SimulationConfig,
    lam: float | Sequence[float],
    seed: int,
    source: CandidateSource | None = None,
) -> Episode:
    """Play one episode with every SWI agent deciding through :class:`SWIPolicy`.

    Args:
        config: The experiment.
        lam: Social weight for all agents or one per agent (outsiders ignore theirs).
        seed: Seeds the random candidate draws, noise, outsiders and horizon; the same seed
            gives a bit-identical episode.
        source: Proposals to use instead of the ones ``config.candidates`` names (e.g.
            :class:`~swalab.swi.FixedCandidates` or an LLM).
    """
    n = config.n_agents
    lams = v.per_agent("lam", lam, n, 0.0, check="unit_interval")
    seed = v.integer_at_least("seed", seed, 0)
    steps = config.realized_steps(seed)
    env = config.env(steps)
    source = config.candidate_source() if source is None else source
    policy = config.scoring_policy()
    belief_model = config.belief()
    game = env.game

    env.reset(seed=seed)
    state = belief_model.init(n, game.capacity)
    rows: dict[str, list[FloatArray]] = {k: [] for k in ("d", "l", "w", "b", "r")}
    last: tuple[float, FloatArray] | None = None
    for t in range(steps):
        belief = belief_model.read(state, seed=seed, step=t)
        decisions = _decide_step(config, game, source, policy, lams, belief, seed, t)
        demands = play_outsiders(config, game, decisions, last, seed, t)
        _, rewards, _, _, infos = env.step(dict(zip(env.agents, demands, strict=True)))
        info = next(iter(infos.values()))
        rows["d"].append(demands)
        rows["l"].append(np.array(info["load"]))
        rows["w"].append(np.array(info["welfare"]))
        rows["b"].append(belief)
        rows["r"].append(np.array(list(rewards.values())))
        state = belief_model.update(state, info["load"], demands, game.weights)
        last = (float(info["load"]), demands)
    return Episode(
        demands=np.stack(rows["d"]),
        loads=np.stack(rows["l"]),
        welfare=np.stack(rows["w"]),
        beliefs=np.stack(rows["b"]),
        rewards=np.stack(rows["r"]),
    )


def play_outsiders(
    config: SimulationConfig,
    game: Any,
    decisions: Sequence[Decision | float | None],
    last: tuple[float, FloatArray] | None,
    seed: int,
    t: int,
) -> FloatArray:
    """The step's joint demand: SWI agents' decisions, every other agent's own rule.

    Args:
        config: The experiment (agent kinds, grid step).
        game: The game's parameters (caps, impacts, capacity).
        decisions: Per agent, the SWI decision (or its demand); ignored for outsiders.
        last: Last step's load and demands (``None`` before the first step).
        seed: Episode seed.
        t: Step index.
    """
    kinds, params = config.agent_kinds()
    out = np.empty(config.n_agents)
    for i, (kind, d) in enumerate(zip(kinds, decisions, strict=True)):
        if kind == "swi":
            assert d is not None
            out[i] = d.action if isinstance(d, Decision) else d
            continue
        out[i] = outsider_demand(
            kind, demand=params[i], x_max=float(game.x_max[i]), weight=float(game.weights[i]),
            capacity=float(game.capacity), n_agents=config.n_agents,
            grid_step=config.grid_step, last_load=None if last is None else last[0],
            last_own=None if last is None else float(last[1][i]), seed=seed, step=t, agent=i,
        )  # fmt: skip
    return out


def _decide_step(
    config: SimulationConfig,
    game: Any,
    source: CandidateSource,
    policy: SWIPolicy,
    lams: FloatArray,
    belief: FloatArray,
    seed: int,
    t: int,
) -> list[Decision | None]:
    """Every SWI agent's decision of step ``t``, one at a time (``None`` for outsiders)."""
    n = config.n_agents
    kinds, _ = config.agent_kinds()
    proposals = source.propose(seed=seed, step=t, n_agents=n)
    out: list[Decision | None] = []
    for i in range(n):
        if kinds[i] != "swi":
            out.append(None)
            continue
        cands = candidate_set(proposals[i], config.anchors, float(game.x_max[i]))
        context = LoadContext(
            others_load=(n - 1) * belief[i],
            x_max=game.x_max[i],
            weight=game.weights[i],
            value=game.values[i],
        )
        out.append(policy.decide(cands.values, context, lam=float(lams[i])))
    return out


def replay_decisions(
    config: SimulationConfig,
    lam: float | Sequence[float],
    seed: int,
    beliefs: FloatArray,
) -> list[list[Decision | None]]:
    """Rebuild every SWI decision of a played episode from the beliefs its agents held.

    The lockstep engine keeps only demands and beliefs; given those, the candidate sets
    and their scores are a pure function of (config, λ, seed, step, agent), so they are
    recomputed here with the per-agent path rather than carried through the kernel.

    Args:
        config: The episode's experiment.
        lam: Its social weight(s).
        seed: Its seed.
        beliefs: ``(T, N)`` beliefs the agents decided with (after delay and noise).

    Returns:
        ``decisions[t][i]`` with candidates, private, group and utility scores; ``None``
        for outsiders.
    """
    lams = v.per_agent("lam", lam, config.n_agents, 0.0, check="unit_interval")
    game = config.env().game
    source, policy = config.candidate_source(), config.scoring_policy()
    return [
        _decide_step(config, game, source, policy, lams, np.asarray(b), seed, t)
        for t, b in enumerate(beliefs)
    ]


@dataclass(frozen=True, kw_only=True)
class LambdaSummary:
    """Metrics of one λ over seeds (SPEC §2 "Metrics").

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
        rows.append((
            float(overload_rate(ep.loads, cap)), float(mean_welfare(ep.welfare)),
            float(ep.loads.mean()), float(jain_fairness(ep.demands).mean()),
            float(steps_to_stable(ep.loads, cap)),
        ))  # fmt: skip
    return tuple(float(x) for x in np.mean(np.asarray(rows), axis=0))


def _lockstep_summaries(
    config: SimulationConfig, lams: list[float], seeds: int
) -> dict[float, tuple[float, ...]]:
    from swalab.swi.engine import LockstepBatch, run_lockstep

    res = run_lockstep(LockstepBatch.from_config(config, lams, range(seeds)))
    shape = (len(lams), seeds)
    columns = [res.overload_rate, res.mean_welfare, res.mean_load, res.fairness,
               res.steps_to_stable]  # fmt: skip
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
            lam=lam, overload_rate=s[0], mean_welfare=s[1], delta_welfare=s[1] - base,
            mean_load=s[2], fairness=s[3], steps_to_stable=s[4], seeds=n_seeds,
        )
        for lam in lam_list
        for s in [cache[lam]]
    ]  # fmt: skip

"""Model-based SWI episodes of ``congestion_v0``: the per-agent reference path.

Every agent of every step is decided one at a time by :class:`SWIPolicy` on its own
candidate set, and the joint action is paid by the environment itself; this mirrors the
structure of the paper's code and is the path a faster engine is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.metrics import jain_fairness, mean_welfare, overload_rate, steps_to_stable
from swalab.swi.candidates import CandidateSource, candidate_set
from swalab.swi.config import SimulationConfig
from swalab.swi.engine import LockstepResult
from swalab.swi.outsiders import outsider_demand
from swalab.swi.policy import Decision, SWIPolicy
from swalab.swi.scorers import LoadContext


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
            kind,
            demand=params[i],
            x_max=float(game.x_max[i]),
            weight=float(game.weights[i]),
            capacity=float(game.capacity),
            n_agents=config.n_agents,
            grid_step=config.grid_step,
            last_load=None if last is None else last[0],
            last_own=None if last is None else float(last[1][i]),
            seed=seed,
            step=t,
            agent=i,
        )
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


def play_episodes(
    configs: Sequence[SimulationConfig],
    lams: Sequence[float | Sequence[float]],
    seeds: Sequence[int],
) -> LockstepResult:
    """Play episodes one by one on the per-agent path, shaped as the engine returns them.

    The engine plays the same episodes bit-identically; this is how a sweep runs on the
    per-agent path instead (``executor.engine: loop``), to check the engine or to step
    through a decision in a debugger.
    """
    episodes = [run_episode(c, lam, s) for c, lam, s in zip(configs, lams, seeds, strict=True)]
    horizon = max(len(ep.loads) for ep in episodes)

    def pad(arrays: list[FloatArray]) -> FloatArray:
        out = np.full((len(arrays), horizon, *arrays[0].shape[1:]), np.nan)
        for i, a in enumerate(arrays):
            out[i, : len(a)] = a
        return out

    caps = [np.float64(c.capacity) for c in configs]
    pairs = list(zip(episodes, caps, strict=True))
    return LockstepResult(
        overload_rate=np.array([overload_rate(ep.loads, c) for ep, c in pairs]),
        mean_welfare=np.array([mean_welfare(ep.welfare) for ep in episodes]),
        mean_load=np.array([ep.loads.mean() for ep in episodes]),
        fairness=np.array([jain_fairness(ep.demands).mean() for ep in episodes]),
        steps_to_stable=np.array([steps_to_stable(ep.loads, c) for ep, c in pairs]),
        steps_played=np.array([len(ep.loads) for ep in episodes], dtype=np.int64),
        demands=pad([ep.demands for ep in episodes]),
        loads=pad([ep.loads for ep in episodes]),
        welfare=pad([ep.welfare for ep in episodes]),
        beliefs=pad([ep.beliefs for ep in episodes]),
        rewards=pad([ep.rewards for ep in episodes]),
    )

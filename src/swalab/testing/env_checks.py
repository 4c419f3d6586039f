"""Checks every swalab environment must pass, on top of PettingZoo's own.

PettingZoo's ``parallel_api_test`` checks the API's shape but not that observations lie in
their spaces, and nothing in it checks the promises swalab adds: infos report load, excess
and welfare; welfare is the sum of rewards; an invalid action is refused with a
``ValueError`` and leaves the episode where it was instead of being clipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.test import parallel_api_test, parallel_seed_test

INFO_KEYS = ("load", "excess", "welfare", "overloaded")


def _check_rollout(env: ParallelEnv, seed: int, welfare_is_sum: bool) -> None:
    obs, _ = env.reset(seed=seed)
    while env.agents:
        for agent in env.agents:
            space = env.observation_space(agent)
            assert space.contains(obs[agent]), f"observation of {agent} not in its space"
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, _, _, infos = env.step(actions)
        for agent, info in infos.items():
            missing = [k for k in INFO_KEYS if k not in info]
            assert not missing, f"infos[{agent}] lacks {missing}"
        if welfare_is_sum and infos:
            first = next(iter(infos.values()))
            total = sum(rewards.values())
            assert math.isclose(total, first["welfare"], rel_tol=1e-9, abs_tol=1e-9), (
                f"sum of rewards {total} != welfare {first['welfare']}"
            )


def _check_rejects_bad_actions(env: ParallelEnv, seed: int) -> None:
    obs, _ = env.reset(seed=seed)
    agent = env.agents[0]
    space = env.action_space(agent)
    if isinstance(space, spaces.Box):
        bad_values = [np.nan, float(np.min(space.low)) - 1.0, float(np.max(space.high)) + 1.0]
    elif isinstance(space, spaces.Discrete):
        bad_values = [np.nan, int(space.start) - 1, int(space.start + space.n), 0.5]
    else:
        return
    good = {a: env.action_space(a).sample() for a in env.agents}
    for bad in bad_values:
        actions: dict[str, Any] = dict(good)
        actions[agent] = np.full(space.shape, bad, dtype=np.float64)
        try:
            env.step(actions)
        except ValueError:
            pass
        else:
            raise AssertionError(f"action {bad!r} for {agent} was accepted, not refused")
    # A refused step must not have advanced the episode.
    obs_after, *_ = env.step(good)
    step_before = obs[agent].get("step") if isinstance(obs[agent], dict) else None
    step_after = obs_after[agent].get("step") if isinstance(obs_after[agent], dict) else None
    if step_before is not None and step_after is not None:
        assert int(step_after) == int(step_before) + 1, "a refused action advanced the episode"


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))


def _check_pure_payoffs(env: ParallelEnv, seed: int) -> None:
    """``step()`` pays what the pure payoff function says, and that function is pure.

    For dilemmas on :class:`~swalab.envs.dynamics.Dynamics`: the transition called twice
    on a copy of the state gives identical results, leaves the state untouched and matches
    ``step()``; the welfare model (:meth:`~swalab.envs.dynamics.Dynamics.counterfactual`)
    evaluated at the joint action actually played reproduces ``step()``'s reward and
    welfare plus its continuation. For the congestion game: rewards are
    :func:`swalab.theory.congestion_payoffs` of the demands.
    """
    from swalab.theory.payoffs import congestion_payoffs

    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    dyn = getattr(env, "dynamics", None)
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        if dyn is not None and isinstance(
            env.action_space(env.agents[0]), spaces.Box | spaces.Discrete
        ):
            common = env.action_space(env.agents[0]).sample()  # everyone alike half the time
            if rng.random() < 0.5:
                actions = dict.fromkeys(env.agents, common)
        if dyn is None:
            demands = env.demands_from(actions)
            _, rewards, *_ = env.step(actions)
            g = env.game
            pay = congestion_payoffs(demands, g.capacity, g.beta, g.weights, g.values)
            paid = [rewards[a] for a in env.possible_agents]
            assert np.allclose(paid, pay.rewards), "rewards differ from congestion_payoffs"
            continue
        joint = env.actions_from(actions)
        before = {k: np.copy(v) for k, v in env.state.items()}
        nxt1, out1 = dyn.transition(before, joint)
        nxt2, out2 = dyn.transition(before, joint)
        assert all(_same(before[k], env.state[k]) for k in before), "transition mutated state"
        assert all(_same(nxt1[k], nxt2[k]) for k in nxt1), "transition is not deterministic"
        assert _same(out1.rewards, out2.rewards), "transition is not deterministic"
        _, rewards, _, _, _infos = env.play(joint)
        got = np.array([rewards[a] for a in env.possible_agents])
        assert np.allclose(got, out1.rewards), "step() rewards differ from transition()"
        assert np.allclose(out1.welfare, out1.rewards.sum()), "welfare is not Σ rewards"
        assert all(_same(nxt1[k], env.state[k]) for k in nxt1), "step() state != transition()"
        if np.all(joint == joint[0]):
            own, welfare = dyn.counterfactual(
                before, np.full(len(joint), joint[0]), np.array([joint[0]])
            )
            cont = float(dyn.continuation(nxt1))
            n = len(joint)
            assert np.allclose(own[:, 0], got + cont / n), "welfare model's own reward != step()"
            assert np.allclose(welfare[:, 0], float(out1.welfare) + cont), (
                "welfare model's welfare != step()"
            )


def check_parallel_env(
    env_fn: Callable[[], ParallelEnv],
    *,
    num_cycles: int = 200,
    welfare_is_sum_of_rewards: bool = True,
) -> None:
    """Run PettingZoo's parallel API and seed tests plus swalab's own checks.

    Args:
        env_fn: Builds a fresh environment on every call.
        num_cycles: Steps per check.
        welfare_is_sum_of_rewards: Whether infos' ``welfare`` must equal Σ rewards.

    Raises:
        AssertionError: On the first violated property.
    """
    parallel_api_test(env_fn(), num_cycles=num_cycles)
    parallel_seed_test(env_fn, num_cycles=num_cycles)
    for seed in (0, 1):
        _check_rollout(env_fn(), seed, welfare_is_sum_of_rewards)
    _check_rejects_bad_actions(env_fn(), 0)
    for seed in (0, 1):
        _check_pure_payoffs(env_fn(), seed)

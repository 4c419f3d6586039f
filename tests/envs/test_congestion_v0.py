import numpy as np
import pytest

from swalab import theory
from swalab.envs import congestion_v0
from swalab.testing import check_parallel_env


def test_defaults_are_the_reference_configuration():
    env = congestion_v0.parallel_env()
    g = env.game
    assert (g.n_agents, g.capacity, g.beta, env.steps) == (5, 20.0, 1.6, 20)
    assert np.all(g.x_max == 10.0)
    assert env.metadata["name"] == "congestion_v0"


def test_heterogeneous_env_passes_conformance():
    check_parallel_env(
        lambda: congestion_v0.parallel_env(
            n_agents=3, weights=[1, 2, 0.5], values=[1, 1, 2], x_max=[3, 4, 5], steps=7
        )
    )


def test_step_pays_the_theory_rewards_and_reports_the_board():
    env = congestion_v0.parallel_env(weights=[1, 1, 1, 2, 0.5])
    env.reset(seed=0)
    demands = np.array([10.0, 4.0, 0.0, 7.5, 2.0])
    obs, rewards, term, trunc, infos = env.step(
        {a: np.array([d]) for a, d in zip(env.agents, demands, strict=True)}
    )
    expected = theory.rewards(demands, capacity=20, beta=1.6, weights=[1, 1, 1, 2, 0.5])
    np.testing.assert_allclose(list(rewards.values()), expected)
    info = infos["agent_0"]
    assert info["load"] == pytest.approx(10 + 4 + 15 + 1)
    assert info["excess"] == pytest.approx(10)
    assert info["overloaded"] is True
    assert obs["agent_3"]["step"] == 1
    np.testing.assert_array_equal(obs["agent_3"]["last_demands"], demands)
    assert not any(term.values()) and not any(trunc.values())


def test_episode_ends_after_steps_with_all_agents_terminated():
    env = congestion_v0.parallel_env(steps=3)
    env.reset()
    for _ in range(3):
        _, _, term, _, _ = env.step({a: [1.0] for a in env.agents})
    assert all(term.values()) and env.agents == []
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step({})


@pytest.mark.parametrize("bad", [np.nan, -0.5, 10.5, "3", [1.0, 2.0]])
def test_invalid_actions_are_refused_not_clipped(bad):
    env = congestion_v0.parallel_env()
    env.reset()
    actions = {a: [1.0] for a in env.agents}
    actions["agent_2"] = bad
    with pytest.raises(ValueError, match=r"action for agent_2="):
        env.step(actions)
    obs, *_ = env.step({a: [1.0] for a in env.agents})
    assert obs["agent_0"]["step"] == 1  # the refused step did not count


def test_missing_and_unknown_agents_are_refused():
    env = congestion_v0.parallel_env()
    env.reset()
    with pytest.raises(ValueError, match="missing for live agents"):
        env.step({"agent_0": [1.0]})
    actions = {a: [1.0] for a in env.agents}
    actions["agent_9"] = [1.0]
    with pytest.raises(ValueError, match="not live"):
        env.step(actions)


@pytest.mark.parametrize(
    ("params", "prefix"),
    [
        ({"n_agents": 1}, "n_agents=1"),
        ({"capacity": 0}, "capacity=0"),
        ({"beta": float("nan")}, "beta=nan"),
        ({"x_max": -1}, "x_max=-1"),
        ({"steps": 0}, "steps=0"),
        ({"weights": [1, 1]}, "weights has 2 entries"),
    ],
)
def test_bad_parameters_are_named(params, prefix):
    with pytest.raises(ValueError, match=f"^{prefix}"):
        congestion_v0.parallel_env(**params)


def test_ansi_render_is_the_papers_board():
    env = congestion_v0.parallel_env(render_mode="ansi")
    env.reset()
    assert "Last turn: none" in env.render()
    env.step({a: [10.0] for a in env.agents})
    text = env.render()
    assert "Last total: 50.00 (OVERLOADED)" in text and "beta=1.6" in text

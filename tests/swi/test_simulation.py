"""Acceptance: model-based SWI switches where the theory says, for each scorer."""

import numpy as np
import pytest

from swalab import theory
from swalab.swi import SimulationConfig, run_episode, simulate

SEEDS = 20


def sweep_around(config: SimulationConfig, switch: float):
    below = [0.0, round(switch - 0.15, 4), round(switch - 0.05, 4)]
    above = [round(switch + 0.05, 4), round(switch + 0.15, 4), 1.0]
    lams = [x for x in below + above if 0 <= x <= 1]
    return {s.lam: s for s in simulate(config, lams, SEEDS)}, switch


def assert_switches_at(results, switch):
    for lam, s in results.items():
        if lam <= switch - 0.05 + 1e-9:
            assert s.overload_rate >= 0.95, (lam, s)
        if lam >= switch + 0.05 - 1e-9:
            assert s.overload_rate == 0.0, (lam, s)


@pytest.mark.parametrize("candidates", ["grid", "random"])
@pytest.mark.parametrize(
    ("n_agents", "capacity", "beta"), [(5, 20.0, 1.6), (5, 20.0, 2.5), (3, 12.0, 1.5)]
)
def test_paper_scorer_switches_at_lambda_tilde(candidates, n_agents, capacity, beta):
    config = SimulationConfig(
        n_agents=n_agents, capacity=capacity, beta=beta, candidates=candidates, scorer="paper"
    )
    switch = theory.lambda_tilde(capacity, beta, config.x_max, config.margin)
    if (n_agents, beta) == (5, 1.6):
        assert switch == pytest.approx(0.75)
    assert_switches_at(*sweep_around(config, switch))


@pytest.mark.parametrize("candidates", ["grid", "random"])
@pytest.mark.parametrize(
    ("n_agents", "capacity", "beta"), [(5, 20.0, 1.6), (5, 20.0, 2.5), (3, 12.0, 1.5)]
)
def test_consistent_scorer_with_no_margin_switches_at_lambda_star(
    candidates, n_agents, capacity, beta
):
    config = SimulationConfig(
        n_agents=n_agents,
        capacity=capacity,
        beta=beta,
        candidates=candidates,
        scorer="consistent",
        margin=0.0,
    )
    switch = theory.lambda_star(n_agents, beta)
    assert_switches_at(*sweep_around(config, switch))


def test_reference_sweep_settles_near_effective_capacity():
    (res,) = simulate(SimulationConfig(), [0.9], SEEDS)
    assert res.overload_rate == 0.0
    assert 17.0 <= res.mean_load <= 18.5
    (base,) = simulate(SimulationConfig(), [0.0], SEEDS)
    assert base.mean_welfare == pytest.approx(2.0)
    assert res.delta_welfare == pytest.approx(res.mean_welfare - 2.0)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.8, 0.95, 0.99])
def test_high_initial_belief_locks_the_paper_scorer_into_overload(lam):
    """docs/theory.md §4, lock-in: starting at μ̂ = x_max, the welfare term never pulls."""
    config = SimulationConfig(initial_belief=10.0)
    assert theory.lockin_belief(5, 20, 1.6, 2, 0.02) <= 10.0
    (res,) = simulate(config, [lam], 5)
    assert res.overload_rate == 1.0
    # The same λ from the paper's start C/N escapes whenever λ > λ̃.
    (fresh,) = simulate(SimulationConfig(), [lam], 5)
    assert (fresh.overload_rate == 0.0) == (lam > 0.75)


def test_unstable_belief_oscillates_even_far_above_the_switch():
    """α·N = 2 gives the two-cycle of docs/theory.md §5 (N = 10, α = 0.2, λ = 0.95)."""
    config = SimulationConfig(n_agents=10, capacity=40, beta=3.0, steps=60)
    assert not theory.belief_stable(config.alpha, 10)
    (res,) = simulate(config, [0.95], 3)
    assert 0.4 <= res.overload_rate <= 0.6
    stable = SimulationConfig(n_agents=10, capacity=40, beta=3.0, steps=60, alpha=0.1)
    (res,) = simulate(stable, [0.95], 3)
    assert res.overload_rate <= 0.05


@pytest.mark.parametrize("candidates", ["grid", "random"])
def test_same_seed_gives_bit_identical_episodes(candidates):
    config = SimulationConfig(candidates=candidates)
    a = run_episode(config, 0.72, seed=3)
    b = run_episode(config, 0.72, seed=3)
    for field in ("demands", "loads", "welfare", "beliefs", "rewards"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes()


def test_different_seeds_draw_different_random_candidates():
    config = SimulationConfig(candidates="random")
    a = run_episode(config, 0.72, seed=0)
    b = run_episode(config, 0.72, seed=1)
    assert not np.array_equal(a.demands, b.demands)


def test_per_agent_lambdas_run_and_selfish_agents_take_x_max():
    config = SimulationConfig()
    ep = run_episode(config, [0.0, 0.0, 0.95, 0.95, 0.95], seed=0)
    assert np.all(ep.demands[:, :2] == 10.0)


@pytest.mark.parametrize(
    ("kwargs", "prefix"),
    [
        ({"candidates": "llm"}, "candidates='llm'"),
        ({"scorer": "x"}, "scorer='x'"),
        ({"alpha": 0}, "alpha=0"),
        ({"k": 100, "candidates": "random"}, "k=100"),
        ({"anchors": (1.0, float("nan"))}, "anchors[1]=nan"),
        ({"margin": 30}, "margin=30"),
    ],
)
def test_bad_configs_name_the_field(kwargs, prefix):
    with pytest.raises(ValueError) as err:
        SimulationConfig(**kwargs)
    assert str(err.value).startswith(prefix)


def test_simulate_refuses_bad_lambda_and_seeds():
    with pytest.raises(ValueError, match=r"^lam\[1\]=1.5"):
        simulate(SimulationConfig(), [0.5, 1.5], 1)
    with pytest.raises(ValueError, match=r"^seeds=0"):
        simulate(SimulationConfig(), [0.5], 0)

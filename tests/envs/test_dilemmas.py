"""The dilemmas' closed forms against finite differences, brute force and simulation."""

import numpy as np
import pytest

from swalab import envs
from swalab.envs import context_budget_v0, rate_limit_v0
from swalab.swi.dilemma import DilemmaAgents, play_dilemma

LAMS = np.round(np.arange(0.0, 1.0001, 0.025), 3)


def _marginal(dyn, state, a, i, h=1e-4):
    """Finite-difference ∂R_i/∂a_i and ∂W/∂a_i at the joint action ``a``."""
    up, down = a.copy(), a.copy()
    up[i] += h
    down[i] -= h
    _, o_up = dyn.transition(state, up)
    _, o_down = dyn.transition(state, down)
    return (
        (o_up.rewards[i] - o_down.rewards[i]) / (2 * h),
        (o_up.welfare - o_down.welfare) / (2 * h),
    )


def test_rate_limit_marginals_match_the_derivation():
    dyn = envs.dynamics("rate_limit_v0", x_max=20, lockout_after=0)
    state = dyn.initial()
    b = float(np.minimum(dyn.burst, state["tokens"] + dyn.rate))
    a = np.array([7.0, 5.0, 6.0, 4.0, 3.0])  # X = 25 > b = 20
    x = a.sum()
    own, welfare = _marginal(dyn, state, a, 0)
    c = dyn.waste_cost
    assert own == pytest.approx((1 + c) * (x - a[0]) * b / x**2 - c, rel=1e-6)
    assert welfare == pytest.approx(-c, rel=1e-6)


def test_context_budget_marginals_are_the_congestion_game_with_its_severity():
    dyn = envs.dynamics("context_budget_v0")
    a = np.array([90.0, 90.0, 90.0, 90.0, 60.0])  # overflow 32 < critical: only instructions go
    own, welfare = _marginal(dyn, dyn.initial(), a, 2)
    beta = context_budget_v0.severity(5, dyn.critical, dyn.value, dyn.loss_cost)
    assert own == pytest.approx(dyn.value * (1 - beta / 5), rel=1e-6)
    assert welfare == pytest.approx(dyn.value * (1 - beta), rel=1e-6)


def test_context_budget_evicts_instructions_then_the_earliest_message():
    dyn = envs.dynamics("context_budget_v0", n_agents=2, budget=100, critical=20, x_max=100)
    state = dyn.initial()  # t = 0: agent 0 posts first
    _, out = dyn.transition(state, np.array([60.0, 50.0]))  # overflow 30: 20 critical + 10
    assert out.extras["critical_lost"] == pytest.approx(1.0)
    assert out.rewards == pytest.approx([50.0 - dyn.loss_cost, 50.0 - dyn.loss_cost])
    _, out = dyn.transition({**state, "t": np.array(1.0)}, np.array([60.0, 50.0]))
    assert out.rewards == pytest.approx([60.0 - dyn.loss_cost, 40.0 - dyn.loss_cost])


def test_commons_regrows_logistically_and_collapse_is_permanent():
    dyn = envs.dynamics("commons_v0", initial_stock=50.0, collapse=10.0)
    state = dyn.initial()
    nxt, out = dyn.transition(state, np.zeros(5))
    assert float(nxt["stock"]) == pytest.approx(50 + 1.0 * 50 * 0.5)
    state = {**state, "stock": np.array(20.0)}  # regrows to 36
    nxt, out = dyn.transition(state, np.full(5, 6.0))  # takes 30, leaves 6 < 10
    assert not bool(nxt["alive"]) and bool(out.overloaded)
    later, out = dyn.transition(nxt, np.full(5, 6.0))
    assert float(later["stock"]) == 0.0 and float(out.welfare) == 0.0


@pytest.mark.parametrize(
    ("name", "params", "closed_form"),
    [
        ("rate_limit_v0", {}, rate_limit_v0.threshold(5, 0.5)),
        ("context_budget_v0", {}, context_budget_v0.threshold(5, 112, 1.0, 56)),
        (
            "context_budget_v0",
            {"n_agents": 4, "loss_cost": 84.0},
            context_budget_v0.threshold(4, 112, 1.0, 84),
        ),
    ],
)
def test_swi_stops_overloading_at_the_closed_form_threshold(name, params, closed_form):
    """Overloaded below the derived λ, safe from the next grid point above it."""
    dyn = envs.dynamics(name, **params)
    res = play_dilemma(dyn, LAMS, seeds=list(range(len(LAMS))), agents=DilemmaAgents(grid_step=1))
    late = res.overloaded[:, dyn.steps // 2 :].mean(axis=1)
    below, above = closed_form - 1e-9 > LAMS, closed_form + 1e-9 < LAMS
    assert (late[below] > 0.5).all()
    assert (late[above] == 0.0).all()


def test_selfish_and_naive_retries_lock_the_key_out_and_swa_above_threshold_does_not():
    dyn = envs.dynamics("rate_limit_v0")
    herd = play_dilemma(dyn, [0.0], [0], DilemmaAgents(kinds=("retry",) * 5, demands=(5.0,) * 5))
    greedy = play_dilemma(dyn, [0.0], [0])
    swa = play_dilemma(dyn, [0.9, 1.0], [0, 1])
    assert herd.extras["locked"][0].mean() > 0.3 and greedy.extras["locked"][0].mean() > 0.3
    assert swa.extras["locked"].max() == 0.0 and swa.extras["rejected"].max() == 0.0
    assert swa.welfare.mean() > herd.welfare.mean() + 10


def test_commons_survival_rises_with_lambda():
    dyn = envs.dynamics("commons_v0", steps=150)
    lams = np.array([0.0, 0.5, 1.0])
    res = play_dilemma(dyn, lams, [0, 1, 2])
    alive = res.extras["alive"].mean(axis=1)
    assert alive[0] < 0.1 and alive[2] == 1.0
    assert res.welfare[2].sum() > 5 * res.welfare[0].sum()


def test_bad_population_and_lambda_are_named():
    dyn = envs.dynamics("commons_v0")
    with pytest.raises(ValueError, match=r"kind='retry' needs rejected calls"):
        play_dilemma(dyn, [0.5], [0], DilemmaAgents(kinds=("retry",) * 5))
    with pytest.raises(ValueError, match=r"lam is out of range"):
        play_dilemma(dyn, [1.5], [0])
    with pytest.raises(ValueError, match=r"kind='adversary' is not known in commons_v0"):
        play_dilemma(dyn, [0.5], [0], DilemmaAgents(kinds=("adversary",) * 5))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("rate_limit_v0", {"rate": 4000.0, "burst": 4000.0}),
        ("context_budget_v0", {"budget": 40000.0, "critical": 400.0}),
        ("commons_v0", {}),
    ],
)
def test_a_prompt_does_not_grow_with_the_population(name, params):
    """Each agent's prompt lists the others' last actions for a few agents and summarises
    them for many (at 1,000 agents the list outgrew a 8k-token context)."""
    sizes = {}
    for n in (5, 1000):
        dyn = envs.dynamics(name, n_agents=n, **params)
        state, _ = dyn.transition(dyn.initial(), np.arange(n, dtype=float) % (dyn.x_max + 1))
        text = dyn.describe(state, 7)
        sizes[n] = len(text)
        if n == 1000:
            assert "1000 agents: mean" in text and "yours" in text
    assert sizes[1000] < sizes[5] + 300


def test_per_agent_values_are_listed_for_a_few_and_summarised_for_many():
    from swalab.envs.dynamics import LISTED_AGENTS, per_agent

    few = list(range(LISTED_AGENTS))
    assert per_agent(few, 3) == str(few)
    many = [i % 11 for i in range(1000)]
    assert per_agent(many, 3) == (
        f"1000 agents: mean {np.mean(many):.3g}, from 0 to 10, total {sum(many)}, yours 3"
    )

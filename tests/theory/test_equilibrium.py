import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from swalab import theory
from swalab.theory import Game

REF = {"n_agents": 5, "capacity": 20.0, "beta": 1.6, "x_max": 10.0}


def grid_best_value(game: Game, lam, demands, i, points=401):
    """Brute force: agent i's best utility over a fine grid plus the exact kink."""
    others = np.dot(np.delete(game.weights, i), np.delete(demands, i))
    kink = np.clip((game.capacity - others) / game.weights[i], 0, game.x_max[i])
    xs = np.unique(np.append(np.linspace(0, game.x_max[i], points), kink))
    trial = np.repeat(demands[None, :], xs.size, axis=0)
    trial[:, i] = xs
    return game.utilities(trial, lam)[:, i].max()


def test_reference_welfare_selfish_and_stable():
    assert theory.selfish_welfare(**REF) == pytest.approx(2.0)
    assert theory.stable_welfare(**REF) == pytest.approx(20.0)
    assert theory.price_of_anarchy(0.0, **REF) == pytest.approx(10.0)
    assert theory.price_of_anarchy(0.9, **REF) == pytest.approx(1.0)


def test_reference_equilibria_on_both_sides_of_lambda_star():
    low = theory.solve_equilibrium(0.84, **REF)
    assert low.overloaded and np.all(low.demands == 10.0) and low.welfare == pytest.approx(2)
    high = theory.solve_equilibrium(0.86, **REF)
    assert not high.overloaded and high.load == pytest.approx(20.0)


@st.composite
def instances(draw, heterogeneous=True):
    n = draw(st.integers(2, 5))
    floats = st.floats(0.3, 3.0)
    game = Game.build(
        n_agents=n,
        capacity=draw(st.floats(1, 30)),
        beta=draw(st.floats(0.2, 3 * n)),
        x_max=[draw(st.floats(0.5, 15)) for _ in range(n)],
        weights=[draw(floats) for _ in range(n)] if heterogeneous else None,
        values=[draw(floats) for _ in range(n)] if heterogeneous else None,
    )
    lam = np.array([draw(st.floats(0, 1)) for _ in range(n)])
    return game, lam


def solve(game, lam):
    return theory.solve_equilibrium(
        lam,
        n_agents=game.n_agents,
        capacity=game.capacity,
        beta=game.beta,
        x_max=game.x_max,
        weights=game.weights,
        values=game.values,
    )


@given(instances())
def test_solver_matches_brute_force_best_responses(instance):
    game, lam = instance
    eq = solve(game, lam)
    current = game.utilities(eq.demands, lam)
    for i in range(game.n_agents):
        assert grid_best_value(game, lam, eq.demands, i) <= current[i] + 1e-9 * (
            1 + abs(current[i])
        )


@given(instances())
def test_critical_surface_agrees_with_the_solver(instance):
    game, lam = instance
    eq = solve(game, lam)
    escapes = theory.escapes_overload(
        lam,
        n_agents=game.n_agents,
        capacity=game.capacity,
        beta=game.beta,
        x_max=game.x_max,
        weights=game.weights,
        values=game.values,
    )
    assert escapes == (not eq.overloaded)


@given(instances(heterogeneous=False))
def test_grid_best_response_dynamics_reach_the_same_regime(instance):
    """Brute force dynamics: agents best-respond on a grid one after another."""
    game, lam = instance
    eq = solve(game, lam)
    # Exactly at a threshold an agent is indifferent above capacity: any load is a response.
    assume(np.all(np.abs(lam - eq.thresholds) > 1e-6))
    x = game.x_max.copy()
    for _ in range(60):
        for i in range(game.n_agents):
            xs = np.linspace(0, game.x_max[i], 2001)
            trial = np.repeat(x[None, :], xs.size, axis=0)
            trial[:, i] = xs
            x[i] = xs[np.argmax(game.utilities(trial, lam)[:, i])]
    load = float(np.dot(game.weights, x))
    tol = 2 * game.x_max.max() / 2000 * game.n_agents
    if eq.overloaded:
        assert load == pytest.approx(eq.load, abs=tol)
    else:
        assert load <= game.capacity + tol


@given(n=st.integers(2, 4), seed=st.integers(0, 2**31))
def test_optimal_welfare_matches_brute_force_over_vertices(n, seed):
    """Welfare is piecewise linear: its maximum lies where every agent but at most one sits
    at 0 or x_max and that one fills the load to capacity. Enumerate all such profiles."""
    rng = np.random.default_rng(seed)
    game = Game.build(
        n_agents=n,
        capacity=float(rng.uniform(1, 10)),
        beta=float(rng.uniform(0.2, 4)),
        x_max=rng.uniform(1, 6, n),
        weights=rng.uniform(0.5, 2, n),
        values=rng.uniform(0.5, 2, n),
    )
    profiles = []
    for corners in itertools.product([0, 1], repeat=n):
        x = np.array(corners) * game.x_max
        profiles.append(x)
        for i in range(n):
            y = x.copy()
            others = np.dot(np.delete(game.weights, i), np.delete(y, i))
            y[i] = np.clip((game.capacity - others) / game.weights[i], 0, game.x_max[i])
            profiles.append(y)
    brute = theory.congestion_payoffs(
        np.array(profiles), game.capacity, game.beta, game.weights, game.values
    ).welfare.max()
    best = theory.optimal_welfare(
        n_agents=n,
        capacity=game.capacity,
        beta=game.beta,
        x_max=game.x_max,
        weights=game.weights,
        values=game.values,
    )
    assert best == pytest.approx(brute, rel=1e-9, abs=1e-9)
    # No random profile beats it either.
    samples = rng.uniform(0, 1, (2000, n)) * game.x_max
    pay = theory.congestion_payoffs(samples, game.capacity, game.beta, game.weights, game.values)
    assert pay.welfare.max() <= best + 1e-9


def test_is_nash_rejects_a_non_equilibrium():
    game = Game.build(**REF)
    lam = np.full(5, 0.9)
    assert not theory.is_nash(game, lam, np.full(5, 10.0))
    assert theory.is_nash(game, lam, np.full(5, 4.0))


def test_heterogeneous_selfish_agents_carry_no_cut():
    eq = theory.solve_equilibrium([0.0, 0.0, 0.95, 0.95, 0.95], **REF)
    np.testing.assert_allclose(eq.demands, [10, 10, 0, 0, 0])
    assert not eq.overloaded
    eq = theory.solve_equilibrium([0.0, 0.0, 0.0, 0.95, 0.95], **REF)
    assert eq.overloaded and eq.load == pytest.approx(30)


def test_price_of_anarchy_is_infinite_when_equilibrium_welfare_is_not_positive():
    assert theory.price_of_anarchy(0.0, n_agents=5, capacity=20, beta=2.0, x_max=10) == math.inf

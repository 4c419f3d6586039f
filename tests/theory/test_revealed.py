"""Revealed λ against brute force and against choices made at a known λ."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swalab.theory.revealed import (
    LAMBDA_STEP,
    Decisions,
    calibration_slope,
    game_terms,
    identified_interval,
    logit_estimate,
    reveal,
)

GRID = np.arange(0, 10.25, 0.25)
FINE = np.linspace(0, 1, 2001)


def argmax_choices(true_lam, beliefs, *, n=5, capacity=20.0, beta=1.6):
    cands, priv, grp, chosen = [], [], [], []
    for mu in beliefs:
        p, g = game_terms(GRID, (n - 1) * mu, n_agents=n, capacity=capacity, beta=beta)
        u = (1 - true_lam) * p + true_lam * g
        cands.append(GRID)
        priv.append(p)
        grp.append(g)
        chosen.append(GRID[int(np.argmax(u))])
    return Decisions.from_lists(cands, priv, grp, chosen)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(2, 8),
    st.integers(0, 2**31),
)
def test_the_interval_is_exactly_the_set_of_lambdas_that_explain_every_choice(d, a, seed):
    rng = np.random.default_rng(seed)
    p, g = rng.normal(size=(d, a)), rng.normal(size=(d, a))
    true = rng.uniform()
    chosen = np.argmax((1 - true) * p + true * g, axis=1)
    dec = Decisions.from_lists(
        [list(range(a))] * d, p.tolist(), g.tolist(), chosen.astype(float).tolist()
    )
    interval = identified_interval(dec)
    assert interval is not None and interval[0] - 1e-9 <= true <= interval[1] + 1e-9
    # Brute force on a fine grid: inside the interval every choice is an argmax, outside not.
    explains = np.array([dec.best_share(lam) == 1.0 for lam in FINE])
    low, high = interval
    inside = (low + 1e-6 < FINE) & (high - 1e-6 > FINE)
    outside = (low - 1e-6 > FINE) | (high + 1e-6 < FINE)
    assert explains[inside].all() and not explains[outside].any()


def test_choices_no_single_lambda_explains_leave_no_interval():
    # Choosing 0 with a selfish-only utility, then 1 with the same utility: contradiction.
    dec = Decisions.from_lists([[0, 1], [0, 1]], [[0, 1], [0, 1]], [[0, 1], [0, 1]], [0, 1])
    assert identified_interval(dec) is None
    assert reveal(dec).method == "unidentified"  # two contradictory choices say nothing


@pytest.mark.parametrize("true_lam", [0.0, 0.5, 0.8, 0.9, 1.0])
def test_an_argmax_chooser_of_the_game_utility_is_located(true_lam):
    rng = np.random.default_rng(4)
    dec = argmax_choices(true_lam, rng.uniform(1, 9, size=200))
    est = reveal(dec)
    assert est.method == "interval" and est.best_share == 1.0
    assert est.low <= true_lam <= est.high
    # The game's own utility switches at λ* = (N − β)/(N − 1) = 0.85: on either side the
    # interval stays on that side.
    assert (est.high <= 0.85 + 1e-9) if true_lam < 0.85 else (est.low >= 0.85 - 1e-9)


@pytest.mark.parametrize("true_lam", [0.3, 0.8, 0.95])
def test_the_logit_estimate_covers_the_true_lambda_of_noisy_choosers(true_lam):
    covered = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        cands, priv, grp, chosen = [], [], [], []
        for mu in rng.uniform(2, 8, size=250):
            p, g = game_terms(GRID, 4 * mu, n_agents=5, capacity=20.0, beta=1.6)
            u = 4.0 * ((1 - true_lam) * p + true_lam * g)
            prob = np.exp(u - u.max())
            cands.append(GRID)
            priv.append(p)
            grp.append(g)
            chosen.append(rng.choice(GRID, p=prob / prob.sum()))
        est = logit_estimate(Decisions.from_lists(cands, priv, grp, chosen), resamples=200)
        covered += est.low <= true_lam <= est.high
        assert est.high - est.low >= 2 * LAMBDA_STEP - 1e-12
    assert covered >= 10  # a 95 % interval: at most 2 misses in 12 is expected


def test_choices_that_ignore_the_utility_leave_lambda_unidentified():
    rng = np.random.default_rng(0)
    cands, priv, grp = [], [], []
    for mu in rng.uniform(2, 8, size=200):
        p, g = game_terms(GRID, 4 * mu, n_agents=5, capacity=20.0, beta=1.6)
        cands.append(GRID)
        priv.append(p)
        grp.append(g)
    est = reveal(Decisions.from_lists(cands, priv, grp, rng.choice(GRID, size=200)))
    assert est.method == "unidentified" and (est.low, est.high) == (0.0, 1.0)
    assert np.isnan(est.revealed) and abs(est.fit) < 0.01


def test_identical_decisions_are_merged_into_weights():
    dec = Decisions.from_lists([[0, 1]] * 3, [[0, 1]] * 3, [[1, 0]] * 3, [1, 1, 1])
    assert len(dec.chosen) == 1 and dec.count == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([[0, 1]], [[0, 1]], [[0, 1]], [2]), "not among its candidates"),
        (([[0, 1]], [[0]], [[0, 1]], [0]), "differ in length"),
        (([], [], [], []), "no decisions"),
        (([[0]], [[0]], [[0]], [0, 0]), "one entry each"),
    ],
)
def test_bad_decisions_say_what_is_wrong(args, message):
    with pytest.raises(ValueError, match=message):
        Decisions.from_lists(*args)


def test_game_terms_are_the_payoffs_of_the_joint_action():
    from swalab.theory import rewards, welfare

    mu, a = 3.5, 6.0
    demands = [a, mu, mu, mu, mu]
    p, g = game_terms(np.array([a]), 4 * mu, n_agents=5, capacity=20.0, beta=1.6)
    assert p[0] == pytest.approx(rewards(demands, capacity=20.0, beta=1.6)[0])
    assert g[0] == pytest.approx(welfare(demands, capacity=20.0, beta=1.6) / 5)


def test_calibration_slope():
    assert calibration_slope([0, 0.5, 1], [0.1, 0.6, 1.1]) == pytest.approx(1.0)
    assert calibration_slope([0, 0.5, 1], [0.7, 0.7, 0.7]) == pytest.approx(0.0)
    assert calibration_slope([0.5, 0.5], [0.1, 0.9]) is None

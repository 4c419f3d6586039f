import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swalab import theory
from swalab.swi import LoadContext, PaperScorer, SWIPolicy


@pytest.mark.parametrize(
    ("beta", "expected"),
    [(1.2, 0.95), (1.6, 0.85), (2.0, 0.75), (2.5, 0.625), (3.0, 0.5), (4.0, 0.25)],
)
def test_lambda_star_table_of_spec(beta, expected):
    assert theory.lambda_star(5, beta) == pytest.approx(expected)


@given(n=st.integers(2, 20), beta=st.floats(0.05, 40), lam=st.floats(0, 1))
def test_marginal_sign_flips_at_lambda_star(n, beta, lam):
    ls = theory.lambda_star(n, beta)
    m = theory.marginal_incentive(n, beta, lam)
    if lam > ls + 1e-9:
        assert m < 0
    elif lam < ls - 1e-9:
        assert m > 0


@given(
    n=st.integers(2, 12),
    beta=st.floats(0.1, 20),
    w=st.floats(0.1, 5),
    val=st.floats(0.1, 5),
)
def test_per_agent_threshold_zeroes_the_weighted_marginal(n, beta, w, val):
    ls = theory.lambda_star(n, beta, weight=w, value=val)
    thresholds = theory.per_agent_thresholds(n, beta, weights=w, values=val)
    assert thresholds == pytest.approx(np.full(n, ls))
    if 0 <= ls <= 1:
        assert theory.marginal_incentive(n, beta, ls, weight=w, value=val) == pytest.approx(
            0.0, abs=1e-9 * (1 + beta * w + val)
        )


def test_lambda_tilde_reference_is_three_quarters():
    assert theory.lambda_tilde(20.0, 1.6, 10.0, 2.0) == pytest.approx(0.75)
    assert theory.lambda_tilde(20.0, 1.0, 10.0, 2.0) == pytest.approx(1.0)
    assert theory.lambda_tilde(20.0, 0.5, 10.0, 2.0) == math.inf


@given(
    capacity=st.floats(5, 100),
    beta=st.floats(1.1, 10),
    x_max=st.floats(1, 50),
    margin_frac=st.floats(0, 0.5),
    gamma=st.sampled_from([0.0, 0.02, 0.1]),
)
def test_lambda_tilde_is_where_the_paper_scorer_stops_adding_demand(
    capacity, beta, x_max, margin_frac, gamma
):
    """Brute force: the paper scorer's utility just above C_eff vs at C_eff."""
    margin = capacity * margin_frac
    lt = theory.lambda_tilde(capacity, beta, x_max, margin)
    scorer = PaperScorer(capacity=capacity, beta=beta, margin=margin, gamma=gamma)
    c_eff = capacity - margin
    others = c_eff - x_max / 2  # the candidate x_max/2 puts the load exactly at C_eff
    ctx = LoadContext(others_load=others, x_max=x_max)
    h = 1e-6 * x_max
    cands = np.array([x_max / 2, x_max / 2 + h])
    for lam, expect_more in [(lt - 0.02, True), (lt + 0.02, False)]:
        if not 0 <= lam <= 1:
            continue
        choice = SWIPolicy(scorer=scorer, lam=lam).decide(cands, ctx).action
        assert (choice == cands[1]) == expect_more


def test_lockin_loads_of_spec():
    assert theory.lockin_load(20, 1.6, 2, 0.0) == pytest.approx(48.0)
    assert theory.lockin_load(20, 1.6, 2, 0.02) == pytest.approx(36.54, abs=0.01)
    assert theory.lockin_load(20, 0.8, 2, 0.0) == math.inf


@given(gamma=st.sampled_from([0.0, 0.02, 0.1]), beta=st.floats(1.1, 6))
def test_group_score_vanishes_beyond_lockin(gamma, beta):
    scorer = PaperScorer(capacity=20, beta=beta, margin=2, gamma=gamma)
    lock = theory.lockin_load(20, beta, 2, gamma)
    _, group = scorer(
        np.array([0.0, 0.0]),
        LoadContext(others_load=np.array([lock - 0.01, lock + 0.01]), x_max=10),
    )
    assert group[0] > 0
    assert group[1] == 0


@given(alpha=st.floats(0.01, 1), n=st.integers(2, 40))
def test_belief_stability_matches_iterating_the_ema_map(alpha, n):
    c_eff = 18.0
    mu = 10.0
    for _ in range(400):
        mu = (1 - alpha * n) * mu + alpha * c_eff
        if abs(mu) > 1e12:
            break
    fixed = alpha * c_eff / (alpha * n)
    settles = abs(mu - fixed) < 1e-6
    factor = abs(theory.belief_contraction(alpha, n))
    if factor < 0.95:
        assert settles and theory.belief_stable(alpha, n)
    elif factor >= 1:
        assert not settles and not theory.belief_stable(alpha, n)


def test_reference_alpha_is_stable_for_five_agents_but_not_ten():
    assert theory.belief_stable(0.2, 5)
    assert theory.belief_contraction(0.2, 5) == pytest.approx(0.0)
    assert not theory.belief_stable(0.2, 10)
    assert theory.belief_stable(0.1, 12)


@pytest.mark.parametrize(
    ("call", "prefix"),
    [
        (lambda: theory.lambda_tilde(20, 1.6, 10, 20), "margin=20"),
        (lambda: theory.lambda_tilde(20, 1.6, 0, 2), "x_max=0"),
        (lambda: theory.lambda_tilde(-1, 1.6, 10, 2), "capacity=-1"),
        (lambda: theory.belief_stable(0.0, 5), "alpha=0.0"),
        (lambda: theory.lockin_load(20, 1.6, 2, -0.1), "gamma=-0.1"),
    ],
)
def test_threshold_inputs_are_validated(call, prefix):
    with pytest.raises(ValueError, match=f"^{prefix}"):
        call()

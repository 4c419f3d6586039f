import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swalab import theory
from swalab.swi import ConsistentScorer, LoadContext, PaperScorer, SWIPolicy, make_scorer, select


def test_paper_scorer_matches_the_spec_formula():
    s = PaperScorer(capacity=20, beta=1.6, margin=2, gamma=0.02)
    a = np.array([0.0, 2.0, 4.0, 10.0])
    mu = 4.0
    private, group = s(a, LoadContext(others_load=4 * mu, x_max=10))
    x_hat = a + 4 * mu
    w_hat = x_hat - 1.6 * np.maximum(0, x_hat - 18) - 0.02 * (x_hat - 18) ** 2
    np.testing.assert_allclose(private, a / 10)
    np.testing.assert_allclose(group, np.clip(w_hat / (18 + 1e-8), 0, 1))


@given(
    n=st.integers(2, 10),
    beta=st.floats(0.2, 10),
    lam=st.floats(0, 1),
    gamma=st.sampled_from([0.0, 0.05]),
)
def test_consistent_scorer_slope_above_capacity_is_theorem_one(n, beta, lam, gamma):
    """Finite difference of the consistent utility just above C_eff equals ∂U_i/∂x_i."""
    s = ConsistentScorer(n_agents=n, capacity=20, beta=beta, margin=0, gamma=gamma)
    ctx = LoadContext(others_load=20.0, x_max=10)
    h = 1e-6
    a = np.array([0.0, h])
    p, g = s(a, ctx)
    u = (1 - lam) * p + lam * g
    slope = (u[1] - u[0]) / h
    assert slope == pytest.approx(theory.marginal_incentive(n, beta, lam), abs=1e-4 * (1 + beta))


def test_consistent_scores_sum_like_the_game():
    s = ConsistentScorer(n_agents=5, capacity=20, beta=1.6, margin=0, gamma=0)
    p, g = s(np.array([10.0]), LoadContext(others_load=40.0, x_max=10))
    # All five at 10: R_i = 10 - 1.6/5*30 and W/N = 2/5.
    assert p[0] == pytest.approx(10 - 1.6 / 5 * 30)
    assert g[0] == pytest.approx(2 / 5)


def test_tie_goes_to_the_smallest_action_whatever_the_order():
    cands = np.array([3.0, 1.0, 2.0])
    utility = np.array([0.5, 0.5, 0.2])
    assert cands[select(cands, utility)] == 1.0
    assert cands[::-1][select(cands[::-1].copy(), utility[::-1].copy())] == 1.0


def test_policy_with_user_score_functions():
    def scorer(c, ctx):
        return c / 10, -np.abs(c - ctx)  # private: more is better; group: close to ctx

    pol = SWIPolicy(scorer=scorer, lam=0.9)
    d = pol.decide([1.0, 5.0, 9.0], 5.0)
    assert d.action == 5.0 and d.index == 1
    assert pol.decide([1.0, 5.0, 9.0], 5.0, lam=0.0).action == 9.0
    np.testing.assert_allclose(d.utility, 0.1 * d.private + 0.9 * d.group)


def test_policy_refuses_empty_candidates_nan_scores_and_bad_shapes():
    pol = SWIPolicy(scorer=lambda c, ctx: (c, c * np.nan), lam=0.5)
    with pytest.raises(ValueError, match="NaN"):
        pol.decide([1.0, 2.0], None)
    with pytest.raises(ValueError, match="empty"):
        pol.decide([], None)
    bad = SWIPolicy(scorer=lambda c, ctx: (np.ones(3), np.ones(3)))
    with pytest.raises(ValueError, match="must match the 2 candidates"):
        bad.decide([1.0, 2.0], None)
    with pytest.raises(ValueError, match=r"^lam=1.5"):
        SWIPolicy(scorer=lambda c, ctx: (c, c), lam=1.5)


def test_make_scorer_validates_name_and_margin():
    with pytest.raises(ValueError, match=r"scorer='x' is not known"):
        make_scorer("x", n_agents=5, capacity=20, beta=1.6)
    with pytest.raises(ValueError, match=r"^margin=25"):
        make_scorer("paper", n_agents=5, capacity=20, beta=1.6, margin=25)


def test_scorers_broadcast_over_batches():
    s = PaperScorer(capacity=20, beta=1.6)
    cands = np.tile(np.linspace(0, 10, 41), (3, 5, 1))
    others = np.linspace(10, 30, 15).reshape(3, 5, 1)
    p, g = s(cands, LoadContext(others_load=others, x_max=10))
    assert p.shape == g.shape == (3, 5, 41)
    _, g1 = s(cands[1, 2], LoadContext(others_load=others[1, 2, 0], x_max=10))
    np.testing.assert_array_equal(g[1, 2], g1)

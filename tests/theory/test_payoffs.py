import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from swalab import theory

REF = {"capacity": 20.0, "beta": 1.6}


def test_reference_selfish_and_safe_profiles():
    assert theory.welfare([10.0] * 5, **REF) == pytest.approx(2.0)
    assert theory.welfare([4.0] * 5, **REF) == pytest.approx(20.0)
    r = theory.rewards([10.0] * 5, **REF)
    np.testing.assert_allclose(r, 10.0 - 1.6 / 5 * 30.0)


@given(
    n=st.integers(2, 12),
    beta=st.floats(0.05, 20),
    lam=st.floats(0, 1),
    capacity=st.floats(1, 100),
    seed=st.integers(0, 2**31),
)
def test_marginal_incentive_matches_finite_difference_under_overload(n, beta, lam, capacity, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 3 * capacity / n, size=n)
    x[0] = capacity  # make sure the system is overloaded, well away from the kink
    assume(x.sum() > capacity + 1e-3)
    h = 1e-6
    up = x.copy()
    up[0] += h
    u0 = theory.swa_utilities(x, lam, capacity=capacity, beta=beta)[0]
    u1 = theory.swa_utilities(up, lam, capacity=capacity, beta=beta)[0]
    fd = (u1 - u0) / h
    assert fd == pytest.approx(theory.marginal_incentive(n, beta, lam), abs=1e-4 * (1 + beta))


@given(
    n=st.integers(2, 8),
    beta=st.floats(0.1, 10),
    lam=st.floats(0, 1),
    w=st.floats(0.2, 5),
    val=st.floats(0.2, 5),
)
def test_weighted_marginal_incentive_matches_finite_difference(n, beta, lam, w, val):
    weights = np.ones(n)
    weights[0] = w
    values = np.ones(n)
    values[0] = val
    x = np.full(n, 10.0)
    capacity = 1.0  # far below the load: overloaded
    h = 1e-6
    up = x.copy()
    up[0] += h
    kw = {"capacity": capacity, "beta": beta, "weights": weights, "values": values}
    fd = (theory.swa_utilities(up, lam, **kw)[0] - theory.swa_utilities(x, lam, **kw)[0]) / h
    expected = theory.marginal_incentive(n, beta, lam, weight=w, value=val)
    assert fd == pytest.approx(expected, abs=1e-4 * (1 + beta * w + val))


@given(n=st.integers(2, 10), seed=st.integers(0, 2**31))
def test_welfare_is_sum_of_rewards(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    kw = {
        "capacity": 20.0,
        "beta": float(rng.uniform(0.1, 5)),
        "weights": rng.uniform(0.5, 2, n),
        "values": rng.uniform(0.5, 2, n),
    }
    assert theory.welfare(x, **kw) == pytest.approx(theory.rewards(x, **kw).sum())


def test_load_at_capacity_is_not_overloaded():
    pay = theory.congestion_payoffs(np.array([4.0] * 5), 20.0, 1.6)
    assert not pay.overloaded and pay.excess == 0.0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: theory.marginal_incentive(1, 1.6, 0.5), "n_agents=1"),
        (lambda: theory.marginal_incentive(5, 0.0, 0.5), "beta=0.0"),
        (lambda: theory.marginal_incentive(5, -1.0, 0.5), "beta=-1.0"),
        (lambda: theory.marginal_incentive(5, 1.6, 1.5), "lam=1.5"),
        (lambda: theory.marginal_incentive(5, 1.6, -0.1), "lam=-0.1"),
        (lambda: theory.marginal_incentive(5, math.nan, 0.5), "beta=nan"),
        (lambda: theory.marginal_incentive(5, 1.6, math.nan), "lam=nan"),
        (lambda: theory.welfare([1.0, 2.0], capacity=0.0, beta=1.0), "capacity=0.0"),
        (lambda: theory.welfare([1.0, math.nan], capacity=1.0, beta=1.0), "demands[1]=nan"),
        (lambda: theory.welfare([1.0, -2.0], capacity=1.0, beta=1.0), "demands[1]=-2.0"),
        (
            lambda: theory.swa_utilities([1.0, 2.0], [0.1, 2.0], capacity=1.0, beta=1.0),
            "lam[1]=2.0",
        ),
        (
            lambda: theory.welfare([1.0, 2.0], capacity=1.0, beta=1.0, weights=[1.0, 0.0]),
            "weights[1]=0.0",
        ),
    ],
)
def test_out_of_range_inputs_name_the_argument_and_range(call, name):
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert message.startswith(name)
    assert "must" in message


def test_non_integer_agent_count_is_refused():
    with pytest.raises(ValueError, match=r"n_agents=5\.0 .*integer"):
        theory.lambda_star(5.0, 1.6)  # type: ignore[arg-type]

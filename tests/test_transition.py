import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swalab.analysis import estimate_transition, isotonic_decreasing
from swalab.transition import LOCATED, OVERLOADED_EVERYWHERE, STABLE_EVERYWHERE, crossing


def _min_max(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Closed form of the non-increasing isotonic fit: min over s ≤ i of max over t ≥ i of
    the weighted mean of y[s..t] (the max-min formula, mirrored)."""
    n = y.size
    out = np.empty(n)
    for i in range(n):
        out[i] = min(
            max(np.average(y[s : t + 1], weights=w[s : t + 1]) for t in range(i, n))
            for s in range(i + 1)
        )
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=12),
    st.lists(st.integers(1, 5), min_size=12, max_size=12),
)
def test_pava_equals_the_min_max_formula(values, weights):
    y = np.array(values)
    w = np.array(weights[: y.size], dtype=float)
    fit = isotonic_decreasing(y, w)
    np.testing.assert_allclose(fit, _min_max(y, w), atol=1e-12)
    assert np.all(np.diff(fit) <= 1e-12)


def test_pava_by_hand():
    np.testing.assert_allclose(isotonic_decreasing([1, 0.2, 0.8, 0]), [1, 0.5, 0.5, 0])
    np.testing.assert_allclose(isotonic_decreasing([0, 1], [3, 1]), [0.25, 0.25])


def _step_sweep(lams, lam0, seeds=5):
    lam = np.repeat(lams, seeds)
    rate = np.where(lam < lam0 - 1e-12, 1.0, 0.0)
    return lam, rate


@pytest.mark.parametrize("lam0", [0.15, 0.5, 0.75, 0.85, 1.0])
@pytest.mark.parametrize("step", [0.05, 0.1, 0.25])
def test_a_step_at_a_known_lambda_is_recovered_within_one_grid_step(lam0, step):
    lams = np.round(np.arange(0, 1 + 1e-9, step), 10)
    if lam0 > lams[-1] or lam0 <= lams[0]:
        pytest.skip("switch outside this grid")
    t = estimate_transition(*_step_sweep(lams, lam0))
    assert t.status == LOCATED
    assert abs(t.lambda_c - lam0) <= step
    assert t.grid_low < lam0 <= t.grid_high  # the bracket holds the true switch
    # Seeds agree, so the only uncertainty is where in its grid gap the curve drops: the
    # interval is exactly that gap, and it holds the true switch.
    assert (t.ci_low, t.ci_high) == (t.grid_low, t.grid_high)
    assert t.located_share == 1.0


def test_the_estimate_of_a_clean_step_is_the_middle_of_its_gap():
    t = estimate_transition(*_step_sweep(np.array([0.0, 0.5, 0.75, 0.9, 1.0]), 0.75))
    assert t.lambda_c == pytest.approx(0.625)
    assert (t.grid_low, t.grid_high) == (0.5, 0.75)


@pytest.mark.parametrize(
    ("level", "status", "bracket"),
    [
        (1.0, OVERLOADED_EVERYWHERE, (1.0, None)),
        (0.0, STABLE_EVERYWHERE, (None, 0.0)),
        (0.3, STABLE_EVERYWHERE, (None, 0.0)),
        (0.5, OVERLOADED_EVERYWHERE, (1.0, None)),
    ],
)
def test_a_flat_curve_reports_no_transition(level, status, bracket):
    lam = np.repeat(np.linspace(0, 1, 11), 4)
    t = estimate_transition(lam, np.full(lam.size, level))
    assert t.status == status
    assert t.lambda_c is None and t.ci_low is None and t.ci_high is None
    assert (t.grid_low, t.grid_high) == bracket


def test_noisy_sigmoid_intervals_cover_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    truth, lams = 0.62, np.linspace(0, 1, 21)
    lam = np.repeat(lams, 20)
    p = 1 / (1 + np.exp((lam - truth) / 0.05))
    covered, errors = 0, []
    for rep in range(100):
        rate = rng.binomial(20, p) / 20  # 20 seeds × 20 steps per λ
        t = estimate_transition(lam, rate, n_boot=400, seed=rep)
        assert t.status == LOCATED
        covered += t.ci_low <= truth <= t.ci_high
        errors.append(t.lambda_c - truth)
    assert covered >= 85
    assert abs(np.mean(errors)) < 0.005 and np.max(np.abs(errors)) < 0.03


def test_an_end_the_data_cannot_bound_is_none():
    # Seed-mean 0.53 at λ = 0 and 0 at λ = 0.5: resampling often puts λ = 0 below 0.5, so
    # the switch may lie anywhere below the grid.
    lam = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 0.5])
    t = estimate_transition(lam, np.array([0.6, 0.6, 0.4, 0.0, 0.0, 0.0]))
    assert t.status == LOCATED and t.ci_low is None and t.ci_high is not None
    assert 0.0 < t.located_share < 1.0


def test_systems_no_grid_can_tell_apart_get_the_same_interval():
    # Two clean switches, at 0.55 and at 0.85, on the grid 0.5, 0.9: the grid sees the same
    # thing twice, and so must the interval (the interpolated point says 0.7 for both).
    lams = np.array([0.0, 0.5, 0.9, 1.0])
    a = estimate_transition(*_step_sweep(lams, 0.55))
    b = estimate_transition(*_step_sweep(lams, 0.85))
    assert (a.lambda_c, a.ci_low, a.ci_high) == (b.lambda_c, b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) == (0.5, 0.9)


def test_crossing_interpolates_linearly():
    assert crossing([0.0, 1.0], [0.9, 0.1]) == (LOCATED, pytest.approx(0.5), 0.0, 1.0)
    assert crossing([0.0, 1.0], [0.6, 0.2])[1] == pytest.approx(0.25)


def test_nan_episodes_drop_out_and_bad_input_is_refused():
    t = estimate_transition([0.0, 0.0, 1.0], [1.0, np.nan, 0.0])
    assert t.status == LOCATED and t.seeds == 1
    with pytest.raises(ValueError, match="no finite"):
        estimate_transition([np.nan], [np.nan])
    with pytest.raises(ValueError, match="lam has 2 values and rate has 1"):
        estimate_transition([0.0, 1.0], [1.0])

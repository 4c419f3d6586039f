import numpy as np
import pytest

from swalab.analysis import bootstrap_mean, bootstrap_mean_diff


def test_constant_sample_has_a_zero_width_interval():
    e = bootstrap_mean([0.7] * 12)
    assert (e.mean, e.low, e.high, e.n) == (
        pytest.approx(0.7),
        pytest.approx(0.7),
        pytest.approx(0.7),
        12,
    )


def test_two_point_sample_by_hand():
    # Resampling {0, 1} twice gives means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the
    # 2.5 % and 97.5 % quantiles are 0 and 1.
    e = bootstrap_mean([0.0, 1.0])
    assert (e.mean, e.low, e.high) == (0.5, 0.0, 1.0)


def test_interval_matches_the_normal_theory_for_a_large_sample():
    x = np.random.default_rng(3).normal(10.0, 2.0, size=400)
    e = bootstrap_mean(x, n_boot=4000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert e.low < x.mean() < e.high
    assert (e.high - e.low) / 2 == pytest.approx(half, rel=0.1)


def test_nan_drops_out_one_value_has_no_interval_and_none_is_nan():
    e = bootstrap_mean([np.nan, 3.0])
    assert e.mean == 3.0 and e.n == 1 and np.isnan(e.low) and np.isnan(e.high)
    assert np.isnan(bootstrap_mean([np.nan]).mean)


def test_paired_difference_cancels_the_shared_part():
    base = np.random.default_rng(0).normal(0, 5, size=30)
    e = bootstrap_mean_diff(base + 3.0, base, paired=True)
    assert (e.mean, e.low, e.high) == (pytest.approx(3.0), pytest.approx(3.0), pytest.approx(3.0))
    unpaired = bootstrap_mean_diff(base + 3.0, base, paired=False)
    assert unpaired.mean == pytest.approx(3.0) and unpaired.high - unpaired.low > 1.0


def test_resampling_is_seeded():
    x = np.arange(10.0)
    assert bootstrap_mean(x, seed=4) == bootstrap_mean(x, seed=4)
    assert bootstrap_mean(x, seed=4) != bootstrap_mean(x, seed=5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bootstrap_mean([1.0, np.inf]), "infinite"),
        (lambda: bootstrap_mean([1.0], level=1.0), "level"),
        (lambda: bootstrap_mean_diff([1.0, 2.0], [1.0], paired=True), "paired"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()

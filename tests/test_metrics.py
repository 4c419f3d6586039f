import numpy as np
import pytest

from swalab.analysis import jain_fairness, mean_welfare, overload_rate, steps_to_stable


def test_overload_rate_counts_strictly_above_capacity():
    loads = np.array([[21.0, 20.0, 19.0, 50.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(overload_rate(loads, np.array([20.0, 20.0])), [0.5, 0.0])


def test_steps_to_stable():
    loads = np.array([[30, 25, 18, 19], [18, 18, 18, 18], [18, 30, 18, 30]], dtype=float)
    np.testing.assert_array_equal(steps_to_stable(loads, np.full(3, 20.0)), [2, 0, 4])


def test_jain_and_mean_welfare():
    assert jain_fairness(np.array([4.0, 4.0, 4.0])) == pytest.approx(1.0)
    assert jain_fairness(np.array([10.0, 0.0, 0.0, 0.0])) == pytest.approx(0.25)
    assert jain_fairness(np.zeros(3)) == pytest.approx(1.0)
    assert mean_welfare(np.array([[2.0, 4.0]])) == pytest.approx([3.0])

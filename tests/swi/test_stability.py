"""Belief stability over (α, N) and lock-in over (μ̂₀, λ): simulation against closed forms."""

import numpy as np
import pytest

from swalab.analysis.maps import plane_agreement as agreement
from swalab.swi import SimulationConfig
from swalab.swi.stability import belief_stability_map, lockin_map


def test_two_cycle_at_alpha_n_two_and_settling_below():
    table = belief_stability_map([0.1, 0.2], [8, 10, 12], seeds=2)
    keys = zip(table["alpha"], table["n_agents"], strict=True)
    late = dict(zip(keys, table["late_overload_rate"], strict=True))
    assert late[(0.1, 8)] == late[(0.1, 12)] == 0.0  # α < 2/N: settles
    assert late[(0.2, 10)] == 0.5 and late[(0.2, 12)] == 0.5  # αN ≥ 2: half the steps
    assert agreement(table, "predicted_stable", cut=0.25, invert=True) == 1.0


def test_high_initial_belief_locks_in_below_lambda_one_only():
    table = lockin_map([0.0, 10.0], [0.5, 0.9, 1.0], base=SimulationConfig(steps=30), seeds=2)
    keys = zip(table["initial_belief"], table["lam"], strict=True)
    rate = dict(zip(keys, table["late_overload_rate"], strict=True))
    assert rate[(0.0, 0.5)] == 1.0 and rate[(0.0, 0.9)] == 0.0  # below / above λ̃ = 0.75
    assert rate[(10.0, 0.9)] == 1.0 and rate[(10.0, 1.0)] == 0.0  # locked in until λ = 1
    assert np.all(table["lockin_belief"] == pytest.approx(9.135, abs=1e-3))


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match=r"alphas\[0\]=0.0"):
        belief_stability_map([0.0], [5])
    with pytest.raises(ValueError, match=r"initial_beliefs\[1\]=-1"):
        lockin_map([0.0, -1.0], [0.5])

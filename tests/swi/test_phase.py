"""Acceptance: the phase diagram switches along λ̃(β) (paper) and λ*(β) (consistent)."""

import math

import numpy as np
import pytest

from swalab.analysis.map_figures import plot_phase
from swalab.analysis.maps import switch_points
from swalab.swi import SimulationConfig
from swalab.swi.phase import phase_diagram

LAMS = np.round(np.arange(0, 1.0001, 0.05), 2)
STEP = 0.05


@pytest.mark.parametrize(
    ("scorer", "margin", "key", "betas"),
    [
        # Above β ≈ 3.2 the paper scorer's clipped group score makes the choice "target or
        # x_max" and the switch stays near 0.44 instead of following λ̃ (README, phase).
        ("paper", 2.0, "lambda_tilde", np.arange(1.2, 3.01, 0.2)),
        ("consistent", 0.0, "lambda_star", np.arange(1.2, 5.01, 0.2)),
    ],
)
def test_switch_per_beta_column_is_within_one_grid_step(scorer, margin, key, betas):
    config = SimulationConfig(candidates="random", scorer=scorer, margin=margin, steps=40)
    table = phase_diagram(config, LAMS, betas, seeds=20)
    sw = switch_points(table)
    for beta, lam_c, predicted in zip(sw["beta"], sw["lambda_c"], sw[key], strict=True):
        assert abs(lam_c - predicted) <= STEP + 1e-9, (beta, lam_c, predicted)


def test_paper_scorer_switch_saturates_at_high_beta():
    """The corner effect: at μ̂ = C/N the target 2 beats x_max once 0.2(1-λ) + λ > 1 - λ."""
    config = SimulationConfig(candidates="random", steps=40)
    table = phase_diagram(config, np.round(np.arange(0.3, 0.6, 0.01), 2), [4.0, 4.5], seeds=10)
    sw = switch_points(table)
    assert np.all(np.abs(sw["lambda_c"] - 0.8 / 1.8) <= 0.011)
    assert np.all(sw["lambda_tilde"] < 0.41)


def test_switch_points_reports_no_transition_as_nan():
    table = {
        "n_agents": np.array([5, 5]),
        "beta": np.array([2.0, 2.0]),
        "lam": np.array([0.0, 1.0]),
        "overload_rate": np.array([1.0, 1.0]),
        "lambda_star": np.array([0.75, 0.75]),
        "lambda_tilde": np.array([0.64, 0.64]),
    }
    assert math.isnan(switch_points(table)["lambda_c"][0])


def test_several_populations_scale_capacity_and_draw(tmp_path):
    config = SimulationConfig(candidates="random", steps=10)
    table = phase_diagram(config, [0.0, 1.0], [1.6, 3.0], seeds=2, n_agents=[5, 8])
    assert sorted(set(table["n_agents"].tolist())) == [5, 8]
    assert set(table["capacity"][table["n_agents"] == 8].tolist()) == {32.0}
    assert table["lam"].size == 8
    figures = plot_phase(table, tmp_path)
    assert [f.suffix for f in figures] == [".png", ".svg"]
    assert all(f.stat().st_size > 1000 for f in figures)


def test_empty_grids_and_bad_populations_are_refused():
    config = SimulationConfig(candidates="random", steps=5)
    with pytest.raises(ValueError, match="must each hold at least one value"):
        phase_diagram(config, [], [1.6], seeds=1)
    with pytest.raises(ValueError, match=r"^n_agents\[1\]=1 is out of range"):
        phase_diagram(config, [0.5], [1.6], seeds=1, n_agents=[5, 1])
    with pytest.raises(ValueError, match=r"^beta\[0\]=0.0 is out of range"):
        phase_diagram(config, [0.5], [0.0], seeds=1)

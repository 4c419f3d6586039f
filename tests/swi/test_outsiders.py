"""Outsider agent kinds on hand-checked boards, and inside SWI populations."""

import math

import numpy as np
import pytest

from swalab.swi import SimulationConfig, run_episode
from swalab.swi.outsiders import outsider_demand

BOARD = dict(
    x_max=10.0, weight=1.0, capacity=20.0, n_agents=5, grid_step=0.25, seed=3, step=4, agent=1
)
NAN = math.nan


def play(kind, last_load=None, last_own=None, demand=NAN, **kw):
    return outsider_demand(
        kind, demand=demand, last_load=last_load, last_own=last_own, **{**BOARD, **kw}
    )


def test_greedy_and_fixed():
    assert play("greedy") == 10.0 and play("greedy", 30.0, 10.0) == 10.0
    assert play("fixed", demand=3.0) == 3.0
    assert play("fixed", demand=12.0) == 10.0  # capped at x_max


def test_tit_for_tat_cooperates_until_an_overload():
    assert play("tit_for_tat") == 4.0  # C/N on the first step
    assert play("tit_for_tat", 20.0, 4.0) == 4.0  # at capacity is not overload
    assert play("tit_for_tat", 20.5, 4.0) == 10.0
    assert play("tit_for_tat", 12.0, 10.0, demand=2.5) == 2.5


def test_random_is_a_seeded_uniform_grid_draw():
    draws = [play("random", seed=s) for s in range(4000)]
    assert set(draws) <= {i * 0.25 for i in range(41)}
    counts = np.bincount([int(d / 0.25) for d in draws], minlength=41)
    assert counts.min() > 50 and counts.max() < 150  # ≈ 97.6 per point
    assert play("random", seed=9) == play("random", seed=9)


def test_adversary_tips_the_load_over_capacity_at_least_cost():
    assert play("adversary") == 4.25  # expects the others at 16: needs > 4
    assert play("adversary", 18.0, 2.0) == 4.25
    assert play("adversary", 19.5, 3.5) == 4.25
    assert play("adversary", 17.0, 0.0) == 3.25
    assert play("adversary", 30.0, 5.0) == 0.0  # others overload alone: spend nothing
    assert play("adversary", 8.0, 0.0) == 10.0  # cannot tip: all it has
    assert play("adversary", 18.0, 2.0, weight=2.0) == 3.25  # others 14: (20 − 14)/2 = 3


def test_greedy_outsider_is_absorbed_above_the_switch_and_swi_agents_pay():
    config = SimulationConfig(agents=("greedy", "swi", "swi", "swi", "swi"), candidates="grid")
    ep = run_episode(config, 0.9, seed=0)
    assert np.all(ep.demands[:, 0] == 10.0)
    assert (ep.loads[5:] <= 20.0).all()  # λ > λ̃ = 0.75: the others make room
    assert ep.rewards[5:, 0].mean() > 2 * ep.rewards[5:, 1:].mean()


def test_bad_populations_name_the_agent():
    with pytest.raises(ValueError, match=r"agents\[2\]='miser' is not a known agent kind"):
        SimulationConfig(agents=("swi", "swi", "miser", "swi", "swi"))
    with pytest.raises(ValueError, match=r"agents\[0\]='fixed' needs a demand"):
        SimulationConfig(agents=("fixed", "swi", "swi", "swi", "swi"))
    with pytest.raises(ValueError, match="agents has 2 entries: must have one per agent"):
        SimulationConfig(agents=("swi", "greedy"))

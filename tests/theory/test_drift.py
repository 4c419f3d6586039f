"""The two-type mean-field map of value drift: payoffs, fixed points and their stability."""

import itertools

import pytest

from swalab.swi import SimulationConfig
from swalab.swi.drift import payoff_table
from swalab.theory import drift as th

TYPES = (0.9, 0.3)
GAME = SimulationConfig(steps=5, candidates="grid")


def test_the_payoff_table_says_selfish_agents_out_earn_prosocial_ones():
    table = payoff_table(GAME, TYPES, seeds=1)
    for k in range(1, 5):  # in a group with k prosocial members, a selfish one earns more
        assert table.selfish[k] > table.prosocial[k]


@pytest.mark.parametrize("rule", ["imitation", "replicator"])
def test_fixed_point_stability_agrees_with_iterating_the_map(rule):
    """Without mutation 0 attracts and 1 repels; a start near each says the same."""
    kwargs = {"rule": rule, "selection": 1.0, "rate": 0.3}
    table = payoff_table(GAME, TYPES, seeds=1)
    points = {round(p.share, 6): p.stable for p in th.fixed_points(table, **kwargs)}
    assert points == {0.0: True, 1.0: False}
    assert th.trajectory(0.02, 50, table, **kwargs)[-1] < 0.02  # pulled into 0
    assert th.trajectory(0.98, 50, table, **kwargs)[-1] < 0.9  # pushed away from 1


def test_fixed_points_are_fixed_and_found_where_the_map_crosses():
    table = payoff_table(GAME, TYPES, seeds=1)
    for mutation in (0.0, 0.02, 0.2):
        kwargs = {"rule": "imitation", "selection": 1.0, "rate": 0.3, "mutation": mutation}
        points = th.fixed_points(table, **kwargs)
        for p in points:
            assert th.step_map(p.share, table, **kwargs) == pytest.approx(p.share, abs=1e-9)
        # Brute force on a fine grid: the map crosses the diagonal once per fixed point.
        xs = [i / 10_000 for i in range(10_001)]
        g = [th.step_map(x, table, **kwargs) - x for x in xs]
        crossings = sum(a * b < 0 for a, b in itertools.pairwise(g))
        ends = sum(abs(v) < 1e-12 for v in (g[0], g[-1]))
        assert len(points) == crossings + ends


@pytest.mark.parametrize(
    ("lam0", "switch", "rate"),
    [(0.84, 0.75, 0.1), (0.9, 0.75, 0.01), (0.8, 0.8, 0.5), (0.7, 0.75, 0.2)],
)
def test_the_principals_collapse_round_is_the_first_below_by_brute_force(lam0, switch, rate):
    r, lam = 0, lam0
    while lam >= switch:
        lam *= 1 - rate
        r += 1
    assert th.principal_collapse(lam0, switch, rate) == r

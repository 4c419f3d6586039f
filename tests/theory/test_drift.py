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


def test_logit_equilibria_are_where_the_logit_response_crosses_the_diagonal():
    """Brute force on a fine grid: σ(s·Δ(p)) from the payoff table by hand, and its slope."""
    import math

    from swalab.swi.drift import Institution

    table = payoff_table(GAME, TYPES, seeds=2, institution=Institution(fine=3.0))
    n = 5

    def gap(p):
        w = [math.comb(n - 1, j) * p**j * (1 - p) ** (n - 1 - j) for j in range(n)]
        return sum(w[j] * (table.prosocial[j + 1] - table.selfish[j]) for j in range(n))

    for s, mu in ((1.0, 0.0), (2.0, 0.05), (0.2, 0.0)):
        points = th.logit_fixed_points(table, selection=s, mutation=mu)

        def g(p, s=s, mu=mu):
            return (1 - mu) / (1 + math.exp(-s * gap(p))) + mu / 2

        xs = [i / 10_000 for i in range(10_001)]
        d = [g(x) - x for x in xs]
        crossings = [i for i, (a, b) in enumerate(itertools.pairwise(d)) if a * b < 0]
        assert len(points) == len(crossings)
        for p, i in zip(points, crossings, strict=True):
            assert xs[i] <= p.share <= xs[i + 1]
            assert g(p.share) == pytest.approx(p.share, abs=1e-9)
            # Stable where the logit response crosses the diagonal from above.
            assert p.stable == (d[i] > 0 > d[i + 1])
    # Fine 3, s = 1: the collapse and a prosocial equilibrium, split by an unstable one.
    low, mid, high = th.logit_fixed_points(table, selection=1.0)
    assert low.stable and not mid.stable and high.stable
    assert low.share < 0.01 < 0.3 < mid.share < 0.8 < 0.95 < high.share

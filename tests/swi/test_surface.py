"""The critical surface of mixed populations: closed forms against simulation and algebra."""

import numpy as np
import pytest

from swalab.analysis.maps import interior
from swalab.analysis.maps import surface_agreement as agreement
from swalab.swi import SimulationConfig
from swalab.swi.surface import critical_surface, swi_fixed_point_load

BASE = SimulationConfig(
    n_agents=10, capacity=40.0, beta=3.0, steps=60, alpha=0.1, scorer="consistent"
)


@pytest.mark.parametrize("k", range(11))
def test_fixed_point_load_solves_its_equation(k):
    n, c, m, xm = 10, 40.0, 2.0, 10.0
    load = swi_fixed_point_load(n, c, m, xm, k)
    if k == n:
        assert load == n * xm
        return
    x = (load - k * xm) / (n - k)
    mu = load / n
    if 0 < x < xm:  # interior: the prosocial agents hit C − m with the shared mean belief
        assert x + (n - 1) * mu == pytest.approx(c - m)
    else:
        assert x == pytest.approx(0.0)  # the selfish agents alone already exceed C − m


def test_fixed_point_reduces_to_the_margin_without_selfish_agents():
    assert swi_fixed_point_load(5, 20.0, 2.0, 10.0, 0) == pytest.approx(18.0)
    # Three selfish agents of ten: the shared mean belief under-reads the others by
    # k·(x_max − x)/N ≈ 2.55 > m = 2, so the rule overshoots C although 3·10 ≤ 40.
    assert swi_fixed_point_load(10, 40.0, 2.0, 10.0, 3) == pytest.approx(
        30 + 7 * 11 / 7.3, rel=1e-12
    )
    assert swi_fixed_point_load(10, 40.0, 2.0, 10.0, 3) > 40.0
    assert swi_fixed_point_load(10, 40.0, 2.0, 10.0, 2) < 40.0


def test_simulated_surface_agrees_with_the_fixed_point_away_from_its_boundary():
    table = critical_surface(BASE, np.linspace(0, 1, 11), seeds=2)
    share, cells = agreement(table, "swi_overloaded")
    assert cells > 60 and share == 1.0
    # Game theory's surface is right except where the mean-field belief error bites:
    # k = 3 (load 30 ≤ C) stays overloaded below λ*.
    at_k3 = (table["k"] == 3) & (table["lam_low"] < 0.7)
    assert not table["nash_overloaded"][at_k3].any()
    assert (table["overload_rate"][at_k3] == 1.0).all()
    # The simulated load settles at the closed-form fixed point (grid candidates: ≤ one
    # 0.25 step per prosocial agent below it).
    k2 = (table["k"] == 2) & (table["lam_low"] == 0.0)
    assert table["mean_load"][k2][0] == pytest.approx(
        swi_fixed_point_load(10, 40, 2, 10, 2), abs=2.5
    )


def test_interior_excludes_cells_next_to_the_boundary():
    table = {
        "k": np.repeat([0, 1, 2], 3),
        "lam_low": np.tile([0.0, 0.5, 1.0], 3),
        "x": np.array([0, 0, 0, 0, 0, 0, 1, 1, 1], dtype=bool),
    }
    np.testing.assert_array_equal(interior(table, "x"), [1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_a_subset_of_low_group_sizes_plays_only_those():
    table = critical_surface(BASE, [0.0, 1.0], seeds=1, ks=[2, 7])
    assert sorted(set(table["k"].tolist())) == [2, 7] and table["k"].size == 4
    with pytest.raises(ValueError, match="ks: 11 is out of range"):
        critical_surface(BASE, [0.0], seeds=1, ks=[11])

"""A guard study's runs pooled over seeds, and its figure."""

import math

import numpy as np
import pytest

from swalab.analysis.guard import POOLED, plot_guard, pool_runs
from swalab.stats import bootstrap_mean


def _runs(points):
    """A table of runs: one row per (behaviour, N, name, λ, share, seed, goodput, 429, lock)."""
    rows = []
    for behaviour, n, name, lam, share, seed, good, rej, lock in points:
        row = {
            "behaviour": behaviour,
            "clients": n,
            "name": name,
            "policy": f"swa_lam{lam:g}" if name == "swa" else name,
            "lam": math.nan if lam is None else lam,
            "guarded": share,
            "seed": seed,
            "goodput_share": good,
            "reject_share": rej,
            "lockout_windows": lock,
            "counters_agree": True,
            "server_peak_rss_mib": 50.0 + seed,
            "client_peak_rss_mib": 100.0,
        }
        for metric in POOLED:
            row.setdefault(metric, 0.25 * seed)
        rows.append(row)
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def test_seeds_pool_into_means_with_intervals_in_the_line_ups_order():
    goodput = [0.70, 0.80, 0.75]
    points = [("lockout", 1000, "swa", 1.0, 1.0, s, g, 0.0, 0) for s, g in enumerate(goodput)]
    points += [("lockout", 1000, "naive", None, 1.0, s, 0.5, 0.9, 9 * s) for s in range(3)]
    points += [("lockout", 1000, "swa", 1.0, 0.5, 0, 0.6, 0.5, 0)]
    points += [("lockout", 10, "backoff_full", None, 1.0, 0, 0.9, 0.1, 0)]
    table = _runs(points)
    table["wasted_per_success"][3] = np.inf  # a naive run in which nothing succeeded
    table["counters_agree"][4] = False
    pooled = pool_runs(table)
    # by behaviour, N, full population first, then the line-up's order
    order = [(r["clients"], r["policy"], r["guarded"]) for r in pooled]
    assert order == [
        (10, "backoff_full", 1.0),
        (1000, "naive", 1.0),
        (1000, "swa_lam1", 1.0),
        (1000, "swa_lam1", 0.5),
    ]
    swa = pooled[2]
    truth = bootstrap_mean(goodput)
    assert swa["seeds"] == 3 and swa["lam"] == 1.0
    assert swa["goodput_share"] == pytest.approx(0.75)
    assert swa["goodput_share_ci"] == [truth.low, truth.high]
    assert swa["goodput_x_accept"] == pytest.approx(0.75)
    naive = pooled[1]
    assert naive["lam"] is None and naive["locked_runs"] == 2
    assert naive["lockout_windows"] == pytest.approx(9.0)
    assert naive["goodput_x_accept"] == pytest.approx(0.5 * 0.1)
    assert naive["wasted_per_success"] == pytest.approx(0.375)  # mean of seeds 1, 2 only
    assert naive["counters_agree"] is False and swa["counters_agree"] is True
    assert naive["server_peak_rss_mib"] == 52.0
    one = pooled[0]  # one seed: a mean without an interval
    assert one["seeds"] == 1 and one["goodput_share_ci"] == [None, None]
    assert pool_runs({}) == []


def test_one_column_per_behaviour_with_bars_and_files_written(tmp_path):
    points = [
        (b, n, name, lam, 1.0, s, good + 0.01 * s, rej, lock)
        for b in ("plain", "lockout")
        for name, lam, good, rej, lock in (("naive", None, 0.5, 0.9, 9), ("swa", 1.0, 0.8, 0, 0))
        for n in (10, 100, 1000)
        for s in range(2)
    ]
    files = plot_guard(pool_runs(_runs(points)), tmp_path)
    assert sorted(f.name for f in files) == ["guard.png", "guard.svg"]
    svg = (tmp_path / "guard.svg").read_text()
    assert "plain" in svg and "lockout" in svg and "swa_lam1" in svg
    assert all(f.stat().st_size > 10_000 for f in files)

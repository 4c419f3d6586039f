"""The client-policy benchmark's figure."""

import numpy as np

from swalab.analysis.guard_figures import plot_guard


def test_one_column_per_behaviour_and_files_written(tmp_path):
    rows = [
        (b, p, n, good, rej, lock)
        for b in ("plain", "lockout")
        for p, good, rej, lock in (("naive", 0.5, 0.9, 9), ("swa_lam1", 0.8, 0.0, 0))
        for n in (10, 100, 1000)
    ]
    keys = ("behaviour", "policy", "clients", "goodput_share", "reject_share", "lockout_windows")
    table = {k: np.array([r[i] for r in rows]) for i, k in enumerate(keys)}
    files = plot_guard(table, tmp_path)
    assert sorted(f.name for f in files) == ["guard.png", "guard.svg"]
    svg = (tmp_path / "guard.svg").read_text()
    assert "plain" in svg and "lockout" in svg and "swa_lam1" in svg
    assert all(f.stat().st_size > 10_000 for f in files)

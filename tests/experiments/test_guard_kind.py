"""The guard kind: a cell per policy × N × behaviour × share × seed, stored and resumed."""

import contextlib
import importlib.util
import socket
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import pytest

from swalab.experiments import ConfigError, load_config, run_experiment
from swalab.experiments.kinds import plan
from swalab.experiments.store import ResultStore

SMALL = {
    "kind": "guard",
    "policies": ["naive", "backoff_full", "swa"],
    "lam": [0.0, 1.0],
    "clients": [2, 5],
    "guarded": [1.0, 0.5],
    "seeds": 2,
}


def _config(**changes: Any) -> Any:
    return load_config(SMALL | changes)


def test_a_cell_per_run_and_mixed_shares_for_the_mixed_policies_only():
    cells = plan(_config(), "test")
    runs = [c.assignment for c in cells]
    expected = [
        {"behaviour": "retry_after", "clients": n, "policy": p, "lam": lam, "guarded": g, "seed": s}
        for n in (2, 5)
        for p, lam, g in (
            ("naive", None, 1.0),
            ("backoff_full", None, 1.0),
            ("swa", 0.0, 1.0),
            ("swa", 1.0, 1.0),
            ("swa", 0.0, 0.5),
            ("swa", 1.0, 0.5),
        )
        for s in (0, 1)
    ]
    assert sorted(runs, key=repr) == sorted(expected, key=repr)
    assert len({c.key for c in cells}) == len(cells) == 24
    first = next(c for c in cells if c.assignment["policy"] == "swa")
    assert first.config.lam == [first.assignment["lam"]] and first.config.seeds == [0]


def test_both_guards_are_played_once_per_lam():
    cells = plan(_config(policies=["swa_shared", "token_bucket"], guarded=[1.0]), "test")
    played = sorted({(c.assignment["policy"], c.assignment["lam"]) for c in cells}, key=repr)
    assert played == [("swa_shared", 0.0), ("swa_shared", 1.0), ("token_bucket", None)]


def test_cell_names_depend_on_what_the_run_measures_only():
    keys = {repr(c.assignment): c.key for c in plan(_config(), "test")}
    # another λ list leaves the baselines' cells (which play no λ) as they were
    other = {repr(c.assignment): c.key for c in plan(_config(lam=[1.0, 0.5]), "test")}
    shared = [a for a in keys if a in other]
    assert shared and all(keys[a] == other[a] for a in shared)
    assert any("'swa'" in a and "0.0" in a for a in keys if a not in other)
    # a longer run measures something else: every name changes
    longer = {c.key for c in plan(_config(duration_s=20.0), "test")}
    assert not longer & set(keys.values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policies": ["naive", "naive"]}, "policies=.*lists \\['naive'\\] more than once"),
        ({"policies": ["naive", "polite"]}, 'policies\\[1\\]="polite"'),
        ({"guarded": [1.0, 0.0]}, "guarded\\[1\\]=0.0: Input should be greater than 0"),
        ({"clients": [0]}, "clients\\[0\\]=0"),
        ({"duration_s": -1}, "duration_s=-1"),
        ({"seeds": 0}, "seeds"),
    ],
)
def test_bad_fields_are_named(changes, message):
    with pytest.raises(ConfigError, match=message):
        _config(**changes)


def test_a_study_too_long_is_refused_unless_forced():
    long = _config(seeds=1000, clients=[10, 100, 1000])
    with pytest.raises(ConfigError, match=r"hours of live traffic; at most 6"):
        plan(long, "test")
    forced = _config(seeds=200, executor={"force": True})
    assert len(plan(forced, "test")) == 200 * 12


def test_the_extra_is_named_when_missing_for_live_runs_only(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs uvicorn: pip install 'swalab\[guard\]'"):
        plan(_config(), "test")
    assert plan(_config(clock="simulated"), "test")


def test_simulated_runs_are_other_cells_and_run_on_workers(tmp_path):
    live = plan(_config(), "test")
    simulated = plan(_config(clock="simulated"), "test")
    assert not {c.key for c in live} & {c.key for c in simulated}
    from swalab.experiments.kinds import get_kind

    kind = get_kind("guard")
    executor = _config().executor
    assert {t.kind for t in kind.tasks(simulated, executor)} == {"engine"}
    assert {t.kind for t in kind.tasks(live, executor)} == {"driver"}
    # no hours of live traffic to refuse: a simulated study of many seeds plans
    assert len(plan(_config(clock="simulated", seeds=500), "test")) == 500 * 12
    config = _config(
        clock="simulated",
        clients=[50],
        seeds=2,
        policies=["naive", "swa"],
        guarded=[1.0],
        lam=[1.0],
        behaviours=["lockout"],
    )
    summary = run_experiment(config, out=tmp_path)
    assert summary.ran == 4 and not summary.failed
    runs = pq.read_table(ResultStore(tmp_path).table_files("guard")).to_pylist()
    naive = [r for r in runs if r["policy"] == "naive"]
    guard = [r for r in runs if r["policy"] == "swa_lam1"]
    assert all(r["lockout_windows"] > 0 for r in naive)
    assert all(r["lockout_windows"] == 0 and r["counters_agree"] for r in guard)


@dataclass
class _Elsewhere:
    """A real limit server whose clients are sent to a port nobody listens on."""

    live: Any
    url: str

    def stats(self) -> dict[str, Any]:
        return dict(self.live.stats())

    def peak_rss_mib(self) -> float:
        return float(self.live.peak_rss_mib())


def test_runs_are_stored_a_failed_run_is_not_and_a_rerun_completes_it(tmp_path, monkeypatch):
    pytest.importorskip("httpx", reason="needs the guard extra")
    pytest.importorskip("uvicorn", reason="needs the guard extra")
    import swalab.guard.harness as harness

    config = load_config(
        {
            "kind": "guard",
            "policies": ["naive", "swa"],
            "lam": [1.0],
            "clients": [3],
            "behaviours": ["lockout"],
            "seeds": 1,
            "duration_s": 0.6,
            "deadline_s": 0.5,
            "limit": 10,
            "window_s": 0.2,
        }
    )
    real_serve = harness.serve
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"

    @contextlib.contextmanager
    def refused(server):  # the swa run's clients find their connections refused
        with real_serve(server) as live:
            yield _Elsewhere(live, dead)

    calls = iter([real_serve, refused])
    monkeypatch.setattr(harness, "serve", lambda server: next(calls)(server))
    first = run_experiment(config, out=tmp_path)
    assert first.ran == 1 and len(first.failed) == 1
    assert "client call(s) failed on the transport" in first.failed[0][1]
    assert "ConnectError" in first.failed[0][1]

    monkeypatch.setattr(harness, "serve", real_serve)
    second = run_experiment(config, out=tmp_path)
    assert second.skipped == 1 and second.ran == 1 and not second.failed
    store = ResultStore(tmp_path)
    runs = pq.read_table(store.table_files("guard")).to_pylist()
    assert sorted(r["policy"] for r in runs) == ["naive", "swa_lam1"]
    for r in runs:
        assert r["counters_agree"] and r["errors"] == 0 and r["clients"] == 3
        assert r["calls"] == r["succeeded"] + r["dropped"]
    clients = pq.read_table(store.table_files("guard_clients")).to_pylist()
    assert len(clients) == 6
    for r in runs:  # the clients' rows add up to their run's totals
        mine = [c for c in clients if c["policy"] == r["policy"]]
        assert sum(c["succeeded"] for c in mine) == r["succeeded"]
        assert sum(c["rejected"] for c in mine) == r["rejected"]


def test_an_unknown_clock_is_named():
    with pytest.raises(ConfigError, match='clock="sundial"'):
        _config(clock="sundial")

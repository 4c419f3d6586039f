"""Clients on real connections to the uvicorn limit server: its counters and theirs agree."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("httpx", reason="needs the guard extra")
pytest.importorskip("uvicorn", reason="needs the guard extra")

from swalab.guard import Backoff, Naive, SWAGuard
from swalab.guard.harness import Load, arrivals, jain, run_guard
from swalab.guard.server import ServerConfig, serve


def test_arrivals_are_poisson_at_the_asked_rate():
    server = ServerConfig(limit=100, window_s=1.0)
    load = Load(clients=10, demand=2.0, duration_s=50.0)
    counts = [len(arrivals(load, server, i)) for i in range(10)]
    assert sum(counts) / 50.0 == pytest.approx(200, rel=0.05)
    assert arrivals(load, server, 3) == arrivals(load, server, 3)


def test_jain_index():
    assert jain([1, 1, 1, 1]) == 1.0 and jain([4, 0, 0, 0]) == 0.25 and jain([0, 0]) == 1.0


def test_naive_herd_locks_the_key_and_the_guard_does_not():
    server = ServerConfig(limit=20, window_s=0.5, behaviour="lockout", lockout_threshold=10)
    load = Load(clients=10, demand=3.0, duration_s=3.0, deadline_s=1.0, seed=1)
    herd = run_guard(Naive(), load, server)
    guard = SWAGuard(
        lam=1.0, limit=20, window_s=0.5, clients=10, lockout_threshold=10, lockout_cost=20
    )
    calm = run_guard(guard, load, server)
    for r in (herd, calm):  # the server's counters are the clients'
        assert r["errors"] == 0 and r["server_ok"] == r["succeeded"]
        assert r["server_limited"] + r["server_locked"] == r["rejected"]
        assert r["calls"] == r["succeeded"] + r["dropped"]
    assert herd["lockout_windows"] >= 1 and herd["reject_share"] > 0.5
    assert calm["lockout_windows"] == 0 and calm["reject_share"] < 0.2
    assert calm["goodput_share"] > herd["goodput_share"]


def test_guards_that_pool_one_belief_keep_the_key_open():
    server = ServerConfig(limit=20, window_s=0.5, behaviour="lockout", lockout_threshold=10)
    load = Load(clients=40, demand=2.0, duration_s=3.0, deadline_s=1.5, seed=2)
    guard = SWAGuard(
        lam=1.0, limit=20, window_s=0.5, clients=40, lockout_threshold=10, lockout_cost=20
    )
    r = run_guard(guard, load, server, pooling=True)
    assert r["errors"] == 0 and r["server_ok"] == r["succeeded"]
    assert r["lockout_windows"] == 0 and r["reject_share"] < 0.2 and r["succeeded"] > 0
    with pytest.raises(ValueError, match="pooling has 1 entries: must have one per client"):
        run_guard(guard, load, server, pooling=[True])


def test_mixed_population_and_retry_after_headers():
    server = ServerConfig(limit=20, window_s=0.5, behaviour="retry_after")
    load = Load(clients=6, demand=2.0, duration_s=2.0, deadline_s=1.0)
    mixed = [Backoff("full")] * 3 + [Naive()] * 3
    r = run_guard(mixed, load, server)
    assert r["server_ok"] == r["succeeded"] and len(r["per_client"]["rejected"]) == 6
    # the naive half make more of the rejected attempts than the backoff half
    assert sum(r["per_client"]["rejected"][3:]) > sum(r["per_client"]["rejected"][:3])
    with pytest.raises(ValueError, match="policies has 2 entries: must have one per client"):
        run_guard([Naive(), Naive()], load, server)


def test_server_headers_and_stats():
    import httpx

    with serve(ServerConfig(limit=2, window_s=5.0, behaviour="retry_after")) as live:
        answers = [httpx.post(live.url + "/call", headers={"X-Client": "4"}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[0].headers["ratelimit-limit"] == "2"
        assert answers[1].headers["ratelimit-remaining"] == "0"
        assert 0 < float(answers[2].headers["retry-after"]) <= 5.0
        stats = live.stats()
        assert stats["totals"] == {"ok": 2, "limited": 1, "locked": 0}
        assert stats["clients"]["4"] == {"ok": 2, "limited": 1, "locked": 0}
        assert httpx.get(live.url + "/nowhere").status_code == 404
    with serve(ServerConfig(limit=2, window_s=5.0, behaviour="plain")) as live:
        httpx.post(live.url + "/call")
        httpx.post(live.url + "/call")
        bare = httpx.post(live.url + "/call")
        assert bare.status_code == 429 and "retry-after" not in bare.headers


def test_bad_server_settings_name_the_field():
    with pytest.raises(ValueError, match="behaviour='loud' is not known"):
        ServerConfig(behaviour="loud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit=0 is out of range"):
        ServerConfig(limit=0)
    with pytest.raises(ValueError, match="clients=0 is out of range"):
        Load(clients=0)


def test_a_server_that_cannot_start_says_why(tmp_path):
    # the child gets a config it rejects: the error comes back, not a hang
    bad = subprocess.run(
        [sys.executable, "-m", "swalab.guard.server", json.dumps({"limit": -1})],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "limit=-1 is out of range" in bad.stderr


def test_a_server_that_does_not_start_in_time_is_an_error_not_a_hang():
    late = pytest.raises(RuntimeError, match=r"did not start within 0\.001 s")
    with late, serve(ServerConfig(), start_timeout_s=0.001):
        pass


def test_a_refused_connection_is_counted_not_hidden():
    import asyncio
    import socket
    import time

    from swalab.guard.harness import _client

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    load = Load(clients=1, duration_s=1.0, deadline_s=1.0)
    errors: list[str] = []
    start = time.monotonic()
    counts, latencies = asyncio.run(
        _client(0, Naive(), [0.0, 0.1], f"http://127.0.0.1:{port}", load, start, [], errors)
    )
    assert len(errors) == 2 and "ConnectError" in errors[0]
    assert counts.calls == 2 and counts.ok == 0 and latencies == []

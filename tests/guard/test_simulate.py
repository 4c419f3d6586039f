"""The simulated clock: the live harness's clients and limiter as discrete events."""

from dataclasses import dataclass

import pytest

from swalab.guard import Backoff, Naive, SWAGuard, TokenBucket, Wait
from swalab.guard.harness import Load
from swalab.guard.server import ServerConfig
from swalab.guard.simulate import simulate_guard

SERVER = ServerConfig(limit=20, window_s=0.5, behaviour="lockout", lockout_threshold=10)
LOAD = Load(clients=20, demand=2.0, duration_s=3.0, deadline_s=1.0, seed=1)
GUARD = SWAGuard(lam=1.0, limit=20, window_s=0.5, clients=20, lockout_threshold=10, lockout_cost=20)


def test_a_run_is_reproducible_and_its_counts_add_up():
    for policy in (Naive(), Backoff("full"), TokenBucket(rate=2.0), GUARD):
        r = simulate_guard(policy, LOAD, SERVER)
        assert simulate_guard(policy, LOAD, SERVER) == r
        assert r["server_ok"] == r["succeeded"]
        assert r["server_limited"] + r["server_locked"] == r["rejected"]
        assert r["calls"] == r["succeeded"] + r["dropped"]
        assert sum(r["per_client"]["calls"]) == r["calls"]


def test_the_herd_locks_the_key_and_the_guard_does_not():
    herd = simulate_guard(Naive(), LOAD, SERVER)
    calm = simulate_guard(GUARD, LOAD, SERVER)
    pooled = simulate_guard(GUARD, LOAD, SERVER, pooling=True)
    assert herd["lockout_windows"] >= 1 and herd["reject_share"] > 0.5
    for r in (calm, pooled):
        assert r["lockout_windows"] == 0 and r["reject_share"] < 0.2
        assert r["goodput_share"] > herd["goodput_share"]


def test_a_server_that_answers_one_at_a_time_slows_a_herd():
    fast = simulate_guard(Naive(), LOAD, SERVER, service_s=0.0)
    slow = simulate_guard(Naive(), LOAD, SERVER, service_s=0.005)
    assert slow["attempts"] < fast["attempts"] / 2


@dataclass(frozen=True)
class _Dawdler:
    """Asks to wait far less than a float step of the clock: time must still pass."""

    name: str = "dawdler"

    def initial(self, seed):
        return seed

    def decide(self, state, obs):
        return (Wait(1e-18) if obs.__class__.__name__ == "Ready" else None), state


def test_waits_below_the_clocks_resolution_still_pass_time():
    r = simulate_guard(_Dawdler(), Load(clients=2, duration_s=0.5, deadline_s=0.01), SERVER)
    assert r["attempts"] == 0 and r["dropped"] == r["calls"] > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policies": [Naive()]}, "policies has 1 entries: must have one per client"),
        ({"pooling": [True]}, "pooling has 1 entries: must have one per client"),
        ({"rtt_s": -1.0}, "rtt_s=-1.0 is out of range"),
        ({"phase": 1.0}, "phase=1.0 is out of range"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = {"policies": Naive(), "load": LOAD, "server": SERVER} | kwargs
    with pytest.raises(ValueError, match=message):
        simulate_guard(**args)


@pytest.mark.slow
@pytest.mark.parametrize("policy", [Naive(), TokenBucket(rate=2.0), GUARD])
def test_it_agrees_with_a_live_run(policy):
    pytest.importorskip("httpx", reason="needs the guard extra")
    pytest.importorskip("uvicorn", reason="needs the guard extra")
    from swalab.guard.harness import run_guard

    live = run_guard(policy, LOAD, SERVER)
    sim = simulate_guard(policy, LOAD, SERVER)
    assert (live["lockout_windows"] > 0) == (sim["lockout_windows"] > 0)
    assert sim["goodput_share"] == pytest.approx(live["goodput_share"], abs=0.15)
    assert sim["reject_share"] == pytest.approx(live["reject_share"], abs=0.15)

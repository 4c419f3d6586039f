"""SWI agents against the live limit server: a real HTTP server on 127.0.0.1 and real clients.

Tolerances (stated, measured): with ``interval`` refill the server's windows are the
model's steps, so the measured 200 and 429 counts of every step equal the pure model's
prediction for the calls actually sent (tolerance: 1 call per episode, for a call that
could straddle a window under heavy load; late calls are counted and must be 0). With
``continuous`` refill the bucket also refills while a step's calls are in flight, so the
server admits more: over the episode, at most the refill during each step's dispatch
(``rate/step_s`` tokens per second of ``dispatch_s``) plus one call per step (measured on
an idle 2-core machine: 138 admitted vs 120 predicted).
"""

import pytest

from swalab import envs
from swalab.swi.dilemma import DilemmaAgents
from swalab.swi.live import play_live

DYN = envs.dynamics("rate_limit_v0", steps=12)
STEP_S = 1.0  # wide windows: a loaded 2-core CI machine dispatches 50 calls in < 0.5 s
HERD = DilemmaAgents(kinds=("retry",) * 5, demands=(5.0,) * 5)


@pytest.mark.parametrize(
    ("lam", "agents"),
    [(0.0, None), (1.0, None), (0.0, HERD)],
    ids=["selfish", "swa", "naive-retries"],
)
def test_live_429s_and_completed_calls_match_the_pure_model(lam, agents):
    r = play_live(DYN, lam, seed=0, agents=agents, step_s=STEP_S)
    assert r.late_calls == 0
    assert r.measured_ok.sum() + r.measured_429.sum() == r.actions.sum()
    assert abs(r.measured_ok.sum() - r.predicted_ok.sum()) <= 1
    assert abs(r.measured_429.sum() - r.predicted_429.sum()) <= 1
    assert (r.measured_locked == r.predicted_locked).all()
    if lam == 1.0 and agents is None:
        assert r.measured_429.sum() == 0 and r.measured_ok.sum() == DYN.rate * DYN.steps
    else:  # selfish agents and naive retries lock the key out, on the real server too
        assert r.measured_locked.sum() >= 5


def test_continuous_refill_agrees_within_the_stated_tolerance():
    r = play_live(DYN, 0.0, seed=0, step_s=STEP_S, refill="continuous")
    bound = (DYN.rate / STEP_S) * r.dispatch_s + 1  # tokens refilled while calls were in flight
    extra = r.measured_ok.sum() - r.predicted_ok.sum()  # a step's extra is the next's deficit
    assert -2 <= extra <= bound.sum()
    assert r.measured_locked.sum() >= 5

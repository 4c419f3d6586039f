"""``rate_limit_v0`` live: a real HTTP server on 127.0.0.1 and real concurrent clients.

Tolerances (stated, measured): with ``interval`` refill the server's windows are the
model's steps, so the measured 200 and 429 counts of every step equal the pure model's
prediction for the calls actually sent (tolerance: 1 call per episode, for a call that
could straddle a window under heavy load; late calls are counted and must be 0). With
``continuous`` refill the bucket also refills while a step's calls are in flight, so the
server admits more: within 20 % of the model's admitted total (measured: 138 vs 120).
"""

import numpy as np
import pytest

from swalab import envs
from swalab.envs.rate_limit_live import play_live, serve
from swalab.swi.dilemma import DilemmaAgents

DYN = envs.dynamics("rate_limit_v0", steps=16)
HERD = DilemmaAgents(kinds=("retry",) * 5, demands=(5.0,) * 5)


@pytest.mark.parametrize(("lam", "agents"), [(0.0, None), (1.0, None), (0.0, HERD)],
                         ids=["selfish", "swa", "naive-retries"])  # fmt: skip
def test_live_429s_and_completed_calls_match_the_pure_model(lam, agents):
    r = play_live(DYN, lam, seed=0, agents=agents, step_s=0.3)
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
    r = play_live(DYN, 0.0, seed=0, step_s=0.3, refill="continuous")
    assert r.predicted_ok.sum() <= r.measured_ok.sum() <= 1.2 * r.predicted_ok.sum()
    assert r.measured_locked.sum() >= 5


def test_server_binds_to_localhost_and_stops():
    import urllib.error
    import urllib.request

    with serve(DYN, step_s=0.5) as live:
        assert live.url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(live.url + "/call", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(request, timeout=2)


def test_bad_live_settings_are_named():
    with pytest.raises(ValueError, match=r"step_s=0 is out of range"), serve(DYN, step_s=0):
        pass
    leaky = pytest.raises(ValueError, match=r"refill='leaky' is not known")
    with leaky, serve(DYN, refill="leaky"):  # type: ignore[arg-type]
        pass
    assert np.isfinite(DYN.rate)

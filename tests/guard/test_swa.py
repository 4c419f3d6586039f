"""The SWA guard: its welfare model is rate_limit_v0's, its best response the brute-force one,
its switch the closed form, and it acts only on what a client sees."""

import math

import numpy as np
import pytest

from swalab.envs.rate_limit_v0 import RateLimit, threshold
from swalab.guard import Answered, Limits, Ready, Send, SWAGuard, Wait


def test_utility_is_the_environments_rewards():
    """(1 − λ)·R_i + λ·W/N with R, W from rate_limit_v0's transition (one step, no lockout)."""
    n, b, c = 5, 20.0, 0.5
    dyn = RateLimit(n_agents=n, rate=b, burst=b, waste_cost=c, lockout_after=0)
    for lam in (0.0, 0.4, 1.0):
        guard = SWAGuard(lam=lam, limit=b, window_s=1.0, clients=n, waste_cost=c)
        for a, each in [(3, 4.0), (8, 4.0), (10, 6.0), (0, 7.0)]:
            actions = np.array([a] + [each] * (n - 1), dtype=float)
            _, out = dyn.transition(dyn.initial(), actions)
            want = (1 - lam) * out.rewards[0] + lam * out.welfare / n
            assert guard.utility(a, each * (n - 1), b) == pytest.approx(want)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 0.99, 1.0])
@pytest.mark.parametrize(("n", "others"), [(5, 16.0), (10, 90.0), (1000, 99.9), (3, 0.0)])
@pytest.mark.parametrize("lockout", [math.inf, 30.0])
def test_best_response_is_the_brute_force_maximum(lam, n, others, lockout):
    limit = 100.0 if n >= 10 else 20.0
    guard = SWAGuard(
        lam=lam, limit=limit, window_s=1, clients=n, lockout_threshold=lockout, lockout_cost=50
    )
    grid = np.linspace(0, limit, 200_001)
    brute = max(guard.utility(a, others, limit) for a in grid)
    best = guard.best_response(others, limit)
    assert guard.utility(best, others, limit) >= brute - 1e-6
    assert 0 <= best <= limit


def test_the_guard_switches_at_the_closed_form():
    n, b, c = 20, 100.0, 0.5
    fair = b * (n - 1) / n
    switch = threshold(n, c)
    above = SWAGuard(lam=switch + 1e-3, limit=b, window_s=1, clients=n, waste_cost=c)
    below = SWAGuard(lam=switch - 1e-3, limit=b, window_s=1, clients=n, waste_cost=c)
    assert above.switch() == pytest.approx(switch)
    assert above.best_response(fair, b) == pytest.approx(b / n)  # its fair share, no more
    assert below.best_response(fair, b) > b / n + 1  # keeps adding rejected calls


def _run(guard, seed, times, answers):
    state = guard.initial(seed)
    log = []
    for now in times:
        action, state = guard.decide(state, Ready(now))
        log.append(action)
        if isinstance(action, Send):
            _, state = guard.decide(state, Answered(now, answers(now), Limits()))
    return log, state


def _sends(guard, seeds=200, every=0.5, windows=40):
    counts = []
    for seed in range(seeds):
        times = [k * every for k in range(round(windows / every))]
        log, _ = _run(guard, seed, times, lambda now: 200)
        counts.append(sum(isinstance(a, Send) for a in log))
    return float(np.mean(counts))


def test_a_share_below_one_call_is_one_call_every_few_windows():
    guard = SWAGuard(lam=1.0, limit=100, window_s=1.0, clients=1000, probe=0.0)
    # share 0.1 a window over 40 windows: 4 calls, + a random first credit (mean 1)
    assert 4.0 <= _sends(guard) <= 6.0


def test_it_probes_for_room_only_with_evidence():
    # 2 clients on 10 a window: 5 each; asked every 0.05 s, it sends its 5 and holds the
    # rest; all admitted, so it believes the other sends a little less, window by window
    fixed = SWAGuard(lam=1.0, limit=10, window_s=1.0, clients=2, probe=0.0)
    probing = SWAGuard(lam=1.0, limit=10, window_s=1.0, clients=2)
    assert _sends(fixed, 20, 0.05, 20) == pytest.approx(5 * 20, abs=10)
    assert _sends(probing, 20, 0.05, 20) > _sends(fixed, 20, 0.05, 20) + 20


def test_rejections_raise_the_belief_and_cut_the_calls():
    guard = SWAGuard(lam=1.0, limit=10, window_s=1.0, clients=2, alpha=1.0)
    log, state = _run(guard, 0, [0.1 * k for k in range(5)], lambda now: 429)
    sent = sum(isinstance(a, Send) for a in log)
    assert sent >= 1 and state.rejected == sent
    action, state = guard.decide(state, Ready(1.05))
    # ρ = sent/(sent + 1): X = 10/(1 − ρ) = 10·(sent + 1); no room left for this client
    assert state.others == pytest.approx(10 * (sent + 1) - sent) and isinstance(action, Wait)


def test_retry_after_and_an_empty_bucket_hold_the_call():
    guard = SWAGuard(lam=0.0, limit=10, window_s=1.0, clients=2)
    state = guard.initial(0)
    action, state = guard.decide(state, Ready(0.0))
    assert action == Send()
    _, state = guard.decide(state, Answered(0.0, 429, Limits(retry_after=0.7)))
    action, state = guard.decide(state, Ready(0.2))
    assert action == Wait(pytest.approx(0.5))
    _, state = guard.decide(state, Answered(0.8, 200, Limits(remaining=0, reset=0.1)))
    action, _ = guard.decide(state, Ready(0.85))
    assert isinstance(action, Wait) and 0.85 + action.seconds >= 0.9  # the server's next window


def test_decide_is_pure():
    guard = SWAGuard(lam=0.5, limit=10, window_s=1.0, clients=4)
    state = guard.initial(3)
    first = guard.decide(state, Ready(0.0))
    assert guard.decide(state, Ready(0.0)) == first and guard.initial(3) == state


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("lam", 1.5, "in \\[0, 1\\]"),
        ("limit", 0, "> 0"),
        ("clients", 0, ">= 1"),
        ("alpha", 0, "in \\(0, 1\\]"),
    ],
)
def test_bad_settings_name_the_field(field, value, allowed):
    kwargs = {"lam": 0.5, "limit": 10, "window_s": 1.0, "clients": 3} | {field: value}
    with pytest.raises(ValueError, match=f"{field}={value!r} is out of range: must be {allowed}"):
        SWAGuard(**kwargs)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("contenders", [1.0, 2.0, 7.5, 250.0])
@pytest.mark.parametrize("lockout", [math.inf, 30.0])
def test_symmetric_response_is_a_fixed_point_of_the_best_response(lam, contenders, lockout):
    guard = SWAGuard(
        lam=lam, limit=100, window_s=1, clients=1000, lockout_threshold=lockout, lockout_cost=100
    )
    a = guard.symmetric_response(contenders, 100.0)
    assert 0 <= a <= 100

    def gap(x):  # BR((C − 1)·x) − x: positive below a fixed point, negative above
        return guard.best_response((contenders - 1) * x, 100.0) - x

    # a fixed point: the gap changes sign across it (or it is an end of [0, limit]) ...
    step = 1e-6
    assert (a <= step or gap(a - step) >= 0) and (a >= 100 - step or gap(a + step) <= 0)
    # ... and a brute force over a fine grid finds a sign change there
    grid = np.linspace(0, 100, 20_001)
    g = np.array([gap(x) for x in grid])
    changes = grid[1:][(g[:-1] > 0) & (g[1:] <= 0)]
    if a < 100 - step:
        assert np.min(np.abs(changes - a)) <= 100 / 20_000 + 1e-9


def test_symmetric_response_closed_forms():
    b, c, n = 100.0, 0.5, 1000
    for contenders in (2.0, 40.0, 400.0):
        polite = SWAGuard(lam=1.0, limit=b, window_s=1, clients=n, waste_cost=c)
        herd = SWAGuard(lam=0.0, limit=b, window_s=1, clients=n, waste_cost=c)
        # above the switch the contenders fill the bucket and no more
        assert polite.symmetric_response(contenders, b) * contenders == pytest.approx(b)
        # at λ = 0 they send X = (1 + c)·b·(C − 1)/(c·C): three times the limit as C grows
        x = herd.symmetric_response(contenders, b) * contenders
        assert x == pytest.approx((1 + c) * b * (contenders - 1) / (c * contenders), rel=1e-6)


def test_a_pooled_guard_gives_the_share_to_the_clients_with_calls():
    from dataclasses import replace

    from swalab.guard import PoolView

    guard = SWAGuard(lam=1.0, limit=100, window_s=1.0, clients=1000)
    opened = guard.decide(guard.initial(0), Ready(0.0))[1]
    waiting = replace(opened, credit=0.3, deferred=True)  # it held a call back
    idle = replace(opened, credit=1.05, deferred=False)  # it held nothing back
    # 1000 guards pool; last window 40 of them sent or held a call back, 100 sent in all:
    # each contender's share is 100/40 = 2.5 calls, where alone it believes in 0.1
    pool = PoolView(window=0, sent=100, rejected=0, contenders=40, members=1000)
    after = guard.decide(waiting, Ready(1.0, pool=pool))[1]
    assert after.credit == pytest.approx(0.3 + 2.5 - 1.0)  # one call sent at once
    assert after.others == pytest.approx(39 * 2.5)
    alone = guard.decide(waiting, Ready(1.0))[1]
    assert alone.credit == pytest.approx(0.3 + guard.best_response(alone.others, 100.0))
    # a client that held nothing back keeps no stock beyond one window's share
    assert guard.decide(idle, Ready(1.0, pool=replace(pool, contenders=400)))[1].credit == (
        pytest.approx(0.25)
    )
    # half the key's clients pool: their 40 contenders stand for 80
    half = replace(pool, members=500, sent=50)
    assert guard.decide(waiting, Ready(1.0, pool=half))[1].others == pytest.approx(79 * 100 / 80)
    # they sent twice their part of the limit: the share is halved
    over = guard.decide(waiting, Ready(1.0, pool=replace(pool, sent=200)))[1]
    assert over.credit == pytest.approx(0.3 + 1.25 - 1.0)


def test_a_pooled_guard_holds_calls_the_pool_says_will_fail():
    from dataclasses import replace

    from swalab.guard import PoolView

    guard = SWAGuard(lam=0.0, limit=100, window_s=1.0, clients=10)
    state = replace(guard.decide(guard.initial(0), Ready(0.0))[1], credit=5.0)
    full = PoolView(window=-1, sent=0, rejected=0, contenders=0, members=10, room=0.0)
    assert isinstance(guard.decide(state, Ready(0.5, pool=full))[0], Wait)
    assert guard.decide(state, Ready(0.5, pool=replace(full, room=3.0)))[0] == Send()
    assert guard.decide(state, Ready(0.5, pool=replace(full, room=None)))[0] == Send()

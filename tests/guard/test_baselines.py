"""The baselines against their published formulas, and tenacity's own full-jitter wait."""

import itertools
from types import SimpleNamespace

import pytest

from swalab.guard import Adaptive, Answered, Backoff, Limits, Naive, Ready, Send, TokenBucket, Wait
from swalab.guard.policy import Drop, uniform, within


def test_full_jitter_is_tenacitys_wait_random_exponential(monkeypatch):
    import tenacity.wait as tw

    policy = Backoff("full", base=0.1, cap=2.0)
    wait = tw.wait_random_exponential(multiplier=0.1, max=2.0)
    for u in (0.0, 0.3, 0.99):
        monkeypatch.setattr(tw.random, "uniform", lambda a, b, u=u: a + (b - a) * u)
        for retry in range(1, 9):
            state = SimpleNamespace(attempt_number=retry)
            assert policy.sleep(retry, 0.0, u) == pytest.approx(wait(state))


def test_equal_and_decorrelated_jitter_follow_the_article():
    eq = Backoff("equal", base=0.1, cap=1.0)
    # equal: v = min(cap, base·2^k); sleep = v/2 + uniform(0, v/2)
    assert eq.sleep(3, 0, 0.5) == pytest.approx(0.4 / 2 + 0.5 * 0.4 / 2)
    assert eq.sleep(10, 0, 1.0) == pytest.approx(1.0)
    de = Backoff("decorrelated", base=0.1, cap=1.0)
    # decorrelated: sleep = min(cap, uniform(base, previous·3))
    assert de.sleep(2, 0.2, 0.5) == pytest.approx(0.1 + 0.5 * (0.6 - 0.1))
    assert de.sleep(2, 5.0, 0.9) == 1.0


def test_backoff_waits_then_sends_and_honours_retry_after():
    policy = Backoff("full", base=0.1, cap=1.0)
    state = policy.initial(3)
    _, state = policy.decide(state, Answered(10.0, 429, Limits(retry_after=2.5), attempt=0))
    action, state = policy.decide(state, Ready(11.0, 1, 10.0))
    assert isinstance(action, Wait) and action.seconds == pytest.approx(1.5)
    assert policy.decide(state, Ready(12.6, 1, 10.0))[0] == Send()
    with pytest.raises(ValueError, match="jitter='half' is not known"):
        Backoff("half")  # type: ignore[arg-type]


def test_naive_always_sends():
    policy = Naive()
    state = policy.initial(0)
    _, state = policy.decide(state, Answered(0.0, 429))
    assert policy.decide(state, Ready(0.0, 5))[0] == Send()


def test_token_bucket_spaces_calls_at_its_rate():
    policy = TokenBucket(rate=4.0, burst=2.0)
    state = policy.initial(0)
    sent, now = [], 0.0
    while now < 2.0:
        action, state = policy.decide(state, Ready(now))
        if isinstance(action, Send):
            sent.append(now)
        else:
            now += action.seconds
    # two at once (the burst), then one every 1/4 s
    assert sent[:2] == [0.0, 0.0]
    gaps = [b - a for a, b in itertools.pairwise(sent[2:])]
    assert len(gaps) >= 5 and gaps == pytest.approx([0.25] * len(gaps))


def test_adaptive_rejects_with_the_books_probability():
    policy = Adaptive(k=2.0)
    assert policy.reject_probability(10, 2) == pytest.approx((10 - 4) / 11)
    assert policy.reject_probability(10, 6) == 0.0
    state = policy.initial(1)
    for t in range(10):  # ten attempts, two accepted
        _, state = policy.decide(state, Answered(float(t), 200 if t < 2 else 429))
    state = type(state)(state.seed, tuple(float(t) for t in range(10)), state.accepts)
    local = 0
    for i in range(2000):
        s = type(state)(i, state.requests, state.accepts)
        action, _ = policy.decide(s, Ready(20.0))
        local += isinstance(action, Wait)
    # 10 requests (+ this one counted first: the book counts it) and 2 accepts
    assert local / 2000 == pytest.approx(policy.reject_probability(10, 2), abs=0.04)


def test_history_forgets_old_attempts():
    policy = Adaptive(history_s=5.0)
    old = tuple(float(t) for t in range(20))
    state = type(policy.initial(0))(0, old, old[:1])  # 20 requests, 1 accept: throttled
    action, state = policy.decide(state, Ready(100.0))
    assert action == Send() and state.requests == (100.0,) and state.accepts == ()


def test_deadline_drops_a_wait_that_would_pass_it():
    assert within(Wait(3.0), Ready(10.0, 1, 8.0), 4.0) == Drop("deadline of 4 s would pass")
    assert within(Wait(1.0), Ready(10.0, 1, 8.0), 4.0) == Wait(1.0)
    assert isinstance(within(Send(), Ready(13.0, 1, 8.0), 4.0), Drop)


def test_uniform_is_pure_and_uniform():
    draws = [uniform(7, k) for k in range(20000)]
    assert draws[:3] == [uniform(7, 0), uniform(7, 1), uniform(7, 2)]
    assert sum(draws) / len(draws) == pytest.approx(0.5, abs=0.01)
    assert min(draws) >= 0 and max(draws) < 1

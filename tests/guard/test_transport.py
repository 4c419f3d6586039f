"""The httpx transports and the tenacity adapter, against scripted answers and a real server."""

import asyncio
import time

import pytest

httpx = pytest.importorskip("httpx", reason="needs the guard extra")

from swalab.guard import AsyncGuardTransport, Backoff, Dropped, GuardTransport, SWAGuard  # noqa: E402
from swalab.guard.retrying import TenacityGuard  # noqa: E402


def scripted(statuses, headers=None):
    """A mock server answering ``statuses`` in turn, recording when each request came."""
    seen = []

    def handler(request):
        seen.append(time.monotonic())
        status = statuses[min(len(seen) - 1, len(statuses) - 1)]
        return httpx.Response(status, headers=(headers or {}) if status == 429 else {})

    return handler, seen


def test_sync_transport_retries_429s_as_the_policy_says():
    handler, seen = scripted([429, 429, 200], {"Retry-After": "0.15"})
    transport = GuardTransport(
        Backoff("full", base=0.01, cap=0.02), inner=httpx.MockTransport(handler)
    )
    with httpx.Client(transport=transport) as client:
        assert client.get("http://limit.test/x").status_code == 200
    assert len(seen) == 3 and seen[1] - seen[0] >= 0.15 and seen[2] - seen[1] >= 0.15
    c = transport.counts
    assert (c.calls, c.attempts, c.ok, c.rejected, c.dropped) == (1, 3, 1, 2, 0)


def test_a_call_past_its_deadline_is_dropped_without_a_request():
    handler, seen = scripted([429], {"Retry-After": "5"})
    guard = GuardTransport(Backoff("full"), deadline_s=0.5, inner=httpx.MockTransport(handler))
    with (
        httpx.Client(transport=guard) as client,
        pytest.raises(Dropped, match=r"deadline of 0\.5 s"),
    ):
        client.get("http://limit.test/x")
    assert len(seen) == 1 and guard.counts.dropped == 1


def test_async_transport_holds_calls_to_the_guards_share():
    handler, _ = scripted([200])
    guard = SWAGuard(lam=1.0, limit=4, window_s=0.3, clients=2, probe=0.0)
    transport = AsyncGuardTransport(guard, inner=httpx.MockTransport(handler))

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            return [(await client.get("http://limit.test/x")).status_code for _ in range(6)]

    start = time.monotonic()
    assert asyncio.run(go()) == [200] * 6
    # its share is 2 calls a 0.3 s window: six calls span at least two more windows
    assert time.monotonic() - start >= 0.6
    assert transport.counts.attempts == 6 and transport.counts.waited_s > 0


def test_tenacity_stop_and_wait_follow_the_policy():
    from tenacity import retry, retry_if_result

    handler, seen = scripted([429, 429, 200], {"Retry-After": "0.1"})
    client = httpx.Client(transport=httpx.MockTransport(handler))
    guard = TenacityGuard(Backoff("full", base=0.01, cap=0.02), deadline_s=5)

    @retry(stop=guard.stop, wait=guard.wait, retry=retry_if_result(lambda r: r.status_code == 429))
    def call():
        return client.get("http://limit.test/x")

    assert call().status_code == 200
    assert len(seen) == 3 and seen[2] - seen[1] >= 0.1
    dropping = TenacityGuard(Backoff("full"), deadline_s=0.05)
    handler2, seen2 = scripted([429], {"Retry-After": "1"})
    client2 = httpx.Client(transport=httpx.MockTransport(handler2))

    @retry(
        stop=dropping.stop,
        wait=dropping.wait,
        retry=retry_if_result(lambda r: r.status_code == 429),
    )
    def call2():
        return client2.get("http://limit.test/x")

    from tenacity import RetryError

    with pytest.raises(RetryError):
        call2()
    assert len(seen2) == 1

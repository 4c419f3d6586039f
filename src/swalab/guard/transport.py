"""httpx transports that put a client policy in front of every request.

Wear one by building the client with it; nothing is patched::

    import httpx
    from swalab.guard import GuardTransport, SWAGuard

    guard = SWAGuard(lam=1.0, limit=100, window_s=1.0, clients=50)
    client = httpx.Client(transport=GuardTransport(guard, seed=worker_id))
    client.post("https://api.example.com/v1/run", json=job)  # waits, sends, retries 429s

Before each attempt the policy says send, wait (the transport sleeps — ``asyncio.sleep`` in
:class:`AsyncGuardTransport`) or drop (:class:`Dropped` is raised, no request made); each
answer, with its ``Retry-After`` / ``RateLimit-*`` headers, goes back to the policy, and a
429 is retried the same way until it succeeds or its deadline passes. Any policy of
:mod:`swalab.guard` fits, baselines included.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx

from swalab.guard.headers import parse_limits
from swalab.guard.policy import Answered, Drop, Policy, Ready, Send, Wait, within


class Dropped(httpx.TransportError):
    """The policy gave the call up before its deadline (no request was made for it)."""


@dataclass
class Counts:
    """What one transport did.

    Attributes:
        calls: Requests the client asked for.
        attempts: Requests that reached the server (retries included).
        ok: Calls answered with something other than 429.
        rejected: Attempts answered 429.
        dropped: Calls given up.
        waited_s: Seconds spent waiting on the policy.
    """

    calls: int = 0
    attempts: int = 0
    ok: int = 0
    rejected: int = 0
    dropped: int = 0
    waited_s: float = 0.0


class _Guarded:
    """The policy loop shared by the sync and async transports."""

    def __init__(self, policy: Policy, seed: int, deadline_s: float) -> None:
        if not deadline_s > 0:
            raise ValueError(f"deadline_s={deadline_s!r} is out of range: must be > 0 seconds")
        self.policy = policy
        self.state = policy.initial(seed)
        self.deadline_s = deadline_s
        self.counts = Counts()

    def ready(self, now: float, attempt: int, since: float) -> Send | Wait | Drop:
        obs = Ready(now, attempt, since)
        action, self.state = self.policy.decide(self.state, obs)
        if action is None:
            raise TypeError(f"policy {self.policy.name!r} gave no action for {obs!r}")
        return within(action, obs, self.deadline_s)

    def answered(self, now: float, response: httpx.Response, attempt: int) -> None:
        obs = Answered(now, response.status_code, parse_limits(response.headers), attempt)
        _, self.state = self.policy.decide(self.state, obs)
        self.counts.attempts += 1
        if response.status_code == 429:
            self.counts.rejected += 1

    def drop(self, action: Drop) -> Dropped:
        self.counts.dropped += 1
        return Dropped(f"{self.policy.name}: {action.reason}")

    def done(self) -> None:
        self.counts.ok += 1


class GuardTransport(httpx.BaseTransport):
    """A sync httpx transport: ``policy`` decides before each attempt (see the module).

    Args:
        policy: The client policy (:class:`~swalab.guard.swa.SWAGuard` or a baseline).
        seed: This client's seed (its draws).
        deadline_s: A call not answered with a non-429 by then is dropped.
        inner: The transport that sends (default ``httpx.HTTPTransport()``).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        seed: int = 0,
        deadline_s: float = math.inf,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.guard = _Guarded(policy, seed, deadline_s)
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    @property
    def counts(self) -> Counts:
        """What this transport did so far."""
        return self.guard.counts

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Wait, send, retry 429s, as the policy says."""
        g = self.guard
        g.counts.calls += 1
        since = time.monotonic()
        attempt = 0
        while True:
            action = g.ready(time.monotonic(), attempt, since)
            if isinstance(action, Drop):
                raise g.drop(action)
            if isinstance(action, Wait):
                time.sleep(max(0.0, action.seconds))
                g.counts.waited_s += max(0.0, action.seconds)
                continue
            response = self.inner.handle_request(request)
            g.answered(time.monotonic(), response, attempt)
            if response.status_code != 429:
                g.done()
                return response
            response.read()
            response.close()
            attempt += 1

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()


class AsyncGuardTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`GuardTransport` (waits with ``asyncio.sleep``)."""

    def __init__(
        self,
        policy: Policy,
        *,
        seed: int = 0,
        deadline_s: float = math.inf,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """See :class:`GuardTransport`."""
        self.guard = _Guarded(policy, seed, deadline_s)
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    @property
    def counts(self) -> Counts:
        """What this transport did so far."""
        return self.guard.counts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Wait, send, retry 429s, as the policy says."""
        g = self.guard
        g.counts.calls += 1
        since = time.monotonic()
        attempt = 0
        while True:
            action = g.ready(time.monotonic(), attempt, since)
            if isinstance(action, Drop):
                raise g.drop(action)
            if isinstance(action, Wait):
                await asyncio.sleep(max(0.0, action.seconds))
                g.counts.waited_s += max(0.0, action.seconds)
                continue
            response = await self.inner.handle_async_request(request)
            g.answered(time.monotonic(), response, attempt)
            if response.status_code != 429:
                g.done()
                return response
            await response.aread()
            await response.aclose()
            attempt += 1

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()


def pooled(**options: Any) -> dict[str, Any]:
    """Keyword arguments for an inner transport that many clients build cheaply.

    One TLS context for all (each ``httpx`` transport otherwise loads the CA bundle: ~20 ms,
    20 s for a thousand clients) and one connection each, as independent callers have.
    """
    import ssl

    global _SSL
    if _SSL is None:
        _SSL = ssl.create_default_context()
    return {"verify": _SSL, "limits": httpx.Limits(max_connections=1)} | options


_SSL: Any = None

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
from typing import Any

import httpx

from swalab.guard.client import GuardedClient
from swalab.guard.headers import parse_limits
from swalab.guard.policy import Counts, Drop, Policy, Wait
from swalab.guard.shared import SharedBelief


class Dropped(httpx.TransportError):
    """The policy gave the call up before its deadline (no request was made for it)."""


class GuardTransport(httpx.BaseTransport):
    """A sync httpx transport: ``policy`` decides before each attempt (see the module).

    Args:
        policy: The client policy (:class:`~swalab.guard.swa.SWAGuard` or a baseline).
        seed: This client's seed (its draws).
        deadline_s: A call not answered with a non-429 by then is dropped.
        inner: The transport that sends (default ``httpx.HTTPTransport()``).
        shared: A belief pooled with the other clients of this process that pass the same
            one (:class:`~swalab.guard.shared.SharedBelief`); the policy sees it in
            :class:`~swalab.guard.policy.Ready`.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        seed: int = 0,
        deadline_s: float = math.inf,
        inner: httpx.BaseTransport | None = None,
        shared: SharedBelief | None = None,
    ) -> None:
        self.guard = GuardedClient(policy, seed, deadline_s, shared)
        self.inner = inner if inner is not None else httpx.HTTPTransport()

    @property
    def counts(self) -> Counts:
        """What this transport did so far."""
        return self.guard.counts

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Wait, send, retry 429s, as the policy says."""
        g = self.guard
        g.begin(time.monotonic())
        while True:
            action = g.ready(time.monotonic())
            if isinstance(action, Drop):
                raise Dropped(f"{g.policy.name}: {action.reason}")
            if isinstance(action, Wait):
                time.sleep(max(0.0, action.seconds))
                g.counts.waited_s += max(0.0, action.seconds)
                continue
            response = self.inner.handle_request(request)
            if g.answered(time.monotonic(), response.status_code, parse_limits(response.headers)):
                return response
            response.read()
            response.close()

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
        shared: SharedBelief | None = None,
    ) -> None:
        """See :class:`GuardTransport`."""
        self.guard = GuardedClient(policy, seed, deadline_s, shared)
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    @property
    def counts(self) -> Counts:
        """What this transport did so far."""
        return self.guard.counts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Wait, send, retry 429s, as the policy says."""
        g = self.guard
        g.begin(time.monotonic())
        while True:
            action = g.ready(time.monotonic())
            if isinstance(action, Drop):
                raise Dropped(f"{g.policy.name}: {action.reason}")
            if isinstance(action, Wait):
                await asyncio.sleep(max(0.0, action.seconds))
                g.counts.waited_s += max(0.0, action.seconds)
                continue
            response = await self.inner.handle_async_request(request)
            if g.answered(time.monotonic(), response.status_code, parse_limits(response.headers)):
                return response
            await response.aread()
            await response.aclose()

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

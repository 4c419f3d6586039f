"""The live benchmark's clients and limiter in simulated time: no sockets, no clock.

A live run takes its arrivals' wall time (16 s at the benchmark's settings) and two cores;
tuning a policy over many settings needs something faster that stays faithful. Here the
same pure policies, the same seeded arrivals (:func:`~swalab.guard.harness.arrivals`), the
server's own limiter and headers (:class:`~swalab.envs.rate_limit_live.Limiter`,
:meth:`~swalab.guard.server.LimitApp.headers`) and the same client loop — one call at a
time in arrival order, 429s retried as the policy says, a call dropped ``deadline_s`` after
it arrived — run as discrete events: a request reaches the server ``rtt_s/2`` after it is
sent, waits its turn at a server that answers one request at a time, and comes back
``rtt_s/2`` later. What it leaves out is the jitter a live run adds: the event loops'
scheduling under load, sleeps that overrun. ``tests/guard`` checks it against live runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from swalab.envs.rate_limit_live import Limiter
from swalab.guard.client import GuardedClient
from swalab.guard.harness import Load, arrivals, roster, summarize
from swalab.guard.headers import Limits, parse_limits
from swalab.guard.policy import Drop, Policy, Send
from swalab.guard.server import LimitApp, ServerConfig
from swalab.guard.shared import SharedBelief

#: The shortest wait: a live sleep, however short, lets time pass (here a policy asking to
#: wait 1e-17 s would otherwise be asked again at the same instant, forever).
MIN_WAIT_S = 1e-6


@dataclass
class _Client:
    """A guarded client, its calls still to come (latest first), the answer on its way."""

    guard: GuardedClient
    queue: list[float]
    latencies: list[float] = field(default_factory=list)
    answer: Limits = field(default_factory=Limits)


def simulate_guard(
    policies: Policy | Sequence[Policy],
    load: Load,
    server: ServerConfig,
    pooling: Sequence[bool] | bool = False,
    *,
    rtt_s: float = 0.002,
    service_s: float = 0.0007,
    phase: float = 0.5,
) -> dict[str, Any]:
    """Play ``load`` as :func:`~swalab.guard.harness.run_guard` does, in simulated time.

    ``service_s``: the server answers one request at a time, each taking this long (0.7 ms:
    the 1,400 calls a second the live server and its clients reach on a 2-core machine), so
    clients that retry at once are slowed as they are live. ``phase``: the share of a window
    by which the server's windows began before the clients' first arrivals (live, the
    server starts first, by about half a window at the benchmark's settings).

    Returns:
        :func:`~swalab.guard.harness.summarize`'s metrics and the limiter's own counts
        (``server_ok``, ``server_limited``, ``server_locked``).

    Raises:
        ValueError: A policy or pooling list of the wrong length, or a negative time.
    """
    n = load.clients
    chosen, pools = roster(policies, pooling, n)
    for name, value, ok in (
        ("rtt_s", rtt_s, rtt_s >= 0),
        ("service_s", service_s, service_s >= 0),
        ("phase", phase, 0 <= phase < 1),
    ):
        if not ok:
            raise ValueError(f"{name}={value!r} is out of range: must be >= 0 (phase < 1)")
    shared = SharedBelief(server.window_s) if any(pools) else None
    t0 = -phase * server.window_s
    app = LimitApp(server)
    app.limiter = Limiter(server.dynamics(), server.window_s, "interval", t0)
    clients = [
        _Client(
            GuardedClient(
                chosen[i],
                load.seed * 1_000_003 + i,
                load.deadline_s,
                shared if pools[i] else None,
            ),
            arrivals(load, server, i)[::-1],
        )
        for i in range(n)
    ]
    events: list[tuple[float, int, int, str, int]] = []  # (time, order, client, what, status)
    order = 0

    def at(t: float, i: int, what: str, status: int = 0) -> None:
        nonlocal order
        heapq.heappush(events, (t, order, i, what, status))
        order += 1

    def next_call(t: float, i: int) -> None:
        c = clients[i]
        while c.queue:
            arrived = c.queue.pop()
            c.guard.begin(arrived)
            if t - arrived < load.deadline_s:
                at(max(t, arrived), i, "ready")
                return
            c.guard.counts.dropped += 1  # it waited in this client's queue too long

    finished, server_free, now = 0, 0.0, 0.0
    for i in range(n):
        next_call(0.0, i)
    while events:
        now, _, i, what, status = heapq.heappop(events)
        c = clients[i]
        if what == "ready":
            action = c.guard.ready(now)
            if isinstance(action, Drop):
                next_call(now, i)
            elif isinstance(action, Send):
                at(now + rtt_s / 2, i, "server")
            else:
                wait = max(MIN_WAIT_S, action.seconds)  # a sleep passes time, as live
                c.guard.counts.waited_s += wait
                at(now + wait, i, "ready")
        elif what == "server":
            if server_free > now:  # it waits its turn
                at(server_free, i, "server")
                continue
            server_free = now + service_s
            status, _ = app.limiter.call(i, now)
            c.answer = parse_limits({k.decode(): v.decode() for k, v in app.headers(status, now)})
            at(server_free + rtt_s / 2, i, "answer", status)
        elif c.guard.answered(now, status, c.answer):
            c.latencies.append(now - c.guard.since)
            finished += now <= load.duration_s
            next_call(now, i)
        else:
            at(now, i, "ready")
    lim = app.limiter
    lim.sync(now)
    served = {k: sum(w[k] for w in lim.counts.values()) for k in ("ok", "limited", "locked")}
    return summarize(
        [c.guard.counts for c in clients],
        [c.latencies for c in clients],
        finished,
        load,
        server,
        sum(bool(v) for v in lim.locked.values()),
    ) | {f"server_{k}": v for k, v in served.items()}

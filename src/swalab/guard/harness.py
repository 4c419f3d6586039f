"""N clients with real HTTP connections against the limit server, and what they got.

Each client is an asyncio task with its own ``httpx.AsyncClient`` (one connection, as an
independent caller has) worn with an :class:`~swalab.guard.transport.AsyncGuardTransport`
around its policy: the harness measures exactly what a builder installs. Calls arrive at
each client as a Poisson stream (``demand`` × the limit, shared evenly), are made one at a
time in arrival order, and are dropped once ``deadline_s`` has passed since they arrived.
New calls arrive for ``duration_s``; the run ends when every call has succeeded or been
dropped, so it stops by itself within ``duration_s + deadline_s`` (and a hard timeout
beyond that). The server's own counters are read at the end beside the clients'.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swalab.guard.policy import Counts, Policy, uniform
from swalab.guard.server import ServerConfig, serve
from swalab.guard.shared import SharedBelief


@dataclass(frozen=True)
class Load:
    """The work the clients bring.

    Attributes:
        clients: N.
        demand: Offered load as a multiple of the limit (calls arriving per window, all
            clients together, over ``limit``).
        duration_s: Seconds during which new calls arrive.
        deadline_s: A call not done this long after it arrived is dropped.
        seed: Arrival times and the policies' draws come from it.
    """

    clients: int
    demand: float = 2.0
    duration_s: float = 8.0
    deadline_s: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value, ok, allowed in (
            ("clients", self.clients, self.clients >= 1, "an integer >= 1"),
            ("demand", self.demand, self.demand > 0, "> 0"),
            ("duration_s", self.duration_s, self.duration_s > 0, "> 0 seconds"),
            ("deadline_s", self.deadline_s, self.deadline_s > 0, "> 0 seconds"),
        ):
            if not ok or value != value:
                raise ValueError(f"{name}={value!r} is out of range: must be {allowed}")


def arrivals(load: Load, server: ServerConfig, client: int) -> list[float]:
    """One client's call arrival times in ``[0, duration_s)`` (Poisson, seeded)."""
    rate = load.demand * server.limit / server.window_s / load.clients
    times: list[float] = []
    t, k = 0.0, 0
    while True:
        t += -math.log(1.0 - uniform(load.seed, 1 << 20, client, k)) / rate
        k += 1
        if t >= load.duration_s:
            return times
        times.append(t)


def jain(x: Sequence[float] | np.ndarray) -> float:
    """Jain's fairness index ``(Σx)²/(N·Σx²)``: 1 when all are equal, 1/N when one takes all."""
    arr = np.asarray(x, dtype=np.float64)
    total = float((arr**2).sum())
    return 1.0 if total == 0 else float(arr.sum() ** 2 / (arr.size * total))


async def _client(
    index: int,
    policy: Policy,
    times: list[float],
    url: str,
    load: Load,
    start: float,
    done_in_time: list[float],
    errors: list[str],
    shared: SharedBelief | None = None,
) -> tuple[Any, list[float]]:
    import httpx

    from swalab.guard.transport import AsyncGuardTransport, Dropped, pooled

    transport = AsyncGuardTransport(
        policy,
        seed=load.seed * 1_000_003 + index,
        deadline_s=load.deadline_s,
        inner=httpx.AsyncHTTPTransport(**pooled()),
        shared=shared,
    )
    headers = {"X-Client": str(index)}
    latencies: list[float] = []
    async with httpx.AsyncClient(transport=transport, timeout=30.0) as client:
        for t in times:
            wait = start + t - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() - (start + t) >= load.deadline_s:
                transport.counts.calls += 1  # it waited in this client's queue too long
                transport.counts.dropped += 1
                continue
            transport.guard.deadline_s = load.deadline_s - (time.monotonic() - start - t)
            try:
                await client.post(url + "/call", headers=headers)
            except Dropped:
                continue
            except httpx.HTTPError as exc:  # counted, never hidden: the run reports them
                errors.append(f"client {index}: {type(exc).__name__}: {exc}")
                continue
            now = time.monotonic()
            latencies.append(now - start - t)
            if now - start <= load.duration_s:
                done_in_time.append(now - start)
    return transport.counts, latencies


def roster(
    policies: Policy | Sequence[Policy], pooling: Sequence[bool] | bool, clients: int
) -> tuple[list[Policy], list[bool]]:
    """Each client's policy and whether it pools its belief (one value: all alike).

    Raises:
        ValueError: A list without one entry per client.
    """
    chosen = list(policies) if isinstance(policies, Sequence) else [policies] * clients
    pools = [pooling] * clients if isinstance(pooling, bool) else list(pooling)
    for name, given in (("policies", chosen), ("pooling", pools)):
        if len(given) != clients:
            raise ValueError(f"{name} has {len(given)} entries: must have one per client")
    return chosen, pools


def run_guard(
    policies: Policy | Sequence[Policy],
    load: Load,
    server: ServerConfig,
    pooling: Sequence[bool] | bool = False,
) -> dict[str, Any]:
    """Play ``load`` with one policy (or one per client) on a fresh server.

    ``pooling`` (for all clients, or one flag per client): which clients share one belief
    (:class:`~swalab.guard.shared.SharedBelief`, kept by the key's window), as clients of
    one process may.

    Returns:
        The clients' totals and metrics beside the server's own counters: ``goodput_share``
        (calls that succeeded while calls arrived, over what the bucket could admit then:
        its first fill and ``duration_s`` of refills),
        ``reject_share`` (429s over attempts), ``lockout_windows``, latency percentiles of
        successful calls (arrival to answer), Jain's ``fairness`` over clients' successes,
        ``wasted_per_success``, ``drop_share``, and ``per_client`` arrays for who-pays
        analyses.
    """
    chosen, pools = roster(policies, pooling, load.clients)
    shared = SharedBelief(server.window_s) if any(pools) else None
    schedule = [arrivals(load, server, i) for i in range(load.clients)]

    errors: list[str] = []

    async def play(url: str) -> tuple[list[Any], list[float], float]:
        start = time.monotonic() + 0.2
        finished: list[float] = []
        tasks = [
            _client(
                i,
                chosen[i],
                schedule[i],
                url,
                load,
                start,
                finished,
                errors,
                shared if pools[i] else None,
            )
            for i in range(load.clients)
        ]
        played = await asyncio.wait_for(
            asyncio.gather(*tasks), timeout=load.duration_s + load.deadline_s + 60.0
        )
        return played, finished, time.monotonic() - start

    with serve(server) as live:
        before = live.stats()["totals"]
        played, finished, wall = asyncio.run(play(live.url))
        after = live.stats()
        server_rss = live.peak_rss_mib()
    served = {k: after["totals"][k] - before[k] for k in before}
    counts = [c for c, _ in played]
    return summarize(
        counts,
        [lat for _, lat in played],
        len(finished),
        load,
        server,
        int(after["locked_windows"]),
    ) | {
        "wall_s": wall,
        "server_peak_rss_mib": server_rss,
        "errors": len(errors),
        "first_errors": errors[:5],
        "server_ok": served["ok"],
        "server_limited": served["limited"],
        "server_locked": served["locked"],
        "server_windows": after["windows"],
    }


def summarize(
    counts: Sequence[Counts],
    latencies: Sequence[Sequence[float]],
    finished: int,
    load: Load,
    server: ServerConfig,
    locked_windows: int,
) -> dict[str, Any]:
    """The clients' metrics from what each did (see :func:`run_guard`).

    ``finished``: calls that succeeded while calls arrived (goodput counts those).
    """
    ok = np.array([c.ok for c in counts], dtype=np.float64)
    attempts = sum(c.attempts for c in counts)
    rejected = sum(c.rejected for c in counts)
    calls = sum(c.calls for c in counts)
    done = np.asarray([x for lat in latencies for x in lat], dtype=np.float64)
    # What the bucket can admit while calls arrive: it starts full, then refills.
    capacity = server.limit * (1 + load.duration_s / server.window_s)
    return {
        "clients": load.clients,
        "calls": calls,
        "succeeded": int(ok.sum()),
        "attempts": attempts,
        "rejected": rejected,
        "dropped": sum(c.dropped for c in counts),
        "goodput_share": finished / capacity,
        "reject_share": rejected / attempts if attempts else 0.0,
        "lockout_windows": locked_windows,
        "p50_s": float(np.percentile(done, 50)) if done.size else math.nan,
        "p99_s": float(np.percentile(done, 99)) if done.size else math.nan,
        "fairness": jain(ok),
        "wasted_per_success": rejected / ok.sum() if ok.sum() else math.inf,
        "drop_share": sum(c.dropped for c in counts) / calls if calls else 0.0,
        "per_client": {
            "calls": [c.calls for c in counts],
            "succeeded": ok.astype(int).tolist(),
            "rejected": [c.rejected for c in counts],
            "dropped": [c.dropped for c in counts],
        },
    }

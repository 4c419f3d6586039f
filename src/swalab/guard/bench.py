"""``swalab bench guard``: every client policy side by side on the same server and load.

For each server behaviour and each N, every policy plays the same seeded load (Poisson
arrivals at ``demand`` × the limit) against a fresh limit server; a row per (behaviour, N,
policy) holds the clients' metrics beside the server's own counters and whether they agree.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Sequence
from typing import Any

from swalab._measure import machine_info
from swalab.guard.baselines import Adaptive, Backoff, Naive, TokenBucket
from swalab.guard.harness import Load, run_guard
from swalab.guard.policy import Policy
from swalab.guard.server import Behaviour, ServerConfig
from swalab.guard.swa import SWAGuard

#: Per-client and per-window detail a benchmark row leaves out.
DETAIL = ("per_client", "first_errors", "server_windows")


def policies(clients: int, server: ServerConfig, lam: float) -> list[Policy]:
    """The line-up at N = ``clients``: the baselines, the SWA guard at ``lam`` and at 0.

    The token bucket and the guard are told what a builder would configure: the key's
    documented limit and how many workers share it.
    """
    share = server.limit / server.window_s / clients
    locks = server.behaviour == "lockout"

    def swa(lam: float, name: str) -> SWAGuard:
        return SWAGuard(
            lam=lam,
            limit=server.limit,
            window_s=server.window_s,
            clients=clients,
            lockout_threshold=server.lockout_threshold if locks else math.inf,
            lockout_cost=server.limit if locks else 0.0,
            name=name,
        )

    return [
        Naive(),
        Backoff("full"),
        Backoff("equal"),
        Backoff("decorrelated"),
        TokenBucket(rate=share, burst=1.0),
        Adaptive(),
        swa(0.0, "swa_lam0"),
        swa(lam, f"swa_lam{lam:g}"),
    ]


def _group(result: dict[str, Any], members: list[int]) -> dict[str, float]:
    """Per-client means of one group's calls, successes, rejections and drops."""
    per = result["per_client"]
    size = max(len(members), 1)
    calls = sum(per["calls"][i] for i in members)
    return {
        "succeeded_per_client": sum(per["succeeded"][i] for i in members) / size,
        "rejected_per_client": sum(per["rejected"][i] for i in members) / size,
        "drop_share": sum(per["dropped"][i] for i in members) / calls if calls else 0.0,
    }


def mixed_rows(
    clients: int,
    shares: Sequence[float],
    server: ServerConfig,
    lam: float,
    load: Load,
) -> list[dict[str, Any]]:
    """Guarded clients among naive ones: what each group gets and who pays the overload.

    The first ``round(share·N)`` clients wear the SWA guard at ``lam``, the rest retry at
    once; per share, the whole system's metrics and each group's per-client successes,
    rejections and drop share.
    """
    guard = policies(clients, server, lam)[-1]
    rows = []
    for share in shares:
        k = round(share * clients)
        result = run_guard([guard] * k + [Naive()] * (clients - k), load, server)
        guarded = _group(result, list(range(k)))
        naive = _group(result, list(range(k, clients)))
        rows.append(
            {"guarded_share": share, "guarded": k, "clients": clients}
            | {key: result[key] for key in ("goodput_share", "reject_share", "lockout_windows")}
            | {f"guarded_{key}": v for key, v in guarded.items()}
            | {f"naive_{key}": v for key, v in naive.items()}
        )
    return rows


def guard_benchmark(
    *,
    clients: Sequence[int] = (10, 100, 1000),
    mixed: Sequence[float] = (),
    behaviours: Sequence[Behaviour] = ("retry_after",),
    lam: float = 1.0,
    limit: int = 100,
    window_s: float = 1.0,
    demand: float = 2.0,
    duration_s: float = 12.0,
    deadline_s: float = 4.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Run every policy at every N under every behaviour; see the module docstring.

    Returns:
        ``rows`` (one per behaviour × N × policy); with ``mixed`` (shares of guarded
        clients), ``mixed`` rows at the largest N (:func:`mixed_rows`); the settings, the
        client process's and the largest server's peak RSS, and the machine.
    """
    rows = []
    server_peak = 0.0
    for behaviour in behaviours:
        server = ServerConfig(limit=limit, window_s=window_s, behaviour=behaviour)
        for n in clients:
            load = Load(
                clients=n, demand=demand, duration_s=duration_s, deadline_s=deadline_s, seed=seed
            )
            for policy in policies(n, server, lam):
                r = run_guard(policy, load, server)
                server_peak = max(server_peak, r["server_peak_rss_mib"])
                agree = r["server_ok"] == r["succeeded"] and r["rejected"] == (
                    r["server_limited"] + r["server_locked"]
                )
                kept = {k: v for k, v in r.items() if k not in DETAIL}
                rows.append(
                    {"policy": policy.name, "behaviour": behaviour}
                    | kept
                    | {"counters_agree": agree}
                )
    mixed_table = []
    if mixed:
        n = max(clients)
        for behaviour in behaviours:
            server = ServerConfig(limit=limit, window_s=window_s, behaviour=behaviour)
            load = Load(
                clients=n, demand=demand, duration_s=duration_s, deadline_s=deadline_s, seed=seed
            )
            for row in mixed_rows(n, mixed, server, lam, load):
                mixed_table.append({"behaviour": behaviour} | row)
    return {
        "rows": rows,
        "mixed": mixed_table,
        "lam": lam,
        "limit": limit,
        "window_s": window_s,
        "demand": demand,
        "duration_s": duration_s,
        "deadline_s": deadline_s,
        "client_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "server_peak_rss_mib": server_peak,
        "machine": machine_info(),
    }

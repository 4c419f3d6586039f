"""The client policies a study compares, by name, and one run of a population that wears one.

A study names policies (:data:`POLICY_NAMES`); :func:`make_policy` builds one as a builder
would configure it for N clients on a key: the token bucket and the SWA guard are told the
key's documented limit and how many workers share it. :func:`play` is one measured run: the
first ``round(guarded·N)`` clients wear the policy, the rest retry at once (a mixed
population), on a fresh server, with the server's counters checked against the clients'.
"""

from __future__ import annotations

import math
import resource
import time
from typing import Any, Literal, get_args

from swalab.guard.baselines import Adaptive, Backoff, Naive, TokenBucket
from swalab.guard.harness import Load, run_guard
from swalab.guard.policy import Policy
from swalab.guard.server import ServerConfig
from swalab.guard.swa import SWAGuard

PolicyName = Literal[
    "naive",
    "backoff_full",
    "backoff_equal",
    "backoff_decorrelated",
    "token_bucket",
    "sre_adaptive",
    "swa",
    "swa_shared",
]
#: Every policy a study can name (``swa`` and ``swa_shared`` are played once per λ).
POLICY_NAMES: tuple[PolicyName, ...] = get_args(PolicyName)


#: The SWA guard alone, and the SWA guard whose clients pool one belief (one process).
GUARDS = ("swa", "swa_shared")


def label(name: str, lam: float | None) -> str:
    """How results call a policy: its name, a guard's with its λ (``swa_lam1``)."""
    return f"{name}_lam{lam:g}" if name in GUARDS else name


def make_policy(name: str, *, clients: int, server: ServerConfig, lam: float = 1.0) -> Policy:
    """The policy ``name`` for one of ``clients`` clients sharing ``server``'s key.

    ``swa_shared`` is the SWA guard; its clients pool a belief when :func:`play` runs them.

    Raises:
        ValueError: An unknown name (the message lists the known ones).
    """
    if name in GUARDS:
        locks = server.behaviour == "lockout"
        return SWAGuard(
            lam=lam,
            limit=server.limit,
            window_s=server.window_s,
            clients=clients,
            lockout_threshold=server.lockout_threshold if locks else math.inf,
            lockout_cost=server.limit if locks else 0.0,
            name=label(name, lam),
        )
    if name == "naive":
        return Naive()
    if name.startswith("backoff_") and name.removeprefix("backoff_") in (
        "full",
        "equal",
        "decorrelated",
    ):
        return Backoff(name.removeprefix("backoff_"))  # type: ignore[arg-type]
    if name == "token_bucket":
        return TokenBucket(rate=server.limit / server.window_s / clients, burst=1.0)
    if name == "sre_adaptive":
        return Adaptive()
    raise ValueError(f"policy={name!r} is not known: choose one of {list(POLICY_NAMES)}")


def _group(per: dict[str, list[int]], members: range) -> dict[str, float]:
    """Per-client means of one group's successes and rejections, and its drop share."""
    size = max(len(members), 1)
    calls = sum(per["calls"][i] for i in members)
    return {
        "succeeded_per_client": sum(per["succeeded"][i] for i in members) / size,
        "rejected_per_client": sum(per["rejected"][i] for i in members) / size,
        "drop_share": sum(per["dropped"][i] for i in members) / calls if calls else math.nan,
    }


def play(
    name: str,
    lam: float | None,
    guarded: float,
    load: Load,
    server: ServerConfig,
    *,
    simulated: bool = False,
) -> dict[str, Any]:
    """One run: ``guarded`` of the clients wear ``name`` (at ``lam``), the rest are naive.

    ``simulated``: in simulated time (:func:`~swalab.guard.simulate.simulate_guard`: the
    same policies, arrivals and limiter, no sockets) instead of on a live server.

    Returns:
        :func:`~swalab.guard.harness.run_guard`'s metrics; ``counters_agree`` (the server
        admitted exactly the calls the clients saw succeed, and refused exactly those they
        saw refused); per group (``guarded_*``, ``naive_*``) successes and 429s per client
        and the drop share (NaN for an empty group); the client process's peak RSS.

    Raises:
        RuntimeError: A client's connection failed: the run does not measure the policy,
            so it is not returned as if it did (the first errors are in the message).
    """
    n = load.clients
    k = round(guarded * n)
    policy = make_policy(name, clients=n, server=server, lam=1.0 if lam is None else lam)
    pooling = [name == "swa_shared"] * k + [False] * (n - k)
    population = [policy] * k + [Naive()] * (n - k)
    if simulated:
        from swalab.guard.simulate import simulate_guard

        start = time.perf_counter()
        result = simulate_guard(population, load, server, pooling)
        result |= {"wall_s": time.perf_counter() - start, "server_peak_rss_mib": math.nan}
        result["errors"] = 0
    else:
        result = run_guard(population, load, server, pooling)
        if result["errors"]:
            raise RuntimeError(
                f"{result['errors']} client call(s) failed on the transport, e.g. "
                f"{result['first_errors'][0]}"
            )
        del result["first_errors"], result["server_windows"]
    per = result["per_client"]
    agree = result["server_ok"] == result["succeeded"] and result["rejected"] == (
        result["server_limited"] + result["server_locked"]
    )
    return (
        result
        | {"counters_agree": agree, "guarded_clients": k}
        | {f"guarded_{key}": v for key, v in _group(per, range(k)).items()}
        | {f"naive_{key}": v for key, v in _group(per, range(k, n)).items()}
        | {"client_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    )

"""SWA in front of real API calls: client policies for callers that share a rate limit.

:class:`SWAGuard` decides before each call whether sending it now raises the client's
socially weighted utility on the rate-limit welfare model; the baselines
(:mod:`swalab.guard.baselines`) are what callers do today. All are pure policies
(:mod:`swalab.guard.policy`); :class:`GuardTransport` / :class:`AsyncGuardTransport` wear
one on an httpx client and :mod:`swalab.guard.retrying` on a tenacity retry; clients of one
process may pool their belief (:class:`SharedBelief`). The httpx and
uvicorn parts load on first use (``pip install 'swalab[guard]'``).
"""

from __future__ import annotations

import importlib
from typing import Any

from swalab.guard.baselines import Adaptive, Backoff, Naive, TokenBucket
from swalab.guard.headers import Limits, parse_limits
from swalab.guard.policy import Action, Answered, Drop, Observation, Policy, Ready, Send, Wait
from swalab.guard.shared import PoolView, SharedBelief
from swalab.guard.swa import GuardState, SWAGuard

_LAZY = {
    "GuardTransport": "swalab.guard.transport",
    "AsyncGuardTransport": "swalab.guard.transport",
    "Dropped": "swalab.guard.transport",
}

__all__ = [
    "Action",
    "Adaptive",
    "Answered",
    "AsyncGuardTransport",
    "Backoff",
    "Drop",
    "Dropped",
    "GuardState",
    "GuardTransport",
    "Limits",
    "Naive",
    "Observation",
    "Policy",
    "PoolView",
    "Ready",
    "SWAGuard",
    "Send",
    "SharedBelief",
    "TokenBucket",
    "Wait",
    "parse_limits",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swalab.guard' has no attribute {name!r}")

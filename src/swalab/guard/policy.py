"""The shape every client policy has: pure decisions on what a client can see.

A policy is an object with :meth:`Policy.initial` (its state for a seed) and
:meth:`Policy.decide` ``(state, observation) → (action, state)``, pure as the environments'
dynamics are: no clock, no randomness beyond what the state carries, no I/O. Before each
HTTP attempt the caller shows it :class:`Ready` and gets :class:`Send`, :class:`Wait` or
:class:`Drop`; after the answer it shows :class:`Answered` (the action is then ``None``).
The SWA guard (:mod:`swalab.guard.swa`) and every baseline (:mod:`swalab.guard.baselines`)
have this shape, so one harness and one set of adapters (httpx, tenacity) serve them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from swalab.guard.headers import Limits
from swalab.guard.shared import PoolView

S = TypeVar("S")


@dataclass(frozen=True)
class Ready:
    """A call is about to be attempted.

    Attributes:
        now: Monotonic seconds.
        attempt: 0 for the first try of this call, k for its k-th retry.
        since: When this call was first ready (its deadline counts from here).
        pool: What the guards of this process saw last window, when they share a belief
            (:mod:`swalab.guard.shared`); ``None`` otherwise.
    """

    now: float
    attempt: int = 0
    since: float = math.nan
    pool: PoolView | None = None


@dataclass(frozen=True)
class Answered:
    """The server answered an attempt.

    Attributes:
        now: Monotonic seconds.
        status: HTTP status (429: rejected by the limit or a lockout).
        limits: What its headers said (:func:`~swalab.guard.headers.parse_limits`).
        attempt: Which attempt of its call this answered.
    """

    now: float
    status: int
    limits: Limits = field(default_factory=Limits)
    attempt: int = 0


@dataclass(frozen=True)
class Send:
    """Send the attempt now."""


@dataclass(frozen=True)
class Wait:
    """Ask again after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Give the call up (the caller sees it fail without a request)."""

    reason: str


@dataclass
class Counts:
    """What one client did (its transport or the simulator counts it).

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


Action = Send | Wait | Drop
Observation = Ready | Answered


@runtime_checkable
class Policy(Protocol):
    """A pure client policy (see the module docstring)."""

    @property
    def name(self) -> str:
        """How results and errors call it."""
        ...

    def initial(self, seed: int) -> Any:
        """The state of a fresh client with this seed."""
        ...

    def decide(self, state: Any, obs: Observation) -> tuple[Action | None, Any]:
        """The action for ``obs`` (``None`` for :class:`Answered`) and the next state."""
        ...


def within(action: Action, obs: Ready, deadline_s: float) -> Action:
    """``action``, or :class:`Drop` when waiting would pass the call's deadline.

    Every caller gives up a call at some point (tenacity's ``stop_after_delay``); this is
    that point for every policy alike, so they are compared on the same budget.
    """
    if not math.isfinite(obs.since) or not math.isfinite(deadline_s):
        return action
    left = obs.since + deadline_s - obs.now
    if left <= 0 or (isinstance(action, Wait) and action.seconds > left):
        return Drop(f"deadline of {deadline_s:g} s would pass")
    return action


def uniform(seed: int, *keys: int) -> float:
    """A uniform draw in [0, 1) from a seed and counters (SplitMix64; pure, stateless).

    Policies carry seeds, not random generators, so their states stay plain values and
    a draw depends only on (seed, keys), whatever else the process does.
    """
    x = seed & 0xFFFFFFFFFFFFFFFF
    for k in keys:
        x = (x + 0x9E3779B97F4A7C15 + (k & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return (x >> 11) / float(1 << 53)

"""What callers of a rate-limited API do today, from their published descriptions.

* :class:`Naive` — retry at once, as a plain ``while status == 429`` loop does.
* :class:`Backoff` — exponential backoff with jitter, after Marc Brooker, "Exponential
  Backoff And Jitter", AWS Architecture Blog (2015): ``full`` jitter sleeps
  ``uniform(0, min(cap, base·2^k))``, ``equal`` sleeps half that window plus a uniform draw
  over the other half, ``decorrelated`` sleeps ``min(cap, uniform(base, 3·previous))``.
  Full jitter is tenacity's ``wait_random_exponential`` (the same value for the same draw:
  tests/guard/test_baselines.py checks it); tenacity's ``wait_exponential_jitter`` is
  neither of the others, so all three are written here from the article.
* :class:`TokenBucket` — a client-side token bucket at the client's share of the limit:
  never send faster than ``rate`` calls per second (``burst`` at most at once).
* :class:`Adaptive` — adaptive throttling, Google's "Site Reliability Engineering" book,
  ch. 21 "Handling Overload": each client keeps, over the last two minutes, its
  ``requests`` (attempts) and ``accepts`` (attempts the server accepted) and rejects an
  attempt locally with probability ``max(0, (requests − K·accepts)/(requests + 1))``,
  K = 2; a locally rejected attempt fails without a request, and is retried, like a
  server-rejected one, after full-jitter backoff.

Each is pure (:mod:`swalab.guard.policy`): state in, action and state out, draws from the
seed and counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from swalab.guard.policy import Action, Answered, Observation, Ready, Send, Wait, uniform


@dataclass(frozen=True)
class Naive:
    """Retry at once."""

    name: str = "naive"

    def initial(self, seed: int) -> int:
        """No state."""
        return seed

    def decide(self, state: int, obs: Observation) -> tuple[Action | None, int]:
        """Always send."""
        return (Send() if isinstance(obs, Ready) else None), state


@dataclass(frozen=True)
class BackoffState:
    """Seed, when the next attempt may go, the last sleep and the draws so far."""

    seed: int
    not_before: float = float("-inf")
    last_sleep: float = 0.0
    draws: int = 0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with ``jitter`` after a 429 (and ``Retry-After`` when longer).

    Attributes:
        jitter: ``full``, ``equal`` or ``decorrelated``.
        base: First window in seconds.
        cap: Largest sleep in seconds.
        honour_retry_after: Never retry before the server's ``Retry-After``.
    """

    jitter: Literal["full", "equal", "decorrelated"] = "full"
    base: float = 0.05
    cap: float = 5.0
    honour_retry_after: bool = True
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.jitter not in ("full", "equal", "decorrelated"):
            raise ValueError(
                f"jitter={self.jitter!r} is not known: choose full, equal or decorrelated"
            )
        if not 0 < self.base <= self.cap:
            raise ValueError(f"base={self.base!r}, cap={self.cap!r}: need 0 < base <= cap")
        if not self.name:
            object.__setattr__(self, "name", f"backoff_{self.jitter}")

    def initial(self, seed: int) -> BackoffState:
        """Nothing waited yet."""
        return BackoffState(seed)

    def sleep(self, retry: int, last: float, u: float) -> float:
        """The sleep before retry ``retry`` (1, 2, …) given the last sleep and a draw ``u``."""
        window = min(self.cap, self.base * 2.0 ** (retry - 1))
        if self.jitter == "full":
            return u * window
        if self.jitter == "equal":
            return window / 2 + u * window / 2
        return min(self.cap, self.base + u * (max(last, self.base) * 3 - self.base))

    def decide(self, state: BackoffState, obs: Observation) -> tuple[Action | None, BackoffState]:
        """Wait out the backoff, then send; a 429 sets the next backoff."""
        if isinstance(obs, Ready):
            if obs.now < state.not_before:
                return Wait(state.not_before - obs.now), state
            return Send(), state
        if obs.status != 429:
            return None, replace(state, last_sleep=0.0)
        u = uniform(state.seed, state.draws)
        pause = self.sleep(obs.attempt + 1, state.last_sleep, u)
        if self.honour_retry_after and obs.limits.retry_after is not None:
            pause = max(pause, obs.limits.retry_after)
        return None, replace(
            state, not_before=obs.now + pause, last_sleep=pause, draws=state.draws + 1
        )


@dataclass(frozen=True)
class BucketState:
    """Tokens and when they were counted; backoff after a 429."""

    tokens: float
    stamp: float = float("-inf")
    not_before: float = float("-inf")


@dataclass(frozen=True)
class TokenBucket:
    """A client-side token bucket: ``rate`` calls per second at most, ``burst`` at once.

    After a 429 the next call waits one token's time (or ``Retry-After``, when longer).
    """

    rate: float = 1.0
    burst: float = 1.0
    name: str = "token_bucket"

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.burst >= 1:
            raise ValueError(f"rate={self.rate!r}, burst={self.burst!r}: need rate > 0, burst >= 1")

    def initial(self, seed: int) -> BucketState:
        """A full bucket."""
        return BucketState(tokens=self.burst)

    def decide(self, state: BucketState, obs: Observation) -> tuple[Action | None, BucketState]:
        """Take a token or wait for one."""
        if isinstance(obs, Answered):
            if obs.status != 429:
                return None, state
            pause = max(1.0 / self.rate, obs.limits.retry_after or 0.0)
            return None, replace(state, not_before=max(state.not_before, obs.now + pause))
        if obs.now < state.not_before:
            return Wait(state.not_before - obs.now), state
        gained = 0.0 if state.stamp == float("-inf") else (obs.now - state.stamp) * self.rate
        tokens = min(self.burst, state.tokens + gained)
        if tokens >= 1.0 - 1e-9:  # a wait of (1 − tokens)/rate may refill to 0.999…
            return Send(), replace(state, tokens=max(0.0, tokens - 1.0), stamp=obs.now)
        return Wait((1.0 - tokens) / self.rate), replace(state, tokens=tokens, stamp=obs.now)


@dataclass(frozen=True)
class AdaptiveState:
    """Attempt times and accept times within the history; the backoff after a rejection."""

    seed: int
    requests: tuple[float, ...] = ()
    accepts: tuple[float, ...] = ()
    backoff: BackoffState = field(default_factory=lambda: BackoffState(0))
    draws: int = 0


@dataclass(frozen=True)
class Adaptive:
    """SRE adaptive throttling (K = ``k``) over ``history_s`` seconds, full-jitter retries."""

    k: float = 2.0
    history_s: float = 120.0
    retry: Backoff = field(default_factory=lambda: Backoff("full"))
    name: str = "sre_adaptive"

    def __post_init__(self) -> None:
        if not self.k >= 1:
            raise ValueError(f"k={self.k!r} is out of range: must be >= 1 (the book uses 2)")

    def initial(self, seed: int) -> AdaptiveState:
        """No history."""
        return AdaptiveState(seed, backoff=self.retry.initial(seed + 1))

    def reject_probability(self, requests: int, accepts: int) -> float:
        """``max(0, (requests − K·accepts)/(requests + 1))``."""
        return max(0.0, (requests - self.k * accepts) / (requests + 1))

    def decide(self, state: AdaptiveState, obs: Observation) -> tuple[Action | None, AdaptiveState]:
        """Throttle locally with the book's probability; back off after any rejection."""
        cut = obs.now - self.history_s
        requests = tuple(t for t in state.requests if t > cut)
        accepts = tuple(t for t in state.accepts if t > cut)
        if isinstance(obs, Answered):
            ok = obs.status != 429
            _, backoff = self.retry.decide(state.backoff, obs)
            accepts += (obs.now,) if ok else ()
            return None, replace(state, requests=requests, accepts=accepts, backoff=backoff)
        action, _ = self.retry.decide(state.backoff, obs)
        if not isinstance(action, Send):
            return action, replace(state, requests=requests, accepts=accepts)
        p = self.reject_probability(len(requests), len(accepts))
        requests += (obs.now,)
        if uniform(state.seed, state.draws) < p:  # rejected here: a failed attempt
            failed = Answered(obs.now, 429, attempt=obs.attempt)
            _, backoff = self.retry.decide(state.backoff, failed)
            wait = backoff.not_before - obs.now
            return Wait(wait), replace(
                state, requests=requests, accepts=accepts, backoff=backoff, draws=state.draws + 1
            )
        return Send(), replace(state, requests=requests, accepts=accepts, draws=state.draws + 1)

"""A client policy as tenacity's ``stop`` and ``wait``: the guard on an existing retry loop.

For code that already retries with tenacity::

    from tenacity import retry, retry_if_result
    from swalab.guard import SWAGuard
    from swalab.guard.retrying import TenacityGuard

    guard = TenacityGuard(SWAGuard(lam=1.0, limit=100, window_s=1.0, clients=50), seed=7)

    @retry(stop=guard.stop, wait=guard.wait, retry=retry_if_result(lambda r: r.status_code == 429))
    def call():
        return httpx.post(URL, json=job)

After each failed attempt ``stop`` shows the policy the answer (its status and
``Retry-After`` / ``RateLimit-*`` headers, from an ``httpx.Response`` result or an
``httpx.HTTPStatusError``), then asks it about the next attempt: a drop stops the retries;
waits are added up, asking the pure policy again at the time each wait ends, until it says
send — that total is what ``wait`` returns. tenacity does not gate a first attempt, so the
policy sees only retries; :class:`~swalab.guard.transport.GuardTransport` sees every attempt.
"""

from __future__ import annotations

import math
import time
from typing import Any

from swalab.guard.headers import Limits, parse_limits
from swalab.guard.policy import Answered, Drop, Policy, Ready, Send, Wait, within

#: Most consecutive waits one retry adds up before giving up on the policy settling.
MAX_WAITS = 1000


def _answer(outcome: Any) -> tuple[int, Limits]:
    """Status and limits of a failed attempt (0 when it carried no HTTP answer)."""
    response = None
    if outcome is not None:
        error = outcome.exception()
        response = getattr(error, "response", None) if error is not None else outcome.result()
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return 0, Limits()
    return status, parse_limits(getattr(response, "headers", {}))


class TenacityGuard:
    """``stop`` and ``wait`` callables for tenacity, driven by ``policy``.

    Args:
        policy: A client policy of :mod:`swalab.guard`.
        seed: The client's seed.
        deadline_s: Stop once a retry could not start within this many seconds of the
            first attempt.
    """

    def __init__(self, policy: Policy, *, seed: int = 0, deadline_s: float = math.inf) -> None:
        self.policy = policy
        self.state = policy.initial(seed)
        self.deadline_s = deadline_s
        self._sleep = 0.0

    def stop(self, retry_state: Any) -> bool:
        """Whether to give up (also settles the next wait; tenacity asks this first)."""
        now = time.monotonic()
        attempt = int(retry_state.attempt_number) - 1
        status, limits = _answer(retry_state.outcome)
        _, self.state = self.policy.decide(self.state, Answered(now, status, limits, attempt))
        since = now - float(retry_state.seconds_since_start or 0.0)
        waited = 0.0
        for _ in range(MAX_WAITS):
            obs = Ready(now + waited, attempt + 1, since)
            action, self.state = self.policy.decide(self.state, obs)
            assert action is not None
            action = within(action, obs, self.deadline_s)
            if isinstance(action, Drop):
                return True
            if isinstance(action, Send):
                self._sleep = waited
                return False
            assert isinstance(action, Wait)
            waited += max(action.seconds, 1e-6)
        return True

    def wait(self, retry_state: Any) -> float:
        """Seconds to sleep before the next attempt (settled by :meth:`stop`)."""
        return self._sleep

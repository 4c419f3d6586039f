"""One client's policy loop: what the httpx transports and the simulator both run.

A call begins; before each attempt the policy is shown :class:`~swalab.guard.policy.Ready`
(with the shared belief's last window when the client pools one) and its action is held to
the call's deadline; each answer goes back to it as :class:`~swalab.guard.policy.Answered`.
Counting what the client did and keeping the shared tally happen here, once, so a live run
and a simulated one count alike.
"""

from __future__ import annotations

import math

from swalab.guard.headers import Limits
from swalab.guard.policy import Action, Answered, Counts, Drop, Policy, Ready, Send, within
from swalab.guard.shared import SharedBelief


class GuardedClient:
    """A policy, its state, what it did, and (optionally) the belief it pools.

    Args:
        policy: The client policy.
        seed: This client's seed (its draws).
        deadline_s: A call not done this long after it began is dropped.
        shared: A belief pooled with other clients of this process.
    """

    def __init__(
        self,
        policy: Policy,
        seed: int = 0,
        deadline_s: float = math.inf,
        shared: SharedBelief | None = None,
    ) -> None:
        if not deadline_s > 0:
            raise ValueError(f"deadline_s={deadline_s!r} is out of range: must be > 0 seconds")
        self.policy = policy
        self.state = policy.initial(seed)
        self.deadline_s = deadline_s
        self.counts = Counts()
        self.shared = shared
        self.member = -1 if shared is None else shared.join()
        self.since = math.nan
        self.attempt = 0

    def begin(self, since: float) -> None:
        """A new call, ready at ``since`` (its deadline counts from there)."""
        self.counts.calls += 1
        self.since, self.attempt = since, 0

    def ready(self, now: float) -> Action:
        """What to do with the call's next attempt at ``now``."""
        pool = None if self.shared is None else self.shared.view(now)
        obs = Ready(now, self.attempt, self.since, pool)
        action, self.state = self.policy.decide(self.state, obs)
        if action is None:
            raise TypeError(f"policy {self.policy.name!r} gave no action for {obs!r}")
        action = within(action, obs, self.deadline_s)
        if isinstance(action, Drop):
            self.counts.dropped += 1
        elif self.shared is not None:
            self.shared.note(self.member, now, "sent" if isinstance(action, Send) else "deferred")
        return action

    def answered(self, now: float, status: int, limits: Limits) -> bool:
        """Show the policy the answer; whether the call is done (anything but a 429)."""
        obs = Answered(now, status, limits, self.attempt)
        _, self.state = self.policy.decide(self.state, obs)
        self.counts.attempts += 1
        if self.shared is not None and limits.reset is not None:
            self.shared.align(now + limits.reset)
            if limits.remaining is not None:
                self.shared.heard(now, limits.remaining, now + limits.reset)
        if status != 429:
            self.counts.ok += 1
            return True
        self.counts.rejected += 1
        self.attempt += 1
        if self.shared is not None:
            self.shared.note(self.member, now, "rejected")
        return False

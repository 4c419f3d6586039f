"""A belief shared by the guards of one process: what all of them saw, window by window.

A guard alone sees its own few calls: at a thousand clients on a limit of a hundred, a
call every ten windows, so it cannot tell a key the others leave idle from one they fill.
Clients in one process (the workers of one agent runtime, the tasks of one job) can pool
what they see at no cost: :class:`SharedBelief` is a tally that their transports keep —
each attempt sent, each call held back, each 429, by window — and show to each policy as a
:class:`PoolView` of the last whole window in the :class:`~swalab.guard.policy.Ready`
observation. The policies stay pure (the view is part of what they are shown); only the
tally is mutable, and it is guarded by a lock, so threads and asyncio tasks may share it.

What the SWA guard makes of it (:meth:`swalab.guard.swa.SWAGuard.symmetric_response`): the
clients that sent or held a call back last window are the ones contending for the next;
each plays the best response to the others playing as it does. The tally also keeps the
room left in the window under way (the last ``Remaining`` a pooled client heard, less the
pooled sends since), and a guard holds a call it says will be refused. Windows follow the
server's clock once a ``Reset`` header has shown where they end.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import Literal

Event = Literal["sent", "deferred", "rejected"]


@dataclass(frozen=True)
class PoolView:
    """The last whole window the pooled guards saw.

    Attributes:
        window: Its index (monotonic seconds since the server's window clock began, over
            the window length, floored).
        sent: Attempts they sent in it.
        rejected: Of those, the ones answered 429.
        contenders: Guards that sent or held a call back in it.
        members: Guards pooling.
        room: Calls the server can still admit in the window now under way: the last
            ``Remaining`` a pooled client heard in it, less the pooled calls sent since;
            ``None`` until an answer in this window said.
    """

    window: int
    sent: int
    rejected: int
    contenders: int
    members: int
    room: float | None = None


class SharedBelief:
    """The tally the transports of one process keep (see the module docstring).

    Args:
        window_s: The window its counts are kept by (the key's, as the guards know it).
    """

    def __init__(self, window_s: float) -> None:
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s={window_s!r} is out of range: must be > 0 seconds")
        self.window_s = window_s
        self._lock = threading.Lock()
        self._members = 0
        self._window: int | None = None
        self._sent = 0
        self._rejected = 0
        self._contenders: set[int] = set()
        self._last: PoolView | None = None
        self._phase: float | None = None
        self._room: float | None = None

    def join(self) -> int:
        """A new member's number (each guard that pools joins once)."""
        with self._lock:
            self._members += 1
            return self._members - 1

    def align(self, window_end: float) -> None:
        """Keep windows by the server's clock: one of them ends at ``window_end``.

        The first server's ``Reset`` a transport sees sets it (later ones agree with it);
        without one, windows start at multiples of ``window_s``.
        """
        with self._lock:
            if self._phase is None and math.isfinite(window_end):
                self._phase = window_end % self.window_s
                if self._window is not None:  # the window we are in, on the new clock
                    self._window = math.floor((window_end - self._phase) / self.window_s) - 1

    def _roll(self, now: float) -> None:
        """Close the windows that ended before ``now`` (caller holds the lock)."""
        k = math.floor((now - (self._phase or 0.0)) / self.window_s)
        if self._window is None:
            self._window = k
            return
        if k <= self._window:
            return
        if k == self._window + 1:
            self._last = PoolView(
                self._window,
                self._sent,
                self._rejected,
                len(self._contenders),
                self._members,
            )
        else:  # whole windows passed with nothing seen
            self._last = PoolView(k - 1, 0, 0, 0, self._members)
        self._window, self._sent, self._rejected = k, 0, 0
        self._contenders, self._room = set(), None

    def note(self, member: int, now: float, event: Event) -> None:
        """Count what ``member`` did at ``now``."""
        with self._lock:
            self._roll(now)
            if event == "rejected":
                self._rejected += 1
                return
            if event == "sent":
                self._sent += 1
                if self._room is not None:
                    self._room -= 1
            self._contenders.add(member)

    def heard(self, now: float, remaining: float, window_end: float) -> None:
        """Note an answer at ``now``: ``remaining`` calls left in the window ending then.

        An answer about a window already over is ignored.
        """
        with self._lock:
            self._roll(now)
            if self._phase is None or self._window is None:
                return
            answered = round((window_end - self._phase) / self.window_s) - 1
            if answered == self._window:
                self._room = remaining if self._room is None else min(self._room, remaining)

    def view(self, now: float) -> PoolView | None:
        """The last whole window before ``now``, with the room in this one.

        ``None`` until a whole window has passed.
        """
        with self._lock:
            self._roll(now)
            if self._last is None:
                return None
            return replace(self._last, room=self._room)

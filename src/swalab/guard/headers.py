"""What a client can read from a rate-limited server's answer.

Three header families say how much of a limit is left: ``Retry-After`` (RFC 9110: seconds or
an HTTP date), the IETF draft's ``RateLimit-Limit`` / ``RateLimit-Remaining`` /
``RateLimit-Reset`` (seconds until the window resets) and the older ``X-RateLimit-*``
spelling of the same (GitHub's ``X-RateLimit-Reset`` is an epoch time, told apart by size).
A header that does not parse is ignored, never guessed at.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

#: A ``Reset`` value above this is an epoch time, not a number of seconds (GitHub's).
EPOCH_CUTOFF = 10**9


@dataclass(frozen=True)
class Limits:
    """What the server said about its limit (``None``: not said).

    Attributes:
        retry_after: Seconds to wait before the next call.
        limit: Calls the window allows.
        remaining: Calls left in the window.
        reset: Seconds until the window resets.
    """

    retry_after: float | None = None
    limit: float | None = None
    remaining: float | None = None
    reset: float | None = None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    first = text.split(",")[0].split(";")[0].strip()  # "100, 100;w=60" (draft lists)
    try:
        value = float(first)
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def _retry_after(text: str | None, now_epoch: float) -> float | None:
    seconds = _number(text)
    if seconds is not None or text is None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now_epoch)


def parse_limits(headers: Mapping[str, str], now_epoch: float | None = None) -> Limits:
    """Read ``Retry-After`` and the ``RateLimit-*`` / ``X-RateLimit-*`` headers.

    Args:
        headers: Response headers (any case; a plain dict is matched case-insensitively).
        now_epoch: Wall-clock now, for HTTP-date and epoch values (default: ``time.time()``).
    """
    now = time.time() if now_epoch is None else now_epoch
    low = {k.lower(): v for k, v in headers.items()}

    def pick(name: str) -> float | None:
        value = _number(low.get(f"ratelimit-{name}"))
        return value if value is not None else _number(low.get(f"x-ratelimit-{name}"))

    reset = pick("reset")
    if reset is not None and reset > EPOCH_CUTOFF:
        reset = max(0.0, reset - now)
    return Limits(
        retry_after=_retry_after(low.get("retry-after"), now),
        limit=pick("limit"),
        remaining=pick("remaining"),
        reset=reset,
    )

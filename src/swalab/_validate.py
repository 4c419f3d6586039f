"""Argument checks shared by every public entry point.

Each check raises a :class:`ValueError` whose message names the argument, the value it got
and the range that is allowed, so a user who mistypes one flag in a sweep of thousands of
cells learns which one at once instead of reading a NaN in a results table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def _fail(name: str, value: object, allowed: str) -> ValueError:
    if isinstance(value, np.generic):
        value = value.item()
    return ValueError(f"{name}={value!r} is out of range: {allowed}")


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real | np.floating | np.integer):
        raise ValueError(f"{name}={value!r} is not a number")
    out = float(value)
    if math.isnan(out):
        raise _fail(name, value, "must be a number, not NaN")
    return out


def positive(name: str, value: object) -> float:
    """Return ``value`` as float, requiring a finite number > 0."""
    out = _as_float(name, value)
    if not (out > 0 and math.isfinite(out)):
        raise _fail(name, value, "must be a finite number > 0")
    return out


def non_negative(name: str, value: object) -> float:
    """Return ``value`` as float, requiring a finite number >= 0."""
    out = _as_float(name, value)
    if not (out >= 0 and math.isfinite(out)):
        raise _fail(name, value, "must be a finite number >= 0")
    return out


def unit_interval(name: str, value: object) -> float:
    """Return ``value`` as float, requiring it to lie in [0, 1]."""
    out = _as_float(name, value)
    if not 0.0 <= out <= 1.0:
        raise _fail(name, value, "must lie in [0, 1]")
    return out


def open_unit_interval_right(name: str, value: object) -> float:
    """Return ``value`` as float, requiring it to lie in (0, 1]."""
    out = _as_float(name, value)
    if not 0.0 < out <= 1.0:
        raise _fail(name, value, "must lie in (0, 1]")
    return out


def in_range(name: str, value: object, low: float, high: float) -> float:
    """Return ``value`` as float, requiring ``low <= value < high``."""
    out = _as_float(name, value)
    if not low <= out < high:
        raise _fail(name, value, f"must satisfy {low:g} <= {name} < {high:g}")
    return out


def finite(name: str, value: object) -> float:
    """Return ``value`` as float, requiring a finite number."""
    out = _as_float(name, value)
    if not math.isfinite(out):
        raise _fail(name, value, "must be finite")
    return out


def integer_at_least(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as int, requiring an integer >= ``minimum``.

    Floats that hold an integer (``5.0``) are refused too: a fractional agent count is
    always a typo, and accepting ``5.0`` would hide ``5.5`` behind a silent truncation.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _fail(name, value, f"must be an integer >= {minimum}")
    out = int(value)
    if out < minimum:
        raise _fail(name, value, f"must be an integer >= {minimum}")
    return out


def per_agent(
    name: str,
    value: float | Sequence[float] | FloatArray | None,
    n_agents: int,
    default: float,
    check: str = "positive",
) -> FloatArray:
    """Broadcast a scalar or per-agent list to a float array of length ``n_agents``.

    Args:
        name: Argument name used in error messages.
        value: ``None`` (use ``default``), one number for every agent, or one per agent.
        n_agents: Number of agents the result must cover.
        default: Value used when ``value`` is ``None``.
        check: ``"positive"``, ``"non_negative"`` or ``"unit_interval"``.

    Returns:
        A new float64 array of shape ``(n_agents,)``.
    """
    checks = {"positive": positive, "non_negative": non_negative, "unit_interval": unit_interval}
    fn = checks[check]
    if value is None:
        return np.full(n_agents, fn(name, default), dtype=np.float64)
    if np.ndim(value) == 0:
        return np.full(n_agents, fn(name, value), dtype=np.float64)
    items = list(np.asarray(value, dtype=object).ravel())
    if len(items) != n_agents:
        raise ValueError(
            f"{name} has {len(items)} entries: must be one number or one per agent ({n_agents})"
        )
    return np.array([fn(f"{name}[{i}]", v) for i, v in enumerate(items)], dtype=np.float64)


def float_list(name: str, values: Iterable[object]) -> tuple[float, ...]:
    """Return ``values`` as a tuple of finite floats."""
    return tuple(finite(f"{name}[{i}]", v) for i, v in enumerate(values))


def rename_field(message: str, names: Mapping[str, str]) -> str:
    """Replace the library argument a message starts with by what the user wrote.

    Library errors name their argument (``margin=2.0 is out of range …``); the CLI says
    ``--margin`` and a config says ``policy.margin``.
    """
    for name, shown in names.items():
        for sep in ("=", "[", " "):
            if message.startswith(name + sep):
                return shown + message[len(name) :]
    return message


def http_url(name: str, value: str) -> str:
    """Return ``value`` if it is an http(s) URL with a host (a server's address)."""
    import urllib.parse

    parsed = urllib.parse.urlparse(str(value))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            f"{name}={value!r} is not an http(s) URL: write e.g. http://127.0.0.1:8000/v1"
        )
    return str(value)

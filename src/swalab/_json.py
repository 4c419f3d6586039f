"""JSON that browsers, ``jq`` and strict parsers read: arrays as lists, NaN and ±∞ as null."""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars as Python values and non-finite floats as None."""
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(x) for x in value]
    return value


def dumps(value: Any) -> str:
    """Indented JSON of :func:`json_safe` ``(value)``; anything else as its ``str``."""
    return json.dumps(json_safe(value), indent=2, default=str)

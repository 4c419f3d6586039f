"""Episode metrics of SPEC §2 over arrays of per-step loads and welfare.

Steps are on the last axis; any axes before it (seeds, λ values, …) are kept, so one call
summarises a whole sweep.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from swalab._validate import FloatArray


def overload_rate(loads: ArrayLike, capacity: ArrayLike) -> FloatArray:
    """Return the fraction of steps with ``X > C`` (a load exactly at capacity is safe)."""
    result: FloatArray = np.mean(np.asarray(loads) > np.asarray(capacity)[..., None], axis=-1)
    return result


def mean_welfare(welfare: ArrayLike) -> FloatArray:
    """Return the episode mean of the realised welfare ``W_t``."""
    result: FloatArray = np.mean(np.asarray(welfare, dtype=np.float64), axis=-1)
    return result


def steps_to_stable(loads: ArrayLike, capacity: ArrayLike) -> FloatArray:
    """Return the first step from which the load stays ``≤ C`` to the end.

    ``T`` (the number of steps) means the episode never settled, including when its last
    step is overloaded.
    """
    over = np.asarray(loads) > np.asarray(capacity)[..., None]
    t = over.shape[-1]
    # Index of the last overloaded step + 1; 0 when no step is overloaded.
    last_over = np.where(over.any(axis=-1), t - np.argmax(over[..., ::-1], axis=-1), 0)
    result: FloatArray = last_over.astype(np.float64)
    return result


def jain_fairness(demands: ArrayLike) -> FloatArray:
    """Return Jain's index ``(Σx)²/(N·Σx²)`` over agents (last axis); 1 when all are 0."""
    x = np.asarray(demands, dtype=np.float64)
    num = x.sum(axis=-1) ** 2
    den = x.shape[-1] * (x**2).sum(axis=-1)
    result: FloatArray = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return result

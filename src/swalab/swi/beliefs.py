"""Beliefs about the other agents' typical load contribution (paper Appendix A).

Beliefs are functional, as in Gymnasium's ``FuncEnv``: ``init`` returns a state array with
one belief per agent (agents on the last axis, any batch axes before it) and ``update``
returns a new one, so the per-agent path and a vectorised engine share the same arithmetic
and policies stay stateless (Melting Pot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray


class BeliefModel(Protocol):
    """Maps the public history to each agent's estimate ``μ̂`` of the mean load contribution."""

    def init(self, n_agents: int, capacity: float) -> FloatArray:
        """Return the belief state before the first step, shape ``(n_agents,)``."""
        ...

    def update(self, state: FloatArray, load: FloatArray | float) -> FloatArray:
        """Return the state after observing one step's total load."""
        ...


@dataclass(frozen=True, kw_only=True)
class EMABelief:
    """The paper's exponential moving average, ``μ̂ ← (1 − α)·μ̂ + α·X/N``.

    ``X/N`` is the mean load contribution, the mean demand when all impacts are 1 (the
    paper's case). Every agent reads the same public board, so all beliefs are equal.

    Attributes:
        alpha: Smoothing ``α ∈ (0, 1]``; the shared belief settles only if ``α < 2/N``.
        initial: ``μ̂₀``; ``None`` means ``C/N`` as in the paper. A high start (``x_max``)
            locks the paper scorer into overload (SPEC §2).
    """

    alpha: float = 0.2
    initial: float | None = None

    def __post_init__(self) -> None:
        v.open_unit_interval_right("alpha", self.alpha)
        if self.initial is not None:
            v.non_negative("initial_belief", self.initial)

    def init(self, n_agents: int, capacity: float) -> FloatArray:
        """Return ``μ̂₀`` for every agent."""
        start = capacity / n_agents if self.initial is None else self.initial
        return np.full(n_agents, float(start))

    def update(self, state: FloatArray, load: FloatArray | float) -> FloatArray:
        """Blend the step's mean load contribution into every agent's belief."""
        mean = np.asarray(load, dtype=np.float64) / state.shape[-1]
        new: FloatArray = (1.0 - self.alpha) * state + self.alpha * mean[..., None]
        return new

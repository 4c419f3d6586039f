"""Beliefs about the other agents' typical load contribution (paper Appendix A, §7.2).

Beliefs are functional, as in Gymnasium's ``FuncEnv``: ``init`` returns a state, ``update``
returns a new one after a step, and ``read`` gives each agent's estimate ``μ̂_i`` (shape
``(n_agents,)``) at a step. The per-agent path, the LLM runner and the compiled engine
(:mod:`swalab.swi._kernels`) share this arithmetic operation for operation, so policies
stay stateless (Melting Pot) and both simulation paths give bit-identical episodes.

Base models (:class:`EMABelief`, :class:`LastBelief`, :class:`WindowBelief`) differ in how
they pool observations; each observes either the public mean contribution ``X/N`` (the
paper: every agent holds the same belief) or, with ``private=True``, the others' mean
``(X − w_i·x_i)/(N − 1)`` (each agent its own belief, with its own demand taken out).
Wrappers corrupt any model the way paper §7.2 worries about: :class:`DelayedBelief` reads
the estimate of ``d`` steps earlier, :class:`NoisyBelief` adds seeded Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.swi import _rng

BELIEF_KINDS = ("ema", "last", "window")


class BeliefModel(Protocol):
    """Maps the public history to each agent's estimate ``μ̂`` of the mean load contribution."""

    def init(self, n_agents: int, capacity: float) -> Any:
        """Return the state before the first step."""
        ...

    def update(
        self,
        state: Any,
        load: float,
        demands: FloatArray | None = None,
        weights: FloatArray | None = None,
    ) -> Any:
        """Return the state after observing one step (total load, and demands if private)."""
        ...

    def read(self, state: Any, *, seed: int = 0, step: int = 0) -> FloatArray:
        """Return every agent's estimate at ``step`` (``seed`` drives noisy wrappers)."""
        ...


def observation(
    n_agents: int,
    load: float,
    demands: FloatArray | None,
    weights: FloatArray | None,
    private: bool,
) -> FloatArray:
    """What each agent observes of one step: ``X/N``, or ``(X − w_i·x_i)/(N − 1)`` if private."""
    if not private:
        return np.full(n_agents, float(load) / n_agents)
    if demands is None:
        raise ValueError("private beliefs need the step's demands")
    w = np.ones(n_agents) if weights is None else np.asarray(weights, dtype=np.float64)
    out: FloatArray = (float(load) - w * np.asarray(demands, dtype=np.float64)) / (n_agents - 1)
    return out


@dataclass(frozen=True, kw_only=True)
class _Observing:
    """What every base model shares: where it starts and what it observes.

    Attributes:
        initial: ``μ̂₀``; ``None`` means ``C/N`` as in the paper. A high start (``x_max``)
            locks the paper scorer into overload (docs/theory.md §4).
        private: Observe the others' mean instead of the public mean.
    """

    initial: float | None = None
    private: bool = False

    def __post_init__(self) -> None:
        if self.initial is not None:
            v.non_negative("initial_belief", self.initial)

    def _start(self, n_agents: int, capacity: float) -> FloatArray:
        start = capacity / n_agents if self.initial is None else self.initial
        return np.full(n_agents, float(start))

    def init(self, n_agents: int, capacity: float) -> Any:
        """Return ``μ̂₀`` for every agent (the state of models whose state is the estimate)."""
        return self._start(n_agents, capacity)

    def read(self, state: Any, *, seed: int = 0, step: int = 0) -> FloatArray:
        """The state is the estimate."""
        out: FloatArray = state
        return out

    def _observe(
        self, n_agents: int, load: float, demands: FloatArray | None, weights: FloatArray | None
    ) -> FloatArray:
        return observation(n_agents, load, demands, weights, self.private)


@dataclass(frozen=True, kw_only=True)
class EMABelief(_Observing):
    """The paper's exponential moving average, ``μ̂ ← (1 − α)·μ̂ + α·o``.

    Attributes:
        alpha: Smoothing ``α ∈ (0, 1]``; a shared belief settles only if ``α < 2/N``.
    """

    alpha: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        v.open_unit_interval_right("alpha", self.alpha)

    def update(
        self,
        state: FloatArray,
        load: float,
        demands: FloatArray | None = None,
        weights: FloatArray | None = None,
    ) -> FloatArray:
        """Blend the step's observation into every agent's belief."""
        obs = self._observe(state.shape[-1], load, demands, weights)
        new: FloatArray = (1.0 - self.alpha) * state + self.alpha * obs
        return new


@dataclass(frozen=True, kw_only=True)
class LastBelief(_Observing):
    """The last observation only (no memory): the fastest and the least smoothed estimate."""

    def update(
        self,
        state: FloatArray,
        load: float,
        demands: FloatArray | None = None,
        weights: FloatArray | None = None,
    ) -> FloatArray:
        """Replace the estimate by the step's observation."""
        return self._observe(state.shape[-1], load, demands, weights)


@dataclass(frozen=True, kw_only=True)
class WindowBelief(_Observing):
    """The mean of the last ``window`` observations (fewer early on; ``μ̂₀`` before any).

    Attributes:
        window: Observations pooled, ``>= 1``.
    """

    window: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        v.integer_at_least("window", self.window, 1)

    def init(self, n_agents: int, capacity: float) -> tuple[FloatArray, tuple[FloatArray, ...]]:
        """Return ``(μ̂₀, no observations)``."""
        return self._start(n_agents, capacity), ()

    def update(
        self,
        state: tuple[FloatArray, tuple[FloatArray, ...]],
        load: float,
        demands: FloatArray | None = None,
        weights: FloatArray | None = None,
    ) -> tuple[FloatArray, tuple[FloatArray, ...]]:
        """Append the observation, keeping the last ``window``."""
        start, seen = state
        obs = self._observe(start.shape[-1], load, demands, weights)
        return start, (*seen, obs)[-self.window :]

    def read(
        self, state: tuple[FloatArray, tuple[FloatArray, ...]], *, seed: int = 0, step: int = 0
    ) -> FloatArray:
        """The mean of the kept observations, summed oldest first (the engine's order)."""
        start, seen = state
        if not seen:
            return start
        total = seen[0]
        for obs in seen[1:]:
            total = total + obs
        out: FloatArray = total / len(seen)
        return out


@dataclass(frozen=True, kw_only=True)
class DelayedBelief:
    """Reads ``base``'s estimate of ``delay`` steps earlier (``μ̂₀`` until then).

    Attributes:
        base: The belief being delayed.
        delay: Steps of delay ``d >= 0``.
    """

    base: BeliefModel
    delay: int = 1

    def __post_init__(self) -> None:
        v.integer_at_least("delay", self.delay, 0)

    def init(self, n_agents: int, capacity: float) -> tuple[Any, tuple[FloatArray, ...]]:
        """Return the base state and the history of its estimates."""
        state = self.base.init(n_agents, capacity)
        return state, (self.base.read(state),)

    def update(
        self,
        state: tuple[Any, tuple[FloatArray, ...]],
        load: float,
        demands: FloatArray | None = None,
        weights: FloatArray | None = None,
    ) -> tuple[Any, tuple[FloatArray, ...]]:
        """Update the base and remember its new estimate (the last ``delay + 1`` kept)."""
        base, history = state
        base = self.base.update(base, load, demands, weights)
        return base, (*history, self.base.read(base))[-(self.delay + 1) :]

    def read(
        self, state: tuple[Any, tuple[FloatArray, ...]], *, seed: int = 0, step: int = 0
    ) -> FloatArray:
        """The oldest kept estimate: that of ``delay`` steps ago, or ``μ̂₀`` early on."""
        return state[1][0]


@dataclass(frozen=True, kw_only=True)
class NoisyBelief:
    """Adds independent Gaussian noise ``σ·z_{i,t}`` to each agent's estimate (floored at 0).

    The draws come from the counter-based stream of (seed, step, agent), so they do not
    depend on batch composition and the engine draws the same numbers.

    Attributes:
        base: The belief being corrupted.
        sigma: Noise standard deviation ``σ >= 0``.
    """

    base: BeliefModel
    sigma: float = 1.0

    def __post_init__(self) -> None:
        v.non_negative("noise", self.sigma)

    def init(self, n_agents: int, capacity: float) -> Any:
        """The base's state."""
        return self.base.init(n_agents, capacity)

    def update(
        self,
        state: Any,
        load: float,
        demands: FloatArray | None = None,
        weights: FloatArray | None = None,
    ) -> Any:
        """The base's update."""
        return self.base.update(state, load, demands, weights)

    def read(self, state: Any, *, seed: int = 0, step: int = 0) -> FloatArray:
        """The base's estimate plus noise, never below zero (a load is never negative)."""
        mean = self.base.read(state, seed=seed, step=step)
        z = np.array(
            [
                _rng.gaussian(_rng.stream_key(seed, step, _rng.NOISE_STREAM + i))
                for i in range(mean.shape[-1])
            ]
        )
        out: FloatArray = np.maximum(mean + self.sigma * z, 0.0)
        return out


def make_belief(
    kind: str = "ema",
    *,
    alpha: float = 0.2,
    window: int = 5,
    initial: float | None = None,
    private: bool = False,
    delay: int = 0,
    noise: float = 0.0,
) -> BeliefModel:
    """Build a belief by name, wrapped by a delay and then noise when they are non-zero."""
    model: BeliefModel
    if kind == "ema":
        model = EMABelief(alpha=alpha, initial=initial, private=private)
    elif kind == "last":
        model = LastBelief(initial=initial, private=private)
    elif kind == "window":
        model = WindowBelief(window=window, initial=initial, private=private)
    else:
        raise ValueError(f"belief={kind!r} is not known: choose one of {list(BELIEF_KINDS)}")
    if v.integer_at_least("delay", delay, 0) > 0:
        model = DelayedBelief(base=model, delay=delay)
    if v.non_negative("noise", noise) > 0:
        model = NoisyBelief(base=model, sigma=noise)
    return model

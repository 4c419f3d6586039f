"""Scorers for the congestion game: ``paper`` (docs/theory.md §2) and ``consistent``.

A scorer maps candidate demands and a :class:`LoadContext` to a private and a group score;
:class:`~swalab.swi.policy.SWIPolicy` combines them as ``(1 − λ)·private + λ·group``. All
arithmetic broadcasts, so the same functions score one agent's handful of candidates or
a whole batch of episodes × agents × candidates with identical results.

Both scorers predict welfare with :func:`swalab.theory.excess`, the payoff code the
environment pays with, evaluated at the effective capacity ``C_eff = C − m``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.theory.payoffs import excess

ContextT_contra = TypeVar("ContextT_contra", contravariant=True)


class Scorer(Protocol[ContextT_contra]):
    """Scores candidates; any callable of this shape plugs into :class:`SWIPolicy`."""

    def __call__(
        self, candidates: FloatArray, context: ContextT_contra
    ) -> tuple[FloatArray, FloatArray]:
        """Return ``(private, group)`` scores, each shaped like ``candidates``."""
        ...


@dataclass(frozen=True, kw_only=True)
class LoadContext:
    """What an agent knows when it scores candidates in a congestion game.

    Every field broadcasts against the candidates (a scalar, or an array with a trailing
    axis of 1 for batches).

    Attributes:
        others_load: Predicted load of everyone else, ``(N − 1)·μ̂`` under the EMA belief.
        x_max: The agent's demand cap (normalises the paper's private score).
        weight: The agent's impact ``w_i`` on the load.
        value: The agent's private value ``v_i`` per unit of demand.
    """

    others_load: ArrayLike
    x_max: ArrayLike
    weight: ArrayLike = 1.0
    value: ArrayLike = 1.0


@dataclass(frozen=True, kw_only=True)
class _LoadScorer:
    capacity: float
    beta: float
    margin: float = 2.0
    gamma: float = 0.02

    def __post_init__(self) -> None:
        c = v.positive("capacity", self.capacity)
        v.positive("beta", self.beta)
        v.in_range("margin", self.margin, 0.0, c)
        v.non_negative("gamma", self.gamma)

    @property
    def effective_capacity(self) -> float:
        """``C − m``: the load the scorer treats as full."""
        return self.capacity - self.margin

    def penalty(self, load: FloatArray) -> FloatArray:
        """Return the predicted welfare loss ``β·max(0, X̂ − C_eff) + γ·(X̂ − C_eff)²``."""
        c_eff = self.effective_capacity
        result: FloatArray = self.beta * excess(load, c_eff)
        if self.gamma:
            result = result + self.gamma * (load - c_eff) ** 2
        return result

    def predict(
        self, candidates: FloatArray, ctx: LoadContext
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return predicted load, own gain ``v·a`` and predicted welfare ``Ŵ``.

        Others' welfare contribution is taken equal to their load contribution, the
        paper's unit-value model: agents see others' loads, not their private values.
        """
        a = np.asarray(candidates, dtype=np.float64)
        others = np.asarray(ctx.others_load, dtype=np.float64)
        load = np.asarray(ctx.weight) * a + others
        gain = np.asarray(ctx.value) * a
        return load, gain, gain + others - self.penalty(load)


@dataclass(frozen=True, kw_only=True)
class PaperScorer(_LoadScorer):
    """The paper's scorer (docs/theory.md §2, reference run.py).

    ``private = a/x_max``; ``group = clip(Ŵ(X̂)/(Ŵ(C_eff) + ε), 0, 1)`` with
    ``Ŵ(X) = X − β·max(0, X − C_eff) − γ·(X − C_eff)²``. Its switching point is
    ``λ̃ = (C − m)/((C − m) + x_max(β − 1))``, not λ* (see
    :func:`swalab.theory.lambda_tilde`); the clip at 0 causes the lock-in of
    :func:`swalab.theory.lockin_belief`.

    Attributes:
        capacity: True capacity ``C``.
        beta: Severity ``β``.
        margin: Safety margin ``m``, ``0 ≤ m < C``.
        gamma: Centering strength ``γ ≥ 0`` (0 turns centering off).
        eps: Guard added to the normaliser ``Ŵ(C_eff) = C − m``.
    """

    eps: float = 1e-8
    name = "paper"

    def __call__(
        self, candidates: FloatArray, context: LoadContext
    ) -> tuple[FloatArray, FloatArray]:
        """Return the normalised private and group scores, both in [0, 1]."""
        _, _, predicted = self.predict(candidates, context)
        # Ŵ(C_eff) = C − m: no excess and no centering at the effective capacity. Both
        # normalisers multiply by a reciprocal, computed once, which the compiled engine
        # mirrors exactly (a division per candidate would halve its speed).
        inv_reference = 1.0 / (self.effective_capacity + self.eps)
        inv_x_max = 1.0 / np.asarray(context.x_max, dtype=np.float64)
        private: FloatArray = np.asarray(candidates, dtype=np.float64) * inv_x_max
        group: FloatArray = np.clip(predicted * inv_reference, 0.0, 1.0)
        return private, group


@dataclass(frozen=True, kw_only=True)
class ConsistentScorer(_LoadScorer):
    """Own predicted reward and predicted welfare per agent, on one common scale.

    ``private = R̂_i(a) = v·a − penalty(X̂)/N`` (the agent's share of the predicted loss)
    and ``group = Ŵ(X̂)/N``. Just above ``C_eff`` the combination changes at
    ``(1 − λ)(v − βw/N) + λ(v − βw)/N``, Theorem 1's marginal incentive, so with margin 0
    this scorer switches exactly at λ*.

    Attributes:
        n_agents: Number of agents ``N`` sharing the penalty.
    """

    n_agents: int
    name = "consistent"

    def __post_init__(self) -> None:
        super().__post_init__()
        v.integer_at_least("n_agents", self.n_agents, 2)

    def __call__(
        self, candidates: FloatArray, context: LoadContext
    ) -> tuple[FloatArray, FloatArray]:
        """Return ``(R̂_i, Ŵ/N)`` in units of demand."""
        load, gain, predicted = self.predict(candidates, context)
        private: FloatArray = gain - self.penalty(load) / self.n_agents
        group: FloatArray = predicted / self.n_agents
        return private, group


SCORERS = ("paper", "consistent")


def make_scorer(
    name: str,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    margin: float = 2.0,
    gamma: float = 0.02,
) -> PaperScorer | ConsistentScorer:
    """Build a scorer by name (``paper`` or ``consistent``).

    Raises:
        ValueError: For an unknown name or out-of-range parameters.
    """
    if name == "paper":
        return PaperScorer(capacity=capacity, beta=beta, margin=margin, gamma=gamma)
    if name == "consistent":
        return ConsistentScorer(
            n_agents=n_agents, capacity=capacity, beta=beta, margin=margin, gamma=gamma
        )
    raise ValueError(f"scorer={name!r} is not known: choose one of {list(SCORERS)}")

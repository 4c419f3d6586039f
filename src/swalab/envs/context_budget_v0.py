"""``context_budget_v0``: agents posting into one shared context window (paper §7.1).

The window holds ``budget`` tokens. Each round it starts with the team's critical
instructions (``critical`` tokens, the oldest content) and every agent appends one message
of ``ℓ_i ∈ [0, x_max]`` tokens, in an order that rotates each round (agent ``t mod N``
first). Overflow ``E = max(0, critical + Σℓ − budget)`` evicts the oldest content first:
the critical instructions (``min(critical, E)`` tokens), then the earliest messages.

Reward of agent i: ``value·kept_i − loss_cost·lost/critical`` (every agent's downstream
work suffers when instructions are lost); welfare is the sum. While only instructions are
evicted this is the congestion game with capacity ``budget − critical`` and severity
``β = loss_cost·N/(critical·value)``, so SWA agents stop lengthening messages iff
``λ ≥ (N − β)/(N − 1)`` (:func:`threshold`).

Two action modes: ``numeric`` (the action is the message length) and ``text`` (the action
is the message; its length is counted with ``tokenizer``, by default a word-and-punctuation
count, in LLM runs the model's own tokenizer).

Example:
    >>> from swalab.envs import context_budget_v0
    >>> env = context_budget_v0.parallel_env()
    >>> obs, infos = env.reset(seed=0)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from swalab._validate import FloatArray
from swalab.envs._actions import check_agents
from swalab.envs.dynamics import (
    LISTED_AGENTS,
    Dynamics,
    DynamicsEnv,
    Outcome,
    State,
    check_number,
    per_agent,
)

NAME = "context_budget_v0"
MODES = ("numeric", "text")

_WORDS = re.compile(r"\w+|[^\w\s]")


def count_words(text: str) -> int:
    """Default tokenizer: words and punctuation marks (the model's tokenizer in LLM runs)."""
    return len(_WORDS.findall(text))


def severity(n_agents: int, critical: float, value: float, loss_cost: float) -> float:
    """The congestion game's β this window is equivalent to: ``loss_cost·N/(critical·value)``."""
    return loss_cost * n_agents / (critical * value)


def threshold(n_agents: int, critical: float, value: float, loss_cost: float) -> float:
    """``(N − β)/(N − 1)`` with β from :func:`severity`."""
    return (n_agents - severity(n_agents, critical, value, loss_cost)) / (n_agents - 1)


@dataclass(frozen=True, kw_only=True)
class ContextBudget(Dynamics):
    """Parameters and pure dynamics of ``context_budget_v0``.

    Attributes:
        budget: Window size B in tokens.
        critical: Tokens of critical instructions at the window's start.
        value: Worth of each kept message token to its author.
        loss_cost: Cost per agent when all critical instructions are lost (pro rata).
        mode: ``numeric`` or ``text``.
    """

    name: ClassVar[str] = NAME
    unit: ClassVar[str] = "tokens"
    integer_actions: ClassVar[bool] = True
    per_agent: ClassVar[frozenset[str]] = frozenset({"last_lengths"})

    x_max: float = 128
    steps: int = 20
    budget: float = 512.0
    critical: float = 112.0
    value: float = 1.0
    loss_cost: float = 56.0
    mode: str = "numeric"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("budget", self.budget, 0, low_open=True)
        check_number("critical", self.critical, 0, self.budget, low_open=True)
        check_number("value", self.value, 0, low_open=True)
        check_number("loss_cost", self.loss_cost, 0)
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not known: choose one of {list(MODES)}")

    @property
    def message_capacity(self) -> float:
        """``budget − critical``: message tokens a round holds before instructions go."""
        return self.budget - self.critical

    def initial(self, batch: tuple[int, ...] = ()) -> State:
        """Round 0, nothing posted yet."""
        return {"t": np.zeros(batch), "last_lengths": np.zeros((*batch, self.n_agents))}

    def transition(
        self, state: Mapping[str, np.ndarray], actions: FloatArray
    ) -> tuple[State, Outcome]:
        """Append the round's messages in rotating order and evict the overflow."""
        a = np.asarray(actions, dtype=np.float64)
        n = self.n_agents
        t = np.asarray(state["t"])
        position = np.mod(np.arange(n) - t[..., None], n)  # agent i posts position-th
        earlier = position[..., :, None] < position[..., None, :]  # [j, i]: j before i
        before = np.einsum("...j,...ji->...i", a, earlier.astype(np.float64))
        total = a.sum(axis=-1)
        overflow = np.maximum(0.0, self.critical + total - self.budget)
        lost = np.minimum(self.critical, overflow)
        evicted_messages = np.maximum(0.0, overflow - self.critical)
        kept = a - np.clip(evicted_messages[..., None] - before, 0.0, a)
        rewards = self.value * kept - (self.loss_cost * lost / self.critical)[..., None]
        nxt: State = {"t": t + 1, "last_lengths": a + 0.0 * t[..., None]}
        out = Outcome(
            rewards=rewards,
            welfare=rewards.sum(axis=-1),
            load=total,
            capacity=np.full(np.shape(total), self.message_capacity),
            overloaded=overflow > 0,
            extras={"critical_lost": lost / self.critical, "kept": kept.sum(axis=-1)},
        )
        return nxt, out

    def switch_point(self) -> float:
        """:func:`threshold` of this window."""
        return threshold(self.n_agents, self.critical, self.value, self.loss_cost)

    def fair_share(self) -> float:
        """``(budget − critical)/N`` tokens per message."""
        return self.message_capacity / self.n_agents

    def board_space(self) -> spaces.Dict:
        """Round and last round's message lengths."""
        return spaces.Dict(
            {
                "step": spaces.Discrete(self.steps + 1),
                "last_lengths": spaces.Box(
                    0.0, float(self.x_max), shape=(self.n_agents,), dtype=np.float64
                ),
            }
        )

    def board(self, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The public board of one state."""
        lengths = np.asarray(state["last_lengths"], dtype=np.float64).copy()
        return {"step": int(state["t"]), "last_lengths": lengths}

    def describe(self, state: Mapping[str, np.ndarray], agent: int) -> str:
        """The window in words."""
        t = int(state["t"])
        order = [(t + j) % self.n_agents + 1 for j in range(self.n_agents)]
        lines = [
            f"Round: {t + 1} of {self.steps}",
            f"Shared context window: {self.budget:g} tokens. It starts with "
            f"{self.critical:g} tokens of critical team instructions; when messages overflow "
            f"the window, the oldest content (the instructions first) is evicted.",
            f"Posting order this round: agents {order}."
            if self.n_agents <= LISTED_AGENTS
            else f"Posting order this round: agent {order[0]} first, then by number; you are "
            f"number {order.index(agent + 1) + 1} of {self.n_agents} to post.",
            f"Each kept token of your message is worth {self.value:g} to you; losing all "
            f"instructions costs every agent {self.loss_cost:g}.",
        ]
        if t > 0:
            last = [round(x) for x in np.asarray(state["last_lengths"])]
            total = f" (total {sum(last)})" if len(last) <= LISTED_AGENTS else ""
            lines.append(f"Last round's message lengths: {per_agent(last, agent)}{total}")
        return "\n".join(lines)


class ContextBudgetEnv(DynamicsEnv):
    """``context_budget_v0``; in ``text`` mode actions are messages counted by ``tokenizer``."""

    def __init__(
        self,
        dynamics: ContextBudget,
        render_mode: str | None = None,
        tokenizer: Callable[[str], int] | None = None,
    ) -> None:
        """Wrap ``dynamics``; ``tokenizer`` counts a message's tokens in text mode."""
        super().__init__(dynamics, render_mode)
        self.tokenizer = tokenizer or count_words
        self.messages: list[str] = []

    def action_space(self, agent: str) -> spaces.Space[Any]:  # type: ignore[override]
        """A length Box in numeric mode, a ``Text`` space in text mode."""
        d = self.dynamics
        assert isinstance(d, ContextBudget)
        if d.mode == "numeric":
            return super().action_space(agent)
        return self._text_space(agent)

    @functools.cache  # noqa: B019 - one space object per agent
    def _text_space(self, agent: str) -> spaces.Text:
        return spaces.Text(max_length=int(self.dynamics.x_max))

    def actions_from(self, actions: Mapping[str, Any]) -> FloatArray:
        """Message lengths; text messages longer than ``x_max`` tokens are refused."""
        d = self.dynamics
        assert isinstance(d, ContextBudget)
        if d.mode == "numeric":
            return super().actions_from(actions)
        check_agents(actions, self.agents)
        lengths = []
        for agent in self.possible_agents:
            text = actions[agent]
            if not isinstance(text, str):
                raise ValueError(f"action for {agent}={text!r} is not a message (text mode)")
            n = self.tokenizer(text)
            if n > d.x_max:
                raise ValueError(
                    f"action for {agent} has {n} tokens: must have at most {d.x_max:g}"
                )
            lengths.append(float(n))
        self.messages = [str(actions[a]) for a in self.possible_agents]
        return np.array(lengths)


def parallel_env(
    render_mode: str | None = None, tokenizer: Callable[[str], int] | None = None, **params: Any
) -> ContextBudgetEnv:
    """Create ``context_budget_v0`` (PettingZoo convention); every parameter has a default."""
    return ContextBudgetEnv(ContextBudget(**params), render_mode, tokenizer)

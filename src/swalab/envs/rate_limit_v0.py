"""``rate_limit_v0``: tool agents sharing one API key behind a token bucket (paper §7.1).

Each step every agent sends ``a_i ∈ {0, …, x_max}`` calls (new work and retries alike).
The bucket refills ``rate`` tokens per step up to ``burst``; it admits
``min(Σ a, tokens)`` calls, shared in proportion to what each agent sent (the expected
outcome of random arrival order), and rejects the rest with 429s. A step that rejects more
than ``lockout_threshold`` calls is abusive; ``lockout_after`` abusive steps in a row lock
the key for ``lockout_steps`` steps, in which every call is refused and every agent pays
``lockout_cost`` per step (the "thundering herd" of §7.1). The bucket keeps refilling
while locked.

Reward of agent i: ``admitted_i − waste_cost·rejected_i − lockout_cost·[locked]``;
welfare is their sum: completed calls minus wasted ones minus the lockout's cost.

Threshold (derived like Theorem 1, checked by finite differences and simulation in the
tests): while the bucket binds (``X > tokens``), ``∂R_i/∂a_i = (1 + c)(X − a_i)·b/X² − c``
and ``∂W/∂a_i = −c`` (c = ``waste_cost``), so at the symmetric point ``X → b⁺`` SWA agents
stop adding calls iff ``λ ≥ λ_rl = (N − 1 − c)/(N − 1)`` — Theorem 1's λ* with β = 1 + c.
The lockout adds a cliff on top: its continuation cost (:meth:`RateLimit.continuation`)
makes even less social agents keep rejections under the threshold.

Example:
    >>> from swalab.envs import rate_limit_v0
    >>> env = rate_limit_v0.parallel_env()
    >>> obs, infos = env.reset(seed=0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from swalab._validate import FloatArray
from swalab.envs.dynamics import (
    Dynamics,
    DynamicsEnv,
    Outcome,
    State,
    check_number,
    per_agent,
)

NAME = "rate_limit_v0"


def threshold(n_agents: int, waste_cost: float) -> float:
    """``λ_rl = (N − 1 − c)/(N − 1)``: the weight above which agents stop causing 429s."""
    return (n_agents - 1 - waste_cost) / (n_agents - 1)


@dataclass(frozen=True, kw_only=True)
class RateLimit(Dynamics):
    """Parameters and pure dynamics of ``rate_limit_v0``.

    Attributes:
        rate: Tokens added per step.
        burst: Bucket size (the bucket starts full); ≥ rate.
        waste_cost: Cost ``c`` of each rejected call (wasted latency and quota).
        lockout_threshold: Rejected calls in one step above which the step is abusive.
        lockout_after: Abusive steps in a row that lock the key (0: never locks).
        lockout_steps: Steps a lockout lasts.
        lockout_cost: Cost per agent and locked step.
    """

    name: ClassVar[str] = NAME
    unit: ClassVar[str] = "API calls"
    integer_actions: ClassVar[bool] = True
    per_agent: ClassVar[frozenset[str]] = frozenset({"last_calls", "last_rejected"})

    x_max: float = 10
    steps: int = 30
    rate: float = 20.0
    burst: float = 20.0
    waste_cost: float = 0.5
    lockout_threshold: float = 10.0
    lockout_after: int = 2
    lockout_steps: int = 5
    lockout_cost: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("rate", self.rate, 0, low_open=True)
        check_number("burst", self.burst, self.rate)
        check_number("waste_cost", self.waste_cost, 0)
        check_number("lockout_threshold", self.lockout_threshold, 0)
        check_number("lockout_after", self.lockout_after, 0, integer=True)
        check_number("lockout_steps", self.lockout_steps, 1, integer=True)
        check_number("lockout_cost", self.lockout_cost, 0)

    def initial(self, batch: tuple[int, ...] = ()) -> State:
        """A full bucket, no lockout, no history."""
        n = self.n_agents
        return {
            "t": np.zeros(batch),
            "tokens": np.full(batch, float(self.burst)),
            "lock_left": np.zeros(batch),
            "streak": np.zeros(batch),
            "last_calls": np.zeros((*batch, n)),
            "last_rejected": np.zeros((*batch, n)),
        }

    def transition(
        self, state: Mapping[str, np.ndarray], actions: FloatArray
    ) -> tuple[State, Outcome]:
        """Refill, admit, reject, maybe lock; see the module docstring."""
        a = np.asarray(actions, dtype=np.float64)
        calls = a.sum(axis=-1)
        avail = np.minimum(self.burst, state["tokens"] + self.rate)
        locked = state["lock_left"] > 0
        admitted_total = np.where(locked, 0.0, np.minimum(calls, avail))
        share = admitted_total / np.where(calls > 0, calls, 1.0)
        admitted = a * share[..., None]
        rejected = a - admitted
        rejected_total = calls - admitted_total
        abusive = ~locked & (rejected_total > self.lockout_threshold)
        streak = np.where(abusive, state["streak"] + 1, 0.0)
        trigger = (streak >= self.lockout_after) & (self.lockout_after > 0)
        lock_left = np.where(
            locked, state["lock_left"] - 1, np.where(trigger, float(self.lockout_steps), 0.0)
        )
        rewards = admitted - self.waste_cost * rejected - self.lockout_cost * locked[..., None]
        nxt: State = {
            "t": state["t"] + 1,
            "tokens": avail - admitted_total,
            "lock_left": lock_left,
            "streak": np.where(trigger, 0.0, streak),
            "last_calls": a + 0.0 * avail[..., None],
            "last_rejected": rejected,
        }
        out = Outcome(
            rewards=rewards,
            welfare=rewards.sum(axis=-1),
            load=calls,
            capacity=np.where(locked, 0.0, avail),
            overloaded=locked | (rejected_total > 0),
            extras={
                "admitted": admitted_total,
                "rejected": rejected_total,
                "locked": locked.astype(np.float64),
                "tokens": avail,
            },
        )
        return nxt, out

    def continuation(self, state: Mapping[str, np.ndarray]) -> FloatArray:
        """The lockout ahead: each locked step costs every agent its fee and the rate."""
        cost = self.n_agents * self.lockout_cost + self.rate
        result: FloatArray = -state["lock_left"] * cost
        return result

    def switch_point(self) -> float:
        """:func:`threshold` of this key."""
        return threshold(self.n_agents, self.waste_cost)

    def fair_share(self) -> float:
        """``rate/N`` calls per agent: what the bucket sustains."""
        return self.rate / self.n_agents

    def board_space(self) -> spaces.Dict:
        """Step, tokens left, lockout state and last step's calls and rejections."""
        n, x = self.n_agents, float(self.x_max)
        return spaces.Dict(
            {
                "step": spaces.Discrete(self.steps + 1),
                "tokens": spaces.Box(0.0, float(self.burst), shape=(1,), dtype=np.float64),
                "lock_left": spaces.Discrete(self.lockout_steps + 1),
                "streak": spaces.Discrete(max(self.lockout_after, 1) + 1),
                "last_calls": spaces.Box(0.0, x, shape=(n,), dtype=np.float64),
                "last_rejected": spaces.Box(0.0, x, shape=(n,), dtype=np.float64),
            }
        )

    def board(self, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The public board of one state."""
        return {
            "step": int(state["t"]),
            "tokens": np.array([float(state["tokens"])]),
            "lock_left": int(state["lock_left"]),
            "streak": int(state["streak"]),
            "last_calls": np.asarray(state["last_calls"], dtype=np.float64).copy(),
            "last_rejected": np.clip(
                np.asarray(state["last_rejected"], dtype=np.float64), 0.0, float(self.x_max)
            ),
        }

    def describe(self, state: Mapping[str, np.ndarray], agent: int) -> str:
        """The limiter as a client sees it (rate-limit headers and last step's 429s)."""
        lines = [
            f"Step: {int(state['t']) + 1} of {self.steps}",
            f"Shared API key: a token bucket refills {self.rate:g} calls per step, holds at "
            f"most {self.burst:g}; {float(state['tokens']):g} tokens are left now.",
            f"More than {self.lockout_threshold:g} rejected calls in {self.lockout_after} steps "
            f"in a row lock the key for {self.lockout_steps} steps (every call refused, "
            f"{self.lockout_cost:g} cost per agent and step).",
            f"Each completed call is worth 1 to its sender; each rejected call costs "
            f"{self.waste_cost:g}.",
        ]
        if int(state["lock_left"]) > 0:
            lines.append(f"The key is LOCKED for {int(state['lock_left'])} more steps.")
        if int(state["t"]) > 0:
            calls = [round(x) for x in np.asarray(state["last_calls"])]
            rej = [round(float(x), 1) for x in np.asarray(state["last_rejected"])]
            lines.append(
                f"Last step calls per agent: {per_agent(calls, agent)}; "
                f"rejected: {per_agent(rej, agent)}"
            )
        return "\n".join(lines)


def parallel_env(render_mode: str | None = None, **params: Any) -> DynamicsEnv:
    """Create ``rate_limit_v0`` (PettingZoo convention); every parameter has a default."""
    return DynamicsEnv(RateLimit(**params), render_mode=render_mode)

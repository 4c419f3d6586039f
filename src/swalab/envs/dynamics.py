"""Pure dynamics shared by the resource dilemmas, and the ``ParallelEnv`` built on them.

Each dilemma (``rate_limit_v0``, ``context_budget_v0``, ``commons_v0``) is one
:class:`Dynamics`: a frozen parameter object whose :meth:`~Dynamics.transition` maps a state
and a joint action to the next state and an :class:`Outcome`. Every function broadcasts
over leading batch axes, so the same code steps one environment, every episode of a sweep
in lockstep, and every counterfactual candidate an SWI agent scores: the welfare model the
group scorer uses *is* the payoff code the environment pays with, plus an explicit
:meth:`~Dynamics.continuation` term for consequences that arrive after the step (a lockout,
a depleted stock).

State is a mapping of arrays: fields named in :attr:`Dynamics.per_agent` end in an agent
axis, the others have the batch shape only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from swalab import reference as ref
from swalab._validate import FloatArray
from swalab.envs._actions import action_value, check_agents, step_result

State = dict[str, np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """What one joint action did (every array has the batch shape; rewards add an agent axis).

    Attributes:
        rewards: Each agent's reward.
        welfare: Σ rewards (kept separately so checks can compare the two).
        load: How much of the resource the step asked for (calls, tokens, harvest).
        capacity: What ``load`` is compared with in this step.
        overloaded: Whether the step broke the shared resource (429s or lockout, lost
            critical context, over-harvest or collapse).
        extras: Environment-specific per-step quantities, batch shape (+ agent axis).
    """

    rewards: FloatArray
    welfare: FloatArray
    load: FloatArray
    capacity: FloatArray
    overloaded: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def check_number(
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` lies in the allowed range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        bounds = f"{'>' if low_open else '>='} {low:g}" + (
            f" and <= {high:g}" if math.isfinite(high) else ""
        )
        raise ValueError(f"{name}={value!r} is out of range: must be {kind} {bounds}")


#: Most agents whose values a prompt lists one by one; above, a summary (a prompt must not
#: grow with the population: at 1,000 agents a list would not fit a small model's context).
LISTED_AGENTS = 20


def per_agent(values: list[Any], agent: int) -> str:
    """Per-agent values as a prompt shows them: listed for a few agents, else summarised.

    ``[3, 4, 5]`` up to :data:`LISTED_AGENTS` agents; above, ``1000 agents: mean 4.2, from 0
    to 10, total 4200, yours 3`` (``values`` already rounded as they are shown).
    """
    if len(values) <= LISTED_AGENTS:
        return str(values)
    arr = np.asarray(values, dtype=np.float64)
    return (
        f"{arr.size} agents: mean {arr.mean():.3g}, from {min(values)} to {max(values)}, "
        f"total {arr.sum():.6g}, yours {values[agent]}"
    )


@dataclass(frozen=True, kw_only=True)
class Dynamics:
    """Base of every dilemma's parameters and pure dynamics.

    Attributes:
        n_agents: Agents N (≥ 2).
        x_max: Largest action of every agent.
        steps: Horizon T.
    """

    name: ClassVar[str] = ""
    #: What one unit of action is, in the environment's words (prompts, reports).
    unit: ClassVar[str] = ""
    #: Actions are whole numbers (calls); candidate grids and prompts round to 1.
    integer_actions: ClassVar[bool] = False
    #: State fields with a trailing agent axis.
    per_agent: ClassVar[frozenset[str]] = frozenset()

    n_agents: int = ref.N_AGENTS
    x_max: float = ref.X_MAX
    steps: int = ref.STEPS

    def __post_init__(self) -> None:
        check_number("n_agents", self.n_agents, 2, integer=True)
        check_number("x_max", self.x_max, 0, low_open=True, integer=self.integer_actions)
        check_number("steps", self.steps, 1, integer=True)

    # -- what each environment defines -------------------------------------------------
    def initial(self, batch: tuple[int, ...] = ()) -> State:
        """The state before the first step, for a batch of episodes."""
        raise NotImplementedError

    def transition(
        self, state: Mapping[str, np.ndarray], actions: FloatArray
    ) -> tuple[State, Outcome]:
        """Play ``actions`` (batch + agent axis) from ``state``; pure, never mutates."""
        raise NotImplementedError

    def continuation(self, state: Mapping[str, np.ndarray]) -> FloatArray:
        """Welfare the welfare model expects after a step that left ``state`` (default 0).

        The SWI scorers add it to the step's welfare (and a 1/N share to each agent's own
        reward): it is how a one-step model sees a lockout or a depleted stock coming.
        """
        return np.zeros(np.shape(state["t"]))

    def fair_share(self) -> float:
        """One agent's share of the sustainable use: the belief agents start from."""
        raise NotImplementedError

    def switch_point(self) -> float:
        """The closed-form λ at which SWI agents with this welfare model stop overloading."""
        return float("nan")

    def board(self, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The public observation of one (unbatched) state, inside :meth:`board_space`."""
        raise NotImplementedError

    def board_space(self) -> spaces.Dict:
        """The observation space of :meth:`board`."""
        raise NotImplementedError

    def describe(self, state: Mapping[str, np.ndarray], agent: int) -> str:
        """The situation in words, for LLM prompts (one unbatched state)."""
        raise NotImplementedError

    # -- shared machinery --------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The parameters as plain data (stored with results)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def expand(self, state: Mapping[str, np.ndarray], axes: int) -> State:
        """Insert ``axes`` new axes after the batch axes (for counterfactual candidates)."""
        out: State = {}
        for key, value in state.items():
            arr = np.asarray(value)
            at = arr.ndim - (1 if key in self.per_agent else 0)
            out[key] = arr.reshape(arr.shape[:at] + (1,) * axes + arr.shape[at:])
        return out

    def counterfactual(
        self, state: Mapping[str, np.ndarray], belief: FloatArray, candidates: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Every agent's predicted own reward and welfare for each of its candidates.

        The others are predicted to play ``belief`` (their mean action). Own reward and
        welfare both include the continuation: welfare in full, own reward a 1/N share.

        Args:
            state: Batch state, batch shape ``B``.
            belief: ``B + (N,)``: each agent's estimate of the others' mean action.
            candidates: ``(M,)`` candidate actions shared by all agents, or ``B + (N, M)``.

        Returns:
            ``(own, welfare)``, each ``B + (N, M)``.
        """
        n = self.n_agents
        b = np.asarray(belief, dtype=np.float64)
        cands = np.asarray(candidates, dtype=np.float64)
        batch = b.shape[:-1]
        cands = np.broadcast_to(cands, (*batch, n, cands.shape[-1]))
        m = cands.shape[-1]
        joint = np.repeat(b[..., :, None, None], n, axis=-1)  # B + (N, 1, N)
        joint = np.broadcast_to(joint, (*batch, n, m, n)).copy()
        idx = np.arange(n)
        joint[..., idx, :, idx] = np.moveaxis(cands, -2, 0)
        nxt, out = self.transition(self.expand(state, 2), joint)
        cont = self.continuation(nxt)
        sel = np.broadcast_to(idx.reshape(n, 1, 1), (*out.rewards.shape[:-1], 1))
        own = np.take_along_axis(out.rewards, sel, axis=-1)[..., 0]
        welfare = out.welfare + cont
        return own + cont / n, welfare


class DynamicsEnv(ParallelEnv[str, dict[str, Any], Any]):  # type: ignore[misc]
    """A dilemma's :class:`Dynamics` behind PettingZoo's ``ParallelEnv`` API.

    Every agent sees the same public board (:meth:`Dynamics.board`). Infos carry ``load``,
    ``capacity``, ``excess``, ``welfare``, ``overloaded`` and the dynamics' extras of the
    step just played. Invalid actions raise ``ValueError`` and leave the episode as it was.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, dynamics: Dynamics, render_mode: str | None = None) -> None:
        """Wrap ``dynamics``; ``render_mode`` is None or ``"ansi"``."""
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r} is not supported: use None or 'ansi'")
        self.dynamics = dynamics
        self.metadata = {**self.metadata, "name": dynamics.name}  # type: ignore[misc]
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(dynamics.n_agents)]
        self.agents: list[str] = []
        self.state: State = dynamics.initial()

    @functools.cache  # noqa: B019 - one space object per agent, as PettingZoo requires
    def observation_space(self, agent: str) -> spaces.Dict:
        """The public board's space."""
        return self.dynamics.board_space()

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space[Any]:
        """``[0, x_max]`` (a one-element Box; whole numbers for integer actions)."""
        d = self.dynamics
        if d.integer_actions:
            return spaces.Discrete(int(d.x_max) + 1)
        return spaces.Box(0.0, float(d.x_max), shape=(1,), dtype=np.float64)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Start an episode; the dynamics are deterministic, so ``seed`` seeds spaces only."""
        if seed is not None:
            for i, agent in enumerate(self.possible_agents):
                self.action_space(agent).seed(seed + i)
        self.agents = list(self.possible_agents)
        self.state = self.dynamics.initial()
        return self._observations(), {a: {} for a in self.agents}

    def _observations(self) -> dict[str, Any]:
        return {a: self.dynamics.board(self.state) for a in self.agents}

    def actions_from(self, actions: Mapping[str, Any]) -> FloatArray:
        """The joint action vector, refusing unknown, missing or invalid entries."""
        check_agents(actions, self.agents)
        d = self.dynamics
        return np.array(
            [
                action_value(a, actions[a], d.x_max, integer=d.integer_actions)
                for a in self.possible_agents
            ]
        )

    def play(
        self, joint: FloatArray
    ) -> tuple[
        dict[str, Any],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Step with an already validated joint action vector."""
        if not self.agents:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        nxt, out = self.dynamics.transition(self.state, joint)
        self.state = nxt
        info: dict[str, Any] = {
            "step": int(nxt["t"]),
            "load": float(out.load),
            "capacity": float(out.capacity),
            "excess": max(0.0, float(out.load) - float(out.capacity)),
            "welfare": float(out.welfare),
            "overloaded": bool(out.overloaded),
        }
        for key, value in out.extras.items():
            arr = np.asarray(value)
            info[key] = arr.tolist() if arr.ndim else float(arr)
        done = int(nxt["t"]) >= self.dynamics.steps
        result = step_result(
            self._observations(),
            np.asarray(out.rewards).tolist(),
            self.possible_agents,
            list(self.agents),
            info,
            done,
        )
        if done:
            self.agents = []
        return result

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[
        dict[str, Any],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Play one joint action."""
        if not self.agents:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        return self.play(self.actions_from(actions))

    def render(self) -> str | None:
        """The board in words (``ansi`` mode only)."""
        return self.dynamics.describe(self.state, 0) if self.render_mode == "ansi" else None

    def close(self) -> None:
        """Release nothing: the environment holds no external resources."""

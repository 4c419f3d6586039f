"""``congestion_v0``: N agents request demand from one resource of capacity C (paper §5).

Each step every agent chooses a demand ``x_i ∈ [0, x_max_i]`` at once; the load
``X = Σ w_i x_i`` is compared with capacity and everyone pays ``(β/N)·max(0, X − C)``.
Rewards come from :func:`swalab.theory.congestion_payoffs`, the function the SWI scorers
evaluate counterfactual candidates with, so predictions never drift from what is paid.

Every parameter defaults to the paper's reference configuration (N=5, C=20, β=1.6,
x_max=10, T=20). The version suffix changes whenever payoffs or observations change, so
stored results stay comparable.

Example:
    >>> from swalab.envs import congestion_v0
    >>> env = congestion_v0.parallel_env()
    >>> obs, infos = env.reset(seed=0)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from swalab import reference as ref
from swalab._validate import FloatArray
from swalab._validate import integer_at_least as _int_at_least
from swalab.envs._actions import action_value, check_agents, step_result
from swalab.theory.equilibrium import Game
from swalab.theory.payoffs import Payoffs, congestion_payoffs

NAME = "congestion_v0"

PerAgent = float | Sequence[float] | FloatArray


class CongestionEnv(ParallelEnv[str, dict[str, Any], FloatArray]):  # type: ignore[misc]
    """The repeated congestion game as a PettingZoo ``ParallelEnv``.

    Observation (the same public board for every agent, as in the paper's prompts):
    ``step`` (0 before the first move), ``last_demands`` (zeros before the first move),
    ``last_load`` and ``overloaded`` of the previous step. Infos carry ``load``,
    ``excess``, ``welfare`` and ``overloaded`` of the step just played. The episode ends
    after ``steps`` moves with every agent terminated (the horizon is part of the game and
    visible in the observation, so this is a termination, not a truncation).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": NAME,
        "render_modes": ["ansi"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        n_agents: int = ref.N_AGENTS,
        capacity: float = ref.CAPACITY,
        beta: float = ref.BETA,
        x_max: PerAgent = ref.X_MAX,
        steps: int = ref.STEPS,
        weights: PerAgent | None = None,
        values: PerAgent | None = None,
        render_mode: str | None = None,
    ) -> None:
        """Create the environment; see the module docstring for the parameters' meaning.

        Raises:
            ValueError: If a parameter is out of range (the message names it).
        """
        self.game = Game.build(
            n_agents=n_agents,
            capacity=capacity,
            beta=beta,
            x_max=x_max,
            weights=weights,
            values=values,
        )
        self.steps = _int_at_least("steps", steps, 1)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r} is not supported: use None or 'ansi'")
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.game.n_agents)]
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._t = 0
        self._last = np.zeros(self.game.n_agents)
        self._last_pay: Payoffs | None = None

    @functools.cache  # noqa: B019 - one space object per agent for the env's lifetime
    def observation_space(self, agent: str) -> spaces.Dict:
        """Return the board's space (the same object on every call, as PettingZoo requires)."""
        g = self.game
        max_load = float(np.dot(g.weights, g.x_max))
        return spaces.Dict(
            {
                "step": spaces.Discrete(self.steps + 1),
                "last_demands": spaces.Box(0.0, g.x_max, dtype=np.float64),
                "last_load": spaces.Box(0.0, max_load, shape=(1,), dtype=np.float64),
                "overloaded": spaces.Discrete(2),
            }
        )

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Box:
        """Return the demand interval ``[0, x_max_i]`` as a one-element float64 Box."""
        return spaces.Box(
            0.0, float(self.game.x_max[self._index[agent]]), shape=(1,), dtype=np.float64
        )

    def _observations(self) -> dict[str, dict[str, Any]]:
        load = 0.0 if self._last_pay is None else float(self._last_pay.load)
        over = 0 if self._last_pay is None else int(self._last_pay.overloaded)
        board = {
            "step": self._t,
            "last_demands": self._last.copy(),
            "last_load": np.array([load]),
            "overloaded": over,
        }
        return {
            a: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in board.items()}
            for a in self.agents
        }

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start a new episode; the game is deterministic, so ``seed`` only seeds spaces."""
        if seed is not None:
            for i, agent in enumerate(self.possible_agents):
                self.action_space(agent).seed(seed + i)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._last = np.zeros(self.game.n_agents)
        self._last_pay = None
        return self._observations(), {a: {} for a in self.agents}

    def demands_from(self, actions: Mapping[str, Any]) -> FloatArray:
        """Return the joint demand vector for ``actions``, rejecting any invalid entry."""
        check_agents(actions, self.agents)
        return np.array(
            [
                action_value(a, actions[a], float(self.game.x_max[self._index[a]]))
                for a in self.possible_agents
            ],
            dtype=np.float64,
        )

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[
        dict[str, dict[str, Any]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Play one joint action; see :class:`CongestionEnv` for what comes back."""
        if not self.agents:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        demands = self.demands_from(actions)
        g = self.game
        pay = congestion_payoffs(demands, g.capacity, g.beta, g.weights, g.values)
        self._t += 1
        self._last = demands
        self._last_pay = pay
        info = {
            "step": self._t,
            "load": float(pay.load),
            "excess": float(pay.excess),
            "welfare": float(pay.welfare),
            "overloaded": bool(pay.overloaded),
        }
        done = self._t >= self.steps
        result = step_result(
            self._observations(),
            np.asarray(pay.rewards).tolist(),
            self.possible_agents,
            list(self.agents),
            info,
            done,
        )
        if done:
            self.agents = []
        return result

    def board_text(self) -> str:
        """Return the public board in the words of the paper's reference prompt."""
        g = self.game
        lines = [
            f"Time step: {self._t}",
            f"Capacity: {g.capacity:g}",
            f"Penalty model: if total > C, penalty per agent = (beta/n)*(total-C), beta={g.beta:g}",
        ]
        if self._last_pay is None:
            lines.append("Last turn: none")
        else:
            status = "OVERLOADED" if self._last_pay.overloaded else "SAFE"
            lines.append(f"Last demands: {[round(float(x), 4) for x in self._last]}")
            lines.append(f"Last total: {float(self._last_pay.load):.2f} ({status})")
        return "\n".join(lines)

    def render(self) -> str | None:
        """Return the board as text in ``ansi`` mode (nothing otherwise)."""
        return self.board_text() if self.render_mode == "ansi" else None

    def close(self) -> None:
        """Release nothing: the environment holds no external resources."""


def parallel_env(**params: Any) -> CongestionEnv:
    """Create ``congestion_v0`` (PettingZoo convention); every parameter has a default."""
    return CongestionEnv(**params)

"""Joint actions in, step results out, as every swalab environment handles them.

Actions are refused, never clipped; a step's result is PettingZoo's five dicts with every
live agent terminated together at the horizon (it is part of the game and visible).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def check_agents(actions: Mapping[str, Any], live: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``actions`` names exactly the live agents."""
    unknown = set(actions) - set(live)
    if unknown:
        raise ValueError(f"actions name agents that are not live: {sorted(unknown)}")
    missing = [a for a in live if a not in actions]
    if missing:
        raise ValueError(f"actions are missing for live agents {missing}")


def step_result(
    obs: dict[str, Any],
    rewards: Sequence[float],
    possible: Sequence[str],
    live: Sequence[str],
    info: dict[str, Any],
    done: bool,
) -> tuple[
    dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]:
    """PettingZoo's ``(obs, rewards, terminations, truncations, infos)`` of one step.

    Args:
        obs: Observations of the live agents.
        rewards: Every possible agent's reward, in ``possible`` order.
        possible: All agent names.
        live: The agents that acted this step.
        info: The step's info, copied to every live agent.
        done: Whether the horizon is reached (every live agent terminates).
    """
    paid = {a: float(r) for a, r in zip(possible, rewards, strict=True) if a in live}
    return (
        obs,
        paid,
        dict.fromkeys(live, done),
        dict.fromkeys(live, False),
        {a: dict(info) for a in live},
    )


def action_value(agent: str, action: Any, x_max: float, *, integer: bool = False) -> float:
    """The one number inside ``action``, or ``ValueError`` naming the agent and the range."""
    import numpy as np

    arr = np.asarray(action, dtype=np.float64) if not isinstance(action, str) else None
    if arr is None or arr.size != 1:
        raise ValueError(
            f"action for {agent}={action!r} is not one number: must be a demand in [0, {x_max:g}]"
        )
    value = float(arr.reshape(()))
    if math.isnan(value) or not 0.0 <= value <= x_max:
        raise ValueError(
            f"action for {agent}={value!r} is out of range: must lie in [0, {x_max:g}]"
        )
    if integer and not value.is_integer():
        raise ValueError(f"action for {agent}={value!r} is not a whole number of calls")
    return value

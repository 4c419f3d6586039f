"""Agents that do not use the SWI rule: the outsiders a socially weighted group must absorb.

GovSim's "greedy newcomer" and the position paper's "alignment hijacking" ask what happens
when one member of a group plays by other rules. Each kind is a pure function of the public
board (last step's load and the agent's own last demand) and, for ``random``, of the
counter-based stream of (seed, step, agent), so the engine compiles the same rule
(:mod:`swalab.swi._kernels`) and both paths play identical episodes.

Kinds:
    ``swi``: the socially weighted rule (not an outsider; decided by :class:`SWIPolicy`).
    ``greedy``: always ``x_max`` (Proposition 1's selfish best response under overload).
    ``fixed``: always ``demand`` (capped at ``x_max``).
    ``tit_for_tat``: ``demand`` (default the fair share ``C/N``) on the first step and
        after any step with ``X ≤ C``; ``x_max`` after an overloaded step.
    ``random``: a uniform draw from the demand grid ``{0, step, …, x_max}``.
    ``adversary``: maximises the others' overload at the least cost to itself: expecting
        the others to repeat their last load ``L = X − w_i·x_i``, it asks the smallest
        grid demand that lifts the load strictly above ``C`` (capped at ``x_max``), and
        nothing when the others overload without it. Before any step it assumes
        ``L = (N − 1)·C/N``.
"""

from __future__ import annotations

import math

from swalab import _validate as v
from swalab.swi import _rng

AGENT_KINDS = ("swi", "greedy", "fixed", "tit_for_tat", "random", "adversary")
#: Integer codes the engine uses, in :data:`AGENT_KINDS` order.
KIND_CODES = {kind: code for code, kind in enumerate(AGENT_KINDS)}
#: Kinds whose ``demand`` parameter is used (``fixed`` requires it).
TAKES_DEMAND = ("fixed", "tit_for_tat")


def check_kind(name: str, kind: str, demand: float | None) -> str:
    """Return ``kind`` if known and given what it needs, else raise naming ``name``."""
    if kind not in AGENT_KINDS:
        raise ValueError(
            f"{name}={kind!r} is not a known agent kind: choose one of {list(AGENT_KINDS)}"
        )
    if kind == "fixed" and (demand is None or math.isnan(demand)):
        raise ValueError(f"{name}='fixed' needs a demand")
    if demand is not None and not math.isnan(demand):
        if kind not in TAKES_DEMAND:
            raise ValueError(f"{name}={kind!r} takes no demand (only {list(TAKES_DEMAND)} do)")
        v.non_negative("demand", demand)
    return kind


def outsider_demand(
    kind: str,
    *,
    demand: float,
    x_max: float,
    weight: float,
    capacity: float,
    n_agents: int,
    grid_step: float,
    last_load: float | None,
    last_own: float | None,
    seed: int,
    step: int,
    agent: int,
) -> float:
    """Return the demand an outsider of ``kind`` plays this step.

    Args:
        kind: One of :data:`AGENT_KINDS` other than ``swi``.
        demand: The kind's demand parameter (NaN: the default, ``C/N``).
        x_max: The agent's cap.
        weight: Its impact ``w_i`` on the load.
        capacity: ``C``.
        n_agents: ``N``.
        grid_step: Spacing of the demand grid (``random``, ``adversary``).
        last_load: Load of the previous step (``None`` before the first).
        last_own: The agent's own previous demand (``None`` before the first).
        seed: Episode seed (names the ``random`` stream with ``step`` and ``agent``).
        step: Step index.
        agent: Agent index.
    """
    if kind == "greedy":
        return x_max
    if kind == "fixed":
        return min(demand, x_max)
    if kind == "tit_for_tat":
        cooperate = capacity / n_agents if math.isnan(demand) else demand
        if last_load is None or last_load <= capacity:
            return min(cooperate, x_max)
        return x_max
    if kind == "random":
        size = math.floor(x_max / grid_step + 1e-9) + 1
        u = _rng.uniform(_rng.stream_key(seed, step, _rng.OUTSIDER_STREAM + agent), 0)
        return min(math.floor(u * size) * grid_step, x_max)
    if kind == "adversary":
        if last_load is None or last_own is None:
            others = (n_agents - 1) * capacity / n_agents
        else:
            others = last_load - weight * last_own
        if others > capacity:
            return 0.0
        need = (capacity - others) / weight
        return min(math.floor(need / grid_step + 1.0 + 1e-9) * grid_step, x_max)
    raise ValueError(f"kind={kind!r} is not an outsider: choose one of {list(AGENT_KINDS[1:])}")

"""The model-based SWI experiment: one frozen config that builds every part of an episode.

:class:`SimulationConfig` is what the per-agent loop (:mod:`~swalab.swi.simulation`), the
lockstep engine (:mod:`~swalab.swi.engine`) and the λ sweep (:mod:`~swalab.swi.sweep`)
share; it knows how to build the environment, the candidate source, the scoring policy and
the belief model, and checks every field on construction, so a bad value fails with its
name before any episode starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from swalab import _validate as v
from swalab import reference as ref
from swalab.envs.congestion_v0 import CongestionEnv
from swalab.swi import _rng
from swalab.swi.beliefs import BELIEF_KINDS, BeliefModel, make_belief
from swalab.swi.candidates import (
    AnchorCandidates,
    CandidateSource,
    GridCandidates,
    RandomGridCandidates,
)
from swalab.swi.outsiders import check_kind
from swalab.swi.policy import SWIPolicy
from swalab.swi.scorers import make_scorer

CANDIDATE_MODES = ("grid", "random", "anchors")
HORIZONS = ("fixed", "geometric")
#: A geometric horizon is cut at this multiple of its mean (probability about e^-20).
HORIZON_CAP = 20


def realized_horizon(horizon: str, steps: int, seed: int) -> int:
    """The number of steps an episode plays: ``steps``, or a seeded geometric draw.

    A geometric horizon (support 1, 2, …, mean ``steps``) hides the last step from the
    agents, so nothing invites backward induction; the draw comes from the counter-based
    stream of the seed, so every path and executor plays the same T.
    """
    if horizon == "fixed" or steps == 1:
        return steps
    if horizon != "geometric":
        raise ValueError(f"horizon={horizon!r} is not known: choose one of {list(HORIZONS)}")
    u = _rng.uniform(_rng.stream_key(seed, 0, _rng.HORIZON_STREAM), 0)
    draw = 1 + math.floor(math.log1p(-u) / math.log1p(-1.0 / steps))
    return min(draw, HORIZON_CAP * steps)


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """A model-based SWI experiment; defaults are the paper's reference configuration.

    Attributes:
        n_agents: Agents ``N``.
        capacity: Capacity ``C``.
        beta: Severity ``β``.
        x_max: Demand cap, one for all agents or one per agent.
        weights: Per-agent impacts w_i on the load (default 1).
        values: Per-agent private values v_i (default 1).
        steps: Horizon ``T``.
        k: Random draws per agent and step (``candidates="random"``).
        grid_step: Spacing of the demand grid candidates are taken from.
        candidates: ``"grid"`` (the whole grid), ``"random"`` (``k`` seeded draws) or
            ``"anchors"`` (no proposals: the anchors alone).
        anchors: Always-present candidates, clipped to ``[0, x_max]``.
        scorer: ``"paper"`` or ``"consistent"``.
        margin: Safety margin ``m``.
        gamma: Centering strength (0 turns centering off).
        alpha: EMA smoothing.
        initial_belief: ``μ̂₀``; ``None`` means ``C/N``.
        belief_kind: ``"ema"`` (paper), ``"last"`` or ``"window"``.
        window: Observations a window belief pools.
        private: Each agent observes the others' mean rather than the public mean.
        delay: Agents decide with the belief of ``delay`` steps earlier.
        noise: Standard deviation of Gaussian noise on every agent's belief.
        agents: Per-agent kinds (:data:`~swalab.swi.outsiders.AGENT_KINDS`); ``None``
            means every agent uses SWI.
        agent_demands: Per-agent demand parameter of ``fixed`` / ``tit_for_tat`` agents
            (NaN: the default).
        horizon: ``"fixed"`` (``steps`` steps) or ``"geometric"`` (mean ``steps``).
    """

    n_agents: int = ref.N_AGENTS
    capacity: float = ref.CAPACITY
    beta: float = ref.BETA
    x_max: float | tuple[float, ...] = ref.X_MAX
    weights: tuple[float, ...] | None = None
    values: tuple[float, ...] | None = None
    steps: int = ref.STEPS
    k: int = ref.K
    grid_step: float = ref.GRID_STEP
    candidates: str = "grid"
    anchors: tuple[float, ...] = ref.ANCHORS
    scorer: str = "paper"
    margin: float = ref.MARGIN
    gamma: float = ref.GAMMA
    alpha: float = ref.ALPHA
    initial_belief: float | None = None
    belief_kind: str = "ema"
    window: int = 5
    private: bool = False
    delay: int = 0
    noise: float = 0.0
    agents: tuple[str, ...] | None = None
    agent_demands: tuple[float, ...] | None = None
    horizon: str = "fixed"

    def __post_init__(self) -> None:
        if self.candidates not in CANDIDATE_MODES:
            known = list(CANDIDATE_MODES)
            raise ValueError(f"candidates={self.candidates!r} is not known: choose one of {known}")
        object.__setattr__(self, "anchors", v.float_list("anchors", self.anchors))
        # Building every part once validates all fields with messages that name them.
        for name in ("x_max", "weights", "values"):
            value = getattr(self, name)
            if isinstance(value, list | tuple | np.ndarray):
                object.__setattr__(self, name, v.float_list(name, value))
        if self.horizon not in HORIZONS:
            raise ValueError(
                f"horizon={self.horizon!r} is not known: choose one of {list(HORIZONS)}"
            )
        self.agent_kinds()
        self.env()
        self.candidate_source()
        self.scoring_policy()
        self.belief()

    def agent_kinds(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Every agent's kind and demand parameter (NaN: none or the default), checked."""
        n = v.integer_at_least("n_agents", self.n_agents, 2)
        kinds = ("swi",) * n if self.agents is None else tuple(self.agents)
        demands = (math.nan,) * n if self.agent_demands is None else self.agent_demands
        for name, seq in (("agents", kinds), ("agent_demands", demands)):
            if len(seq) != n:
                raise ValueError(f"{name} has {len(seq)} entries: must have one per agent ({n})")
        for i, (kind, demand) in enumerate(zip(kinds, demands, strict=True)):
            check_kind(f"agents[{i}]", kind, float(demand))
        return kinds, tuple(float(d) for d in demands)

    def realized_steps(self, seed: int) -> int:
        """The horizon episode ``seed`` plays (see :func:`realized_horizon`)."""
        return realized_horizon(self.horizon, self.steps, seed)

    def env(self, steps: int | None = None) -> CongestionEnv:
        """Return a fresh ``congestion_v0`` with this game's parameters."""
        return CongestionEnv(
            n_agents=self.n_agents,
            capacity=self.capacity,
            beta=self.beta,
            x_max=self.x_max,
            steps=self.steps if steps is None else steps,
            weights=self.weights,
            values=self.values,
        )

    def candidate_source(self) -> CandidateSource:
        """Return the proposal source named by ``candidates`` (per-agent caps included)."""
        if self.candidates == "grid":
            return GridCandidates(x_max=self.x_max, step=self.grid_step)
        if self.candidates == "anchors":
            if not self.anchors:
                raise ValueError("candidates='anchors' needs at least one anchor (anchors=[])")
            return AnchorCandidates()
        return RandomGridCandidates(x_max=self.x_max, k=self.k, step=self.grid_step)

    def scoring_policy(self) -> SWIPolicy:
        """Return the SWI policy with the named scorer (λ is given per decision)."""
        scorer = make_scorer(
            self.scorer,
            n_agents=self.n_agents,
            capacity=self.capacity,
            beta=self.beta,
            margin=self.margin,
            gamma=self.gamma,
        )
        return SWIPolicy(scorer=scorer)

    def belief(self) -> BeliefModel:
        """Return the belief model, wrapped by its delay and noise."""
        if self.belief_kind not in BELIEF_KINDS:
            raise ValueError(
                f"belief_kind={self.belief_kind!r} is not known: choose one of {list(BELIEF_KINDS)}"
            )
        return make_belief(
            self.belief_kind,
            alpha=self.alpha,
            window=self.window,
            initial=self.initial_belief,
            private=self.private,
            delay=self.delay,
            noise=self.noise,
        )

"""One adapter from a planned sweep cell to the objects that play it.

A cell's config is data (pydantic, from YAML); the engine, the per-agent loop, the LLM
runner and the dilemma runner take library objects. Every translation between the two is
here, once: :func:`simulation` (congestion game, scorer, belief, population), :func:`protocol`
(how an LLM is asked), :func:`dynamics` and :func:`dilemma_agents` (resource dilemmas).
"""

from __future__ import annotations

from typing import Any

from swalab.experiments.config import ExperimentConfig, GameConfig, ModelConfig, PolicyConfig
from swalab.llm.presets import uses_chat
from swalab.llm.protocol import ProtocolConfig, default_template
from swalab.swi.config import SimulationConfig


def is_dilemma(config: ExperimentConfig) -> bool:
    """Whether the cell plays a resource dilemma (:mod:`swalab.swi.dilemma`)."""
    return config.env != "congestion_v0"


def uses_llm(config: ExperimentConfig) -> bool:
    """Whether candidates come from a model."""
    return config.policy.candidates == "llm"


def base_simulation(game: GameConfig, policy: PolicyConfig, **agents: Any) -> SimulationConfig:
    """The library's config for a game and a model-based policy.

    Args:
        game: The game; ``x_max`` must be one number unless ``agents`` gives it per agent.
        policy: The policy (LLM candidates become the grid the fallback draws from).
        **agents: Per-agent fields of :class:`SimulationConfig` (``x_max``, ``weights``,
            ``values``, ``agents``, ``agent_demands``) realised for one episode.
    """
    b = policy.belief
    if "x_max" not in agents and not isinstance(game.x_max, int | float):
        raise ValueError(
            "x_max: one number for every agent here (lists and distributions are for sweeps)"
        )
    return SimulationConfig(
        n_agents=game.n_agents,
        capacity=game.capacity,
        beta=game.beta,
        x_max=agents.pop("x_max", game.x_max),
        steps=game.steps,
        horizon=game.horizon,
        k=policy.k,
        grid_step=policy.grid_step,
        candidates="grid" if policy.candidates == "llm" else policy.candidates,
        anchors=tuple(policy.anchors),
        scorer=policy.scorer,
        margin=policy.margin,
        gamma=policy.gamma,
        alpha=b.alpha,
        initial_belief=b.initial,
        belief_kind=b.kind,
        window=b.window,
        private=b.private,
        delay=b.delay,
        noise=b.noise,
        **agents,
    )


def simulation(config: ExperimentConfig, seed: int = 0) -> SimulationConfig:
    """The library's config for a cell's game, scorer, belief and population.

    Args:
        config: The cell's config.
        seed: The episode whose per-agent draws to use (only matters when a per-agent
            parameter is a distribution).
    """
    from swalab.experiments.population import realize

    per_agent = realize(config, seed)
    kinds, demands = config.agent_kinds()
    return base_simulation(
        config.game,
        config.policy,
        x_max=tuple(per_agent["x_max"]),
        weights=tuple(per_agent["weights"]),
        values=tuple(per_agent["values"]),
        agents=tuple(kinds),
        agent_demands=tuple(demands),
    )


def protocol(config: ExperimentConfig, model: ModelConfig | None = None) -> ProtocolConfig:
    """How an LLM cell asks ``model`` (default: its own model)."""
    p, m = config.policy, config.model if model is None else model
    if m is None:
        raise ValueError("this cell has no model")
    chat = uses_chat(m.backend, m.name, m.options)
    return ProtocolConfig(
        mode=p.mode,
        proposal_template=default_template("proposal", chat=chat),
        choose_template=default_template("choose", chat=chat),
        prompted_template=default_template("prompted", chat=chat),
        k=p.k,
        resolution=p.grid_step,
        temperature=m.temperature,
        max_tokens=m.max_tokens,
        selector=p.selector,
        fallback=p.fallback,
        constrained=m.constrained,
    )


def dynamics(config: ExperimentConfig) -> Any:
    """A dilemma's pure dynamics (``game.n_agents``/``steps`` plus ``env_params``)."""
    from swalab import envs

    return envs.dynamics(
        config.env, n_agents=config.game.n_agents, steps=config.game.steps, **config.env_params
    )


def dilemma_agents(config: ExperimentConfig) -> Any:
    """How a dilemma cell's agents decide."""
    from swalab.swi.dilemma import DilemmaAgents

    p, b = config.policy, config.policy.belief
    kinds, demands = config.agent_kinds()
    return DilemmaAgents(
        grid_step=p.grid_step,
        anchors=tuple(p.anchors),
        alpha=b.alpha,
        initial_belief=b.initial,
        kinds=tuple(kinds),
        demands=tuple(demands),
    )

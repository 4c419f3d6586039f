"""From a config to cells and tasks.

A cell is one point of the grid: a fully resolved config whose seeds are its episodes. It
is named by a hash of what determines its results (never of where or how it runs), so the
same cell computed twice — here or on a Ray cluster, today or after a crash — has one name.
Cells that can advance in lockstep are grouped into tasks: model-based cells sharing the
engine's per-batch settings, and LLM cells differing only in λ (one batched call per step).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from swalab._validate import rename_field
from swalab.experiments.config import (
    NOT_HASHED,
    ConfigError,
    ExperimentConfig,
    grid_values,
    validate_cell,
)
from swalab.llm.protocol import ProtocolConfig
from swalab.swi.config import SimulationConfig


def digest(payload: Any) -> str:
    """Short stable hash (16 hex digits) of JSON data."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Fields added after cells were first stored, with the value that reproduces the older
#: behaviour; left out of a cell's hash while they hold it, so a store written before they
#: existed still resumes (its cells keep their names).
LATER_FIELDS: dict[str, Any] = {
    "env_params": {}, "population": None, "game.horizon": "fixed", "policy.belief.window": 5,
    "policy.belief.private": False, "policy.belief.delay": 0, "policy.belief.noise": 0.0,
}  # fmt: skip


def cell_payload(config: ExperimentConfig) -> dict[str, Any]:
    """What a cell's results depend on, as JSON data (its hash is taken over this)."""
    data = config.model_dump(mode="json", exclude=set(NOT_HASHED))
    data["seeds"] = config.seed_list()
    if data.get("model") is not None:  # a cache and retries reproduce answers, never change them
        data["model"].pop("cache")
        data["model"].pop("attempts")
    for dotted, default in LATER_FIELDS.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if node.get(leaf) == default:
            del node[leaf]
    return data


@dataclass(frozen=True)
class Cell:
    """One grid point.

    Attributes:
        key: Hash of :func:`cell_payload` (16 hex digits); names the cell's files.
        config: The resolved config (empty grid).
        assignment: The grid values that made this cell (dotted path → value).
    """

    key: str
    config: ExperimentConfig
    assignment: dict[str, Any]

    @property
    def is_dilemma(self) -> bool:
        """Whether the cell plays a resource dilemma (:mod:`swalab.swi.dilemma`)."""
        return self.config.env != "congestion_v0"

    def dynamics(self) -> Any:
        """The dilemma's pure dynamics (``game.n_agents``/``steps`` plus ``env_params``)."""
        from swalab import envs

        c = self.config
        return envs.dynamics(c.env, n_agents=c.game.n_agents, steps=c.game.steps,
                             **c.env_params)  # fmt: skip

    def dilemma_agents(self) -> Any:
        """How the cell's agents decide in a dilemma."""
        from swalab.swi.dilemma import DilemmaAgents

        p, b = self.config.policy, self.config.policy.belief
        kinds, demands = self.config.agent_kinds()
        return DilemmaAgents(grid_step=p.grid_step, anchors=tuple(p.anchors), alpha=b.alpha,
                             initial_belief=b.initial, kinds=tuple(kinds),
                             demands=tuple(demands))  # fmt: skip

    @property
    def uses_llm(self) -> bool:
        """Whether candidates come from a model."""
        return self.config.policy.candidates == "llm"

    def simulation(self, seed: int = 0) -> SimulationConfig:
        """The library's config for this cell's game, scorer, belief and population.

        Args:
            seed: The episode whose per-agent draws to use (only matters when a per-agent
                parameter is a distribution).
        """
        from swalab.experiments.population import realize

        g, p, b = self.config.game, self.config.policy, self.config.policy.belief
        per_agent = realize(self.config, seed)
        kinds, demands = self.config.agent_kinds()
        return SimulationConfig(
            n_agents=g.n_agents,
            capacity=g.capacity,
            beta=g.beta,
            x_max=tuple(per_agent["x_max"]),
            weights=tuple(per_agent["weights"]),
            values=tuple(per_agent["values"]),
            steps=g.steps,
            horizon=g.horizon,
            k=p.k,
            grid_step=p.grid_step,
            candidates="grid" if p.candidates == "llm" else p.candidates,
            anchors=tuple(p.anchors),
            scorer=p.scorer,
            margin=p.margin,
            gamma=p.gamma,
            alpha=b.alpha,
            initial_belief=b.initial,
            belief_kind=b.kind,
            window=b.window,
            private=b.private,
            delay=b.delay,
            noise=b.noise,
            agents=tuple(kinds),
            agent_demands=tuple(demands),
        )

    def protocol(self) -> ProtocolConfig:
        """How an LLM cell asks its model."""
        p, m = self.config.policy, self.config.model
        if m is None:
            raise ValueError("this cell has no model")
        return ProtocolConfig(
            k=p.k,
            resolution=p.grid_step,
            temperature=m.temperature,
            max_tokens=m.max_tokens,
            selector=p.selector,
            fallback=p.fallback,
            constrained=m.constrained,
        )


@dataclass(frozen=True)
class Task:
    """Cells advanced together, and how.

    Attributes:
        kind: ``"engine"`` (lockstep kernel) or ``"llm"`` (batched model calls).
        cells: The cells, all of one group.
        model_key: For LLM tasks: which loaded model serves them.
    """

    kind: Literal["engine", "llm"]
    cells: tuple[Cell, ...]
    model_key: str | None = None


def model_key(config: ExperimentConfig) -> str:
    """Identity of the loaded model an LLM cell needs (cells sharing it share one load)."""
    assert config.model is not None
    return json.dumps(config.model.model_dump(mode="json"), sort_keys=True)


def _check_model(config: ExperimentConfig) -> None:
    """Unknown backends, models and missing extras fail here, before any work."""
    from swalab.llm import presets, registry

    model = config.model
    assert model is not None
    try:
        registry.check_available(model.backend)
        target = presets.resolve(model.backend, model.name)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"model.backend={model.backend!r}: {exc}") from None
    if model.backend == "llamacpp" and target != presets.EMBEDDED and not Path(target).is_file():
        raise ConfigError(
            f"model.name={model.name!r}: not a preset with an embedded GGUF nor a GGUF file; "
            f"use {presets.EMBEDDED!r} or the path of a .gguf file"
        )
    if model.backend in ("openai", "transformers", "vllm") and model.name is None:
        raise ConfigError(f"model.name: backend {model.backend!r} needs a model name")


_DILEMMA_GAME = ("capacity", "beta", "x_max", "weights", "values", "horizon")
_DILEMMA_BELIEF = ("kind", "window", "private", "delay", "noise")


def _check_dilemma(config: ExperimentConfig) -> None:
    """A dilemma cell: its parameters, scorer, belief and population (named on error)."""
    from swalab.experiments.population import realize
    from swalab.swi.dilemma import Lockstep

    env = config.env
    defaults = ExperimentConfig()
    for name in _DILEMMA_GAME:
        if getattr(config.game, name) != getattr(defaults.game, name):
            raise ConfigError(f"game.{name}: applies to congestion_v0 only; {env} takes its "
                              f"parameters from env_params")  # fmt: skip
    for name in _DILEMMA_BELIEF:
        if getattr(config.policy.belief, name) != getattr(defaults.policy.belief, name):
            raise ConfigError(f"policy.belief.{name}: {env} agents use the EMA belief only")
    policy = config.policy
    if policy.scorer == "paper":
        raise ConfigError(f"policy.scorer='paper' is the congestion game's normalised scorer: "
                          f"{env} takes consistent or judge")  # fmt: skip
    if policy.candidates == "random" or policy.selector != "code":
        raise ConfigError(f"policy.candidates/selector: {env} takes grid or llm candidates, "
                          f"chosen in code")  # fmt: skip
    cell = Cell(key="", config=config, assignment={})
    try:
        dyn = cell.dynamics()
    except ValueError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith("env_params.") else f"env_params.{msg}") from None
    text = getattr(dyn, "mode", "numeric") == "text"
    if policy.scorer == "judge" and not text:
        raise ConfigError(f"policy.scorer='judge' grades messages: use env context_budget_v0 "
                          f"with env_params.mode=text, not {env}")  # fmt: skip
    if text and policy.candidates != "llm":
        raise ConfigError("env_params.mode='text': messages come from a model; set "
                          "policy.candidates: llm and a model section")  # fmt: skip
    if (policy.candidates == "llm") != (config.model is not None):
        raise ConfigError("model: give a model section exactly when policy.candidates is llm")
    try:
        lam = np.array([realize(config, 0)["lam"]], dtype=np.float64)
        Lockstep(dyn, lam, config.seed_list()[:1], cell.dilemma_agents())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if config.model is not None:
        _check_model(config)


def _check_cell(config: ExperimentConfig) -> None:
    """Run the library's own checks on a cell (they name the field and what is allowed)."""
    from swalab import _validate as v
    from swalab.swi.engine import LockstepBatch

    if config.env != "congestion_v0":
        _check_dilemma(config)
        return
    policy = config.policy
    if policy.scorer == "judge":
        raise ConfigError("policy.scorer='judge' grades messages: use env context_budget_v0 "
                          "with env_params.mode=text")  # fmt: skip
    if "retry" in config.agent_kinds()[0]:
        raise ConfigError("population: kind 'retry' retries rejected calls: only "
                          "rate_limit_v0 has them")  # fmt: skip
    if config.env_params:
        raise ConfigError("env_params: congestion_v0 takes its parameters from game")
    llm = policy.candidates == "llm"
    if llm and config.model is None:
        raise ConfigError("policy.candidates='llm' needs a model section")
    if not llm and config.model is not None:
        raise ConfigError(
            f"model: set, but policy.candidates={policy.candidates!r} does not use it "
            f"(use candidates: llm, or remove the model section)"
        )
    if not llm and (policy.selector != "code" or policy.fallback != "anchors"):
        raise ConfigError("policy.selector/fallback: only LLM-backed cells use them")
    from swalab.experiments.population import check_ranges, realize

    config.agent_kinds()
    check_ranges(config)
    cell = Cell(key="", config=config, assignment={})
    sim = cell.simulation()
    lam = realize(config, 0)["lam"]
    v.per_agent("lam", lam, sim.n_agents, 0.0, check="unit_interval")
    if llm:
        cell.protocol()
        _check_model(config)
    else:
        LockstepBatch.from_config(sim, [lam], config.seed_list()[:1])


#: Library argument names → the config paths users write.
_PATHS = {
    **{f: f"game.{f}" for f in ("n_agents", "capacity", "beta", "x_max", "weights", "values",
                                "steps")},
    **{f: f"policy.{f}" for f in ("k", "grid_step", "anchors", "margin", "gamma", "scorer",
                                  "selector", "fallback")},
    **{f: f"policy.belief.{f}" for f in ("alpha", "window", "private", "delay", "noise")},
    "initial_belief": "policy.belief.initial", "belief_kind": "policy.belief.kind",
    "resolution": "policy.grid_step", "temperature": "model.temperature",
    "max_tokens": "model.max_tokens",
}  # fmt: skip


def plan(config: ExperimentConfig, source: str = "config") -> list[Cell]:
    """Expand the grid into validated cells, in grid order.

    Raises:
        ConfigError: A value or combination the library refuses (naming the grid entry
            that made it), or a grid that produces the same cell twice.
    """
    grid = grid_values(config)
    base = config.model_dump(mode="json")
    keys = list(grid)
    cells: list[Cell] = []
    seen: dict[str, dict[str, Any]] = {}
    checked: set[str] = set()
    for combo in itertools.product(*(grid[k] for k in keys)):
        assignment = dict(zip(keys, combo, strict=True))
        label = source if not assignment else f"{source}: cell {json.dumps(assignment)}"
        resolved = validate_cell(base, assignment, label)
        payload = cell_payload(resolved)
        key = digest(payload)
        if key in seen:
            raise ConfigError(
                f"{source}: grid gives the same cell twice ({json.dumps(seen[key])} and "
                f"{json.dumps(assignment)}); remove the duplicate values"
            )
        seen[key] = assignment
        # Cells differing only in λ or seeds pass the same checks: run each check once.
        shape = digest({k: x for k, x in payload.items() if k not in ("lam", "seeds")})
        if shape not in checked or not isinstance(resolved.lam, float):
            try:
                _check_cell(resolved)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"{label}: {rename_field(str(exc), _PATHS)}") from None
            checked.add(shape)
        cells.append(Cell(key=key, config=resolved, assignment=assignment))
    return cells


def plan_hash(cells: list[Cell]) -> str:
    """One name for a whole plan: the hash of its sorted cell keys."""
    return digest(sorted(c.key for c in cells))


def _engine_group(cell: Cell) -> tuple[Any, ...]:
    c = cell.config
    if cell.is_dilemma:  # one dynamics and one way of deciding; λ and seeds may differ
        payload = cell_payload(c)
        return ("dilemma", digest({k: x for k, x in payload.items() if k not in ("lam", "seeds")}))
    return (c.game.n_agents, c.policy.scorer, c.policy.candidates, c.policy.k,
            c.policy.grid_step, tuple(c.policy.anchors), c.record_decisions)  # fmt: skip


def _llm_group(cell: Cell) -> str:
    payload = cell_payload(cell.config)
    payload.pop("lam")
    return digest(payload) + model_key(cell.config)


def make_tasks(cells: list[Cell], cells_per_task: int) -> list[Task]:
    """Group cells into tasks: LLM tasks first (they are the long ones), then engine chunks.

    Args:
        cells: Cells still to run.
        cells_per_task: Largest number of model-based cells per task (smaller tasks give
            finer resume points and spread over more workers).
    """
    llm: dict[str, list[Cell]] = {}
    engine: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        if cell.uses_llm:
            llm.setdefault(_llm_group(cell), []).append(cell)
        else:
            engine.setdefault(_engine_group(cell), []).append(cell)
    tasks = [Task("llm", tuple(g), model_key(g[0].config)) for g in llm.values()]
    for group in engine.values():
        for start in range(0, len(group), cells_per_task):
            tasks.append(Task("engine", tuple(group[start : start + cells_per_task])))
    return tasks

"""A sweep's plan: its grid expanded into validated cells, and the cells grouped into tasks.

A sweep cell is one point of the grid: a fully resolved config whose seeds are its
episodes. Cells that can advance in lockstep are grouped into tasks: model-based cells
sharing the engine's per-batch settings, and LLM cells differing only in λ (one batched call
per step). How a cell's config becomes library objects is :mod:`swalab.experiments.adapt`.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from swalab._validate import http_url, rename_field
from swalab.experiments import adapt
from swalab.experiments.cells import Cell, Task, digest, payload
from swalab.experiments.config import (
    NOT_HASHED,
    ConfigError,
    ExecutorConfig,
    ExperimentConfig,
    ModelConfig,
    grid_values,
    validate_cell,
)
from swalab.experiments.fields import LIBRARY_TO_PATH

#: Fields added after cells were first stored, with the value that reproduces the older
#: behaviour; left out of a cell's hash while they hold it, so a store written before they
#: existed still resumes (its cells keep their names).
LATER_FIELDS: dict[str, Any] = {
    "env_params": {},
    "population": None,
    "game.horizon": "fixed",
    "policy.belief.window": 5,
    "policy.belief.private": False,
    "policy.belief.delay": 0,
    "policy.belief.noise": 0.0,
    "policy.mode": "swi",
}


def cell_payload(config: ExperimentConfig) -> dict[str, Any]:
    """What a cell's results depend on, as JSON data (its hash is taken over this)."""
    data = payload(config, NOT_HASHED)
    data["seeds"] = config.seed_list()
    if data.get("model") is not None:  # a cache and retries reproduce answers, never change them
        data["model"].pop("cache")
        data["model"].pop("attempts")
    for spec in data.get("population") or []:  # added later, like LATER_FIELDS
        if spec.get("model", 0) is None:
            del spec["model"]
        elif spec.get("model") is not None:
            spec["model"].pop("cache")
            spec["model"].pop("attempts")
    for dotted, default in LATER_FIELDS.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if node.get(leaf) == default:
            del node[leaf]
    return data


def model_key(config: Any) -> str:
    """Identity of the loaded models an LLM cell needs (cells sharing them share one load).

    One model's key is its config as JSON; a mixed-model cell's is the list of its models.
    """
    roster = [m.model_dump(mode="json") for m in config.model_roster()]
    assert roster
    return json.dumps(roster[0] if len(roster) == 1 else roster, sort_keys=True)


def _check_model(model: ModelConfig, where: str = "model") -> None:
    """Unknown backends, models and missing extras fail here, before any work."""
    from swalab.llm import presets, registry

    try:
        registry.check_available(model.backend)
        target = presets.resolve(model.backend, model.name)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{where}.backend={model.backend!r}: {exc}") from None
    preset = presets.PRESETS.get(presets.EMBEDDED if model.name is None else model.name)
    if model.backend in ("llamacpp", "transformers") and preset is not None and preset.embedded:
        # Both load the embedded GGUF (the default when no name is given) from its package.
        try:
            presets.embedded_path(preset.name)
        except ImportError as exc:
            raise ConfigError(f"{where}.name={model.name!r}: {exc}") from None
    elif model.backend == "llamacpp" and not Path(target).is_file():
        raise ConfigError(
            f"{where}.name={model.name!r}: not a preset with an embedded GGUF nor a GGUF "
            f"file; use one of {list(presets.EMBEDDED_MODELS)} or the path of a .gguf file"
        )
    if model.backend in ("openai", "vllm") and model.name is None:
        raise ConfigError(f"{where}.name: backend {model.backend!r} needs a model name")
    if "base_url" in model.options:
        try:
            http_url(f"{where}.options.base_url", str(model.options["base_url"]))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def _check_selector(policy: Any) -> None:
    """A prompted agent has no score table for a model to pick from."""
    if policy.mode == "prompted" and policy.selector != "code":
        raise ConfigError(
            "policy.selector='llm' picks a row of the SWI score table: policy.mode='prompted' "
            "has none (use selector: code)"
        )


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
            raise ConfigError(
                f"game.{name}: applies to congestion_v0 only; {env} takes its "
                f"parameters from env_params"
            )
    for name in _DILEMMA_BELIEF:
        if getattr(config.policy.belief, name) != getattr(defaults.policy.belief, name):
            raise ConfigError(f"policy.belief.{name}: {env} agents use the EMA belief only")
    policy = config.policy
    if policy.scorer == "paper":
        raise ConfigError(
            f"policy.scorer='paper' is the congestion game's normalised scorer: "
            f"{env} takes consistent or judge"
        )
    if policy.candidates in ("random", "anchors"):
        raise ConfigError(f"policy.candidates={policy.candidates!r}: {env} takes grid or llm")
    try:
        dyn = adapt.dynamics(config)
    except ValueError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith("env_params.") else f"env_params.{msg}") from None
    text = getattr(dyn, "mode", "numeric") == "text"
    if policy.scorer == "judge" and not text:
        raise ConfigError(
            f"policy.scorer='judge' grades messages: use env context_budget_v0 "
            f"with env_params.mode=text, not {env}"
        )
    if text and policy.candidates != "llm":
        raise ConfigError(
            "env_params.mode='text': messages come from a model; set "
            "policy.candidates: llm and a model section"
        )
    if (policy.candidates == "llm") != (config.model is not None):
        raise ConfigError("model: give a model section exactly when policy.candidates is llm")
    if policy.candidates != "llm" and (policy.mode != "swi" or policy.selector != "code"):
        raise ConfigError(
            "policy.mode/selector: the prompted mode and the LLM selector ask a model; set "
            "policy.candidates: llm and a model section"
        )
    if text and (policy.mode != "swi" or policy.selector != "code"):
        raise ConfigError(
            "policy.mode/selector: env_params.mode='text' plays messages scored in code; "
            "the prompted mode and the LLM selector answer numbers (use env_params.mode=numeric)"
        )
    _check_selector(policy)
    try:
        lam = np.array([realize(config, 0)["lam"]], dtype=np.float64)
        Lockstep(dyn, lam, config.seed_list()[:1], adapt.dilemma_agents(config))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if any(spec.model is not None for spec in config.population or []):
        raise ConfigError(
            f"population: an entry names a model: mixed-model populations play congestion_v0, "
            f"not {env}"
        )
    if config.model is not None:
        _check_model(config.model)


def _check_cell(config: ExperimentConfig) -> None:
    """Run the library's own checks on a cell (they name the field and what is allowed)."""
    from swalab import _validate as v
    from swalab.swi.engine import LockstepBatch

    if config.env != "congestion_v0":
        _check_dilemma(config)
        return
    policy = config.policy
    if policy.scorer == "judge":
        raise ConfigError(
            "policy.scorer='judge' grades messages: use env context_budget_v0 "
            "with env_params.mode=text"
        )
    if "retry" in config.agent_kinds()[0]:
        raise ConfigError(
            "population: kind 'retry' retries rejected calls: only rate_limit_v0 has them"
        )
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
    if policy.mode == "prompted" and not llm:
        raise ConfigError(
            "policy.mode='prompted': the model answers each demand; set policy.candidates: "
            "llm and a model section"
        )
    _check_selector(policy)
    from swalab.experiments.population import check_ranges, realize

    config.agent_kinds()
    check_ranges(config)
    sim = adapt.simulation(config)
    lam = realize(config, 0)["lam"]
    v.per_agent("lam", lam, sim.n_agents, 0.0, check="unit_interval")
    if not llm and any(spec.model is not None for spec in config.population or []):
        raise ConfigError(
            "population: an entry names a model, but policy.candidates is not llm: only "
            "LLM cells ask models"
        )
    if llm:
        assert config.model is not None
        models = [("model", config.model)] + [
            (f"population[{j}].model", spec.model)
            for j, spec in enumerate(config.population or [])
            if spec.model is not None
        ]
        for where, model in models:
            adapt.protocol(config, model)
            _check_model(model, where)
    else:
        LockstepBatch.from_config(sim, [lam], config.seed_list()[:1])


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
        resolved = validate_cell(ExperimentConfig, base, assignment, label)
        data = cell_payload(resolved)
        key = digest(data)
        if key in seen:
            raise ConfigError(
                f"{source}: grid gives the same cell twice ({json.dumps(seen[key])} and "
                f"{json.dumps(assignment)}); remove the duplicate values"
            )
        seen[key] = assignment
        # Cells differing only in λ or seeds pass the same checks: run each check once.
        shape = digest({k: x for k, x in data.items() if k not in ("lam", "seeds")})
        if shape not in checked or not isinstance(resolved.lam, float):
            try:
                _check_cell(resolved)
            except ConfigError as exc:
                raise ConfigError(f"{label}: {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"{label}: {rename_field(str(exc), LIBRARY_TO_PATH)}") from None
            checked.add(shape)
        cells.append(Cell(key=key, config=resolved, assignment=assignment))
    return cells


def _engine_group(cell: Cell) -> tuple[Any, ...]:
    c = cell.config
    if adapt.is_dilemma(c):  # one dynamics and one way of deciding; λ and seeds may differ
        data = cell_payload(c)
        return ("dilemma", digest({k: x for k, x in data.items() if k not in ("lam", "seeds")}))
    return (
        c.game.n_agents,
        c.policy.scorer,
        c.policy.candidates,
        c.policy.k,
        c.policy.grid_step,
        tuple(c.policy.anchors),
        c.record_decisions,
    )


def _llm_group(cell: Cell) -> str:
    """Cells that can share each step's model call: the same models, protocol and N.

    λ, seeds and the congestion game's parameters (capacity, β, horizon, caps...) vary
    per episode inside a call (:func:`~swalab.llm.runner.run_llm_pairs`); a dilemma's
    dynamics are one per call, so its game stays in the key.
    """
    data = cell_payload(cell.config)
    data.pop("lam")
    data.pop("seeds", None)
    if not adapt.is_dilemma(cell.config) and isinstance(data.get("game"), dict):
        data["game"] = {"n_agents": data["game"].get("n_agents")}
    return digest(data) + model_key(cell.config)


def make_tasks(cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
    """Group cells into tasks: LLM tasks first (they are the long ones), then engine chunks.

    Args:
        cells: Cells still to run.
        executor: Where they run; ``cells_per_task`` is the largest number of model-based
            cells per task (smaller tasks give finer resume points and spread over more
            workers).
    """
    cells_per_task = executor.cells_per_task
    llm: dict[str, list[Cell]] = {}
    engine: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in cells:
        if adapt.uses_llm(cell.config):
            llm.setdefault(_llm_group(cell), []).append(cell)
        else:
            engine.setdefault(_engine_group(cell), []).append(cell)
    tasks = [Task("llm", tuple(g), model_key(g[0].config)) for g in llm.values()]
    for group in engine.values():
        for start in range(0, len(group), cells_per_task):
            tasks.append(Task("engine", tuple(group[start : start + cells_per_task])))
    return tasks

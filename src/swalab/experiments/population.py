"""Who plays a cell: agent kinds and per-agent parameters, realised per seed.

A per-agent parameter (λ_i, x_max_i, w_i, v_i) is one value, a list, or a
:class:`~swalab.experiments.config.Distribution`; a distribution is drawn afresh for every
seed, each agent independently, from a generator seeded by (seed, parameter), so a cell's
episodes are reproducible and a parameter's draws do not move when another is added.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from swalab.experiments.config import Distribution, ExperimentConfig

#: Per-agent parameters: (config path, allowed low, high, low inclusive, default).
PER_AGENT: dict[str, tuple[str, float, float, bool, float]] = {
    "lam": ("lam", 0.0, 1.0, True, 0.0),
    "x_max": ("game.x_max", 0.0, np.inf, False, 10.0),
    "weights": ("game.weights", 0.0, np.inf, False, 1.0),
    "values": ("game.values", 0.0, np.inf, False, 1.0),
}
_TRIES = 1000


def _spec(config: ExperimentConfig, name: str) -> Any:
    return config.lam if name == "lam" else getattr(config.game, name)


def _inside(name: str, x: np.ndarray) -> np.ndarray:
    _, low, high, closed, _ = PER_AGENT[name]
    ok: np.ndarray = ((x >= low) if closed else (x > low)) & (x <= high) & np.isfinite(x)
    return ok


def draw(dist: Distribution, name: str, n_agents: int, seed: int) -> np.ndarray:
    """``n_agents`` draws of ``dist`` for one seed, inside the parameter's allowed range.

    Raises:
        ValueError: The distribution puts (almost) no mass inside the allowed range.
    """
    path, low, high, closed, _ = PER_AGENT[name]
    rng = np.random.default_rng([seed, list(PER_AGENT).index(name)])
    out = np.empty(n_agents)
    for i in range(n_agents):
        for _ in range(_TRIES):
            if dist.dist == "uniform":
                x = rng.uniform(float(dist.low or 0.0), float(dist.high or 0.0))
            elif dist.dist == "normal":
                x = rng.normal(float(dist.mean or 0.0), float(dist.sd or 0.0))
            else:
                x = float(rng.choice(np.asarray(dist.values), p=dist.p))
            if _inside(name, np.asarray(x)):
                out[i] = x
                break
        else:
            bracket = "[" if closed else "("
            raise ValueError(
                f"{path}: {dist.dist} draws fall outside {bracket}{low}, {high}] "
                f"(no valid draw in {_TRIES} tries)"
            )
    return out


def check_ranges(config: ExperimentConfig) -> None:
    """A distribution's support must lie inside its parameter's range (uniform, choice)."""
    for name in PER_AGENT:
        spec = _spec(config, name)
        if not isinstance(spec, Distribution) or spec.dist == "normal":
            continue
        ends = [spec.low, spec.high] if spec.dist == "uniform" else list(spec.values or [])
        bad = [x for x in ends if not _inside(name, np.asarray(float(x or 0.0)))]
        if bad:
            path, low, high, closed, _ = PER_AGENT[name]
            bracket = "[" if closed else "("
            raise ValueError(
                f"{path}: {spec.dist} reaches {bad[0]}, outside {bracket}{low}, {high}]"
            )


def realize(config: ExperimentConfig, seed: int) -> dict[str, list[float]]:
    """Every per-agent parameter of one episode: ``{lam, x_max, weights, values}`` lists."""
    n = config.game.n_agents
    out: dict[str, list[float]] = {}
    for name, (*_rest, default) in PER_AGENT.items():
        spec = _spec(config, name)
        if isinstance(spec, Distribution):
            values = draw(spec, name, n, seed)
        elif spec is None:
            values = np.full(n, default)
        else:
            values = np.broadcast_to(np.asarray(spec, dtype=np.float64), (n,))
        out[name] = [float(x) for x in values]
    return out


def sampled(config: ExperimentConfig) -> bool:
    """Whether any per-agent parameter is drawn per seed."""
    return any(isinstance(_spec(config, name), Distribution) for name in PER_AGENT)


def nominal(config: ExperimentConfig, name: str) -> float:
    """One number for a per-agent parameter: its value, its list's mean, or its expectation."""
    spec = _spec(config, name)
    if isinstance(spec, Distribution):
        return spec.expected()
    if spec is None:
        return PER_AGENT[name][-1]
    return float(np.mean(spec))


def heterogeneity(config: ExperimentConfig) -> str | None:
    """How the agents differ besides λ values given as one number or a list, as JSON.

    Lists of x_max, weights or values and every distribution (λ's included) are named here,
    so two systems that differ only in them are kept apart by the analysis.
    """
    parts: dict[str, Any] = {}
    for name, (path, *_rest) in PER_AGENT.items():
        spec = _spec(config, name)
        if isinstance(spec, Distribution):
            parts[path] = spec.model_dump(exclude_none=True)
        elif isinstance(spec, list) and name != "lam":
            parts[path] = spec
    return json.dumps(parts, sort_keys=True) if parts else None


def population_label(config: ExperimentConfig) -> str | None:
    """``swi×4 + greedy×1`` style name of a mixed population; ``None`` for all-SWI.

    Agents answered by a model of their own carry its name: ``swi×3 + swi[smollm2]×2``.
    """
    pop = config.population
    if pop is None or all(s.kind == "swi" and s.model is None for s in pop):
        return None
    parts = []
    for spec in pop:
        extra = "" if spec.demand is None else f"({spec.demand:g})"
        if spec.model is not None:
            extra += f"[{spec.model.name or spec.model.backend}]"
        parts.append(f"{spec.kind}{extra}×{spec.count}")
    return " + ".join(parts)

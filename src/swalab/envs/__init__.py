"""Versioned social-dilemma environments behind PettingZoo's ``ParallelEnv`` API.

Use the PettingZoo convention (``from swalab.envs import rate_limit_v0``) or the registry
(``swalab.envs.make("congestion_v0", **params)``). Either way an environment's module is
imported only when it is asked for: this package imports none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pettingzoo import ParallelEnv

# The base module shares its name with the function ``dynamics`` below; importing it first
# keeps the package attribute the function (a later first import would overwrite it).
importlib.import_module("swalab.envs.dynamics")

#: Every registered environment: name -> module that defines ``parallel_env(**params)``.
REGISTRY: dict[str, str] = {
    "congestion_v0": "swalab.envs.congestion_v0",
    "rate_limit_v0": "swalab.envs.rate_limit_v0",
    "context_budget_v0": "swalab.envs.context_budget_v0",
    "commons_v0": "swalab.envs.commons_v0",
}

#: Environments built on :class:`~swalab.envs.dynamics.Dynamics` (the SWI dilemma runner).
DILEMMAS: dict[str, str] = {
    "rate_limit_v0": "swalab.envs.rate_limit_v0:RateLimit",
    "context_budget_v0": "swalab.envs.context_budget_v0:ContextBudget",
    "commons_v0": "swalab.envs.commons_v0:Commons",
}


def names() -> list[str]:
    """Return the names of all registered environments, sorted."""
    return sorted(REGISTRY)


def make(name: str, **params: Any) -> ParallelEnv:
    """Create the registered environment ``name`` with ``params``.

    Raises:
        ValueError: If ``name`` is not registered (the message lists what is).
    """
    if name not in REGISTRY:
        raise ValueError(f"env={name!r} is not registered: choose one of {names()}")
    module = importlib.import_module(REGISTRY[name])
    env: ParallelEnv = module.parallel_env(**params)
    return env


def __getattr__(name: str) -> Any:
    """``swalab.envs.congestion_v0`` and the others, imported on first use."""
    if name in REGISTRY:
        return importlib.import_module(REGISTRY[name])
    raise AttributeError(f"module 'swalab.envs' has no attribute {name!r}")


def dynamics(name: str, **params: Any) -> Any:
    """The pure :class:`~swalab.envs.dynamics.Dynamics` of dilemma ``name`` with ``params``.

    Raises:
        ValueError: If ``name`` is not a dilemma, or a parameter is unknown or out of range.
    """
    if name not in DILEMMAS:
        raise ValueError(f"env={name!r} has no dynamics model: choose one of {sorted(DILEMMAS)}")
    module, cls_name = DILEMMAS[name].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    known = {f for f in cls.__dataclass_fields__}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"env_params.{unknown[0]}: not a parameter of {name} (allowed: {sorted(known)})"
        )
    return cls(**params)


__all__ = [
    "DILEMMAS",
    "REGISTRY",
    "commons_v0",
    "congestion_v0",
    "context_budget_v0",
    "dynamics",
    "make",
    "names",
    "rate_limit_v0",
]

"""Versioned social-dilemma environments behind PettingZoo's ``ParallelEnv`` API.

Use the PettingZoo convention (``from swalab.envs import congestion_v0``) or the registry
(``swalab.envs.make("congestion_v0", **params)``), which imports an environment's module
only when it is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from pettingzoo import ParallelEnv

from swalab.envs import congestion_v0

#: Every registered environment: name -> module that defines ``parallel_env(**params)``.
REGISTRY: dict[str, str] = {
    "congestion_v0": "swalab.envs.congestion_v0",
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


__all__ = ["REGISTRY", "congestion_v0", "make", "names"]

"""Metrics, transition estimates, figures and reports over simulation and sweep results.

The array metrics, the bootstrap and the transition estimate import eagerly (NumPy only);
reading result directories, figures (matplotlib) and reports load on first use.
"""

from typing import Any

from swalab.metrics import (
    episode_metrics,
    jain_fairness,
    mean_welfare,
    overload_rate,
    steps_to_stable,
)
from swalab.stats import Estimate, bootstrap_mean, bootstrap_mean_diff
from swalab.transition import Transition, estimate_transition, isotonic_decreasing

_LAZY = {
    "load_results": "swalab.analysis.results",
    "summarize": "swalab.analysis.results",
    "write_report": "swalab.analysis.report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swalab.analysis' has no attribute {name!r}")


__all__ = [
    "Estimate",
    "Transition",
    "bootstrap_mean",
    "bootstrap_mean_diff",
    "episode_metrics",
    "estimate_transition",
    "isotonic_decreasing",
    "jain_fairness",
    "load_results",
    "mean_welfare",
    "overload_rate",
    "steps_to_stable",
    "summarize",
    "write_report",
]

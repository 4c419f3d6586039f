"""Metrics, transition estimates and reports over simulation and sweep results."""

from swalab.analysis.metrics import jain_fairness, mean_welfare, overload_rate, steps_to_stable

__all__ = ["jain_fairness", "mean_welfare", "overload_rate", "steps_to_stable"]

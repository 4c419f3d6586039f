"""Closed forms of Socially-Weighted Alignment: payoffs, thresholds and equilibria.

Pure functions with validated inputs and no I/O; everything else in swalab (environments,
scorers, engine, reports) builds on them.
"""

from swalab.theory.equilibrium import (
    Equilibrium,
    Game,
    best_response,
    is_nash,
    optimal_welfare,
    price_of_anarchy,
    selfish_welfare,
    solve_equilibrium,
    stable_welfare,
)
from swalab.theory.payoffs import (
    Payoffs,
    congestion_payoffs,
    excess,
    marginal_incentive,
    rewards,
    swa_utilities,
    welfare,
    welfare_of_load,
)
from swalab.theory.thresholds import (
    belief_contraction,
    belief_stable,
    effective_capacity,
    escapes_overload,
    lambda_star,
    lambda_tilde,
    lockin_belief,
    lockin_load,
    per_agent_thresholds,
    predicted_switch,
    surface_terms,
    thresholds_of,
)

__all__ = [
    "Equilibrium",
    "Game",
    "Payoffs",
    "belief_contraction",
    "belief_stable",
    "best_response",
    "congestion_payoffs",
    "effective_capacity",
    "escapes_overload",
    "excess",
    "is_nash",
    "lambda_star",
    "lambda_tilde",
    "lockin_belief",
    "lockin_load",
    "marginal_incentive",
    "optimal_welfare",
    "per_agent_thresholds",
    "predicted_switch",
    "price_of_anarchy",
    "rewards",
    "selfish_welfare",
    "solve_equilibrium",
    "stable_welfare",
    "surface_terms",
    "swa_utilities",
    "thresholds_of",
    "welfare",
    "welfare_of_load",
]

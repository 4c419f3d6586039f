"""`swalab threshold` and `swalab equilibrium`: closed forms, printed (nothing is simulated)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from swalab import reference as ref
from swalab._validate import rename_field
from swalab.cli._common import (
    Agents,
    Alpha,
    AsJson,
    Beta,
    Capacity,
    Gamma,
    Margin,
    UserError,
    Values,
    Weights,
    XMax,
    app,
    bounded,
    emit,
    numbers,
    per_agent,
)


@app.command()
def threshold(
    agents: Agents = ref.N_AGENTS,
    beta: Beta = ref.BETA,
    capacity: Capacity = ref.CAPACITY,
    x_max: XMax = ref.X_MAX,
    margin: Margin = ref.MARGIN,
    gamma: Gamma = ref.GAMMA,
    alpha: Alpha = ref.ALPHA,
    lam_per_agent: Annotated[
        str | None,
        typer.Option("--lam-per-agent", help="λ_i, comma list (or one for all): the surface test."),
    ] = None,
    weights: Weights = None,
    values: Values = None,
    as_json: AsJson = False,
) -> None:
    """Print λ* (Theorem 1), λ̃ (the paper scorer's own switch), lock-in and belief stability.

    With per-agent impacts or values also each agent's own threshold λ*_i; with
    `--lam-per-agent` also the critical-surface test: which agents sit below their
    threshold (they play x_max) and whether the system escapes overload.
    """
    from swalab import theory

    for flag, value in (
        ("--agents", agents),
        ("--beta", beta),
        ("--capacity", capacity),
        ("--x-max", x_max),
        ("--margin", margin),
        ("--gamma", gamma),
    ):
        bounded(flag, value)
    result: dict[str, Any] = theory.thresholds_of(
        n_agents=agents,
        capacity=capacity,
        beta=beta,
        x_max=x_max,
        margin=margin,
        gamma=gamma,
        alpha=alpha,
    )
    if lam_per_agent is not None or weights is not None or values is not None:
        result |= _surface(agents, beta, capacity, x_max, lam_per_agent, weights, values)
    emit(result, as_json, f"Thresholds (N={agents}, β={beta:g}, C={capacity:g})")


def _surface(
    agents: int,
    beta: float,
    capacity: float,
    x_max: float | list[float] | None,
    lam: str | float | list[float] | None,
    weights: str | None,
    values: str | None,
) -> dict[str, Any]:
    """The critical-surface terms, with errors named by the flags."""
    from swalab import theory

    if isinstance(lam, str):
        lam = per_agent("--lam-per-agent", lam)
    try:
        return theory.surface_terms(
            lam,
            n_agents=agents,
            capacity=capacity,
            beta=beta,
            x_max=ref.X_MAX if x_max is None else x_max,
            weights=per_agent("--weights", weights),
            values=per_agent("--values", values),
        )
    except ValueError as exc:
        raise UserError(rename_field(str(exc), {"lam": "--lam-per-agent"})) from None


@app.command()
def equilibrium(
    lam: Annotated[
        str,
        typer.Option(
            "--lam", "--lam-per-agent", help="Social weight: one for all agents, or one per agent."
        ),
    ],
    agents: Agents = ref.N_AGENTS,
    beta: Beta = ref.BETA,
    capacity: Capacity = ref.CAPACITY,
    x_max: Annotated[
        str, typer.Option("--x-max", help="Largest demand: one, or one per agent.")
    ] = f"{ref.X_MAX:g}",
    weights: Weights = None,
    values: Values = None,
    as_json: AsJson = False,
) -> None:
    """Solve the SWA game's Nash equilibrium (checked against every best response)."""
    from swalab import theory

    for flag, value in (("--agents", agents), ("--beta", beta), ("--capacity", capacity)):
        bounded(flag, value)
    params: dict[str, Any] = {
        "n_agents": agents,
        "capacity": capacity,
        "beta": beta,
        "x_max": per_agent("--x-max", x_max),
        "weights": per_agent("--weights", weights),
        "values": per_agent("--values", values),
    }
    lams = numbers("--lam", lam)
    lam_value: float | list[float] = lams[0] if len(lams) == 1 else lams
    eq = theory.solve_equilibrium(lam_value, **params)
    result = {
        "demands": eq.demands,
        "load": eq.load,
        "welfare": eq.welfare,
        "overloaded": eq.overloaded,
        "thresholds": eq.thresholds,
        **_surface(agents, beta, capacity, params["x_max"], lam_value, weights, values),
        "optimal_welfare": theory.optimal_welfare(**params),
        "price_of_anarchy": theory.price_of_anarchy(lam_value, **params),
    }
    emit(result, as_json, "Nash equilibrium")

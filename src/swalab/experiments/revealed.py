"""Revealed λ of stored decisions: per cell and agent group, under two utilities.

For a congestion-game cell, the decisions of each group of agents (same kind, same
configured λ) are read from its step rows and handed to
:func:`swalab.theory.revealed.reveal` under each utility model that applies:

* ``scorer``: the scorer an SWI agent was configured with (paper or consistent, with its
  belief, margin and centering), through the private and group scores stored with each
  candidate; only agents whose candidates were recorded (SWI agents) have it.
* ``game``: the game's own SWA utility ``(1 − λ)·R_i + λ·W/N``, the others' load taken from
  the agent's belief at the time; candidates are the agent's own where recorded, else the
  action grid ``0, grid_step, …, x_max`` (every agent has it: prompted LLM agents, scripted
  outsiders).

Rows compare the λ an agent was told (``lam``) with the one it behaves with (``revealed``);
:func:`calibration` fits the slope of one on the other across cells. The suite scores its
cells with these in memory; :mod:`swalab.analysis.reveal` reads them from any store.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from swalab._validate import FloatArray
from swalab.theory.revealed import Decisions, calibration_slope, game_terms, reveal

#: Columns of a revealed-λ row, in order.
COLUMNS = (
    "experiment",
    "cell",
    "agent",
    "utility",
    "model",
    "mode",
    "scorer",
    "beta",
    "lam",
    "revealed",
    "ci_low",
    "ci_high",
    "method",
    "decisions",
    "best_share",
    "fit",
)

#: Utility models λ can be revealed under.
UTILITIES = ("scorer", "game")

#: Step columns the estimate reads.
STEP_COLUMNS = (
    "seed",
    "agent",
    "kind",
    "lam",
    "belief",
    "demand",
    "candidates",
    "private",
    "group",
)


def _agent_label(kind: str, policy: dict[str, Any]) -> str:
    """An agent's kind as a reader names it.

    An LLM told λ in words is ``prompted``; one that picks its row of the score table is
    ``swi-llm``.
    """
    if kind != "swi":
        return kind
    if policy.get("mode", "swi") == "prompted":
        return "prompted"
    return "swi-llm" if policy.get("selector") == "llm" else "swi"


def _agent_models(config: dict[str, Any]) -> list[str]:
    """The name of the model that answers each agent (a mixed population has several)."""
    model = config.get("model")
    default = (model.get("name") or "default") if model else "model-based"
    n = int(config["game"]["n_agents"])
    if not config.get("population"):
        return [default] * n
    names: list[str] = []
    for spec in config["population"]:
        own = spec.get("model")
        names += [(own.get("name") or "default") if own else default] * int(spec.get("count", 1))
    return names


def _grid(x_max: float, step: float) -> FloatArray:
    n = int(np.floor(x_max / step + 1e-9)) + 1
    grid: FloatArray = np.minimum(np.arange(n) * step, x_max)
    return grid


def _per_agent(episodes: dict[str, list[Any]]) -> dict[tuple[str, int], list[float]]:
    """Each episode's realised per-agent caps, impacts and values, by (name, seed)."""
    out = {}
    for name in ("x_max", "weights", "values"):
        column = episodes.get(f"{name}_per_agent")
        for seed, values in zip(episodes.get("seed", []), column or [], strict=False):
            if values is not None:
                out[(name, int(seed))] = [float(x) for x in values]
    return out


def cell_rows(
    key: str,
    config: dict[str, Any],
    steps: dict[str, list[Any]],
    episodes: dict[str, list[Any]],
    *,
    experiment: str = ".",
    resamples: int = 200,
    utilities: tuple[str, ...] = UTILITIES,
) -> list[dict[str, Any]]:
    """Revealed-λ rows (:data:`COLUMNS`) of one sweep cell from its step and episode columns.

    Args:
        key: The cell's key.
        config: The cell's config as JSON data.
        steps: Its step table as columns (at least :data:`STEP_COLUMNS`).
        episodes: Its episode table as columns (per-agent caps, impacts, values).
        experiment: Name of the experiment it belongs to.
        resamples: Bootstrap resamples of a logit estimate.
        utilities: Which utility models to reveal λ under.
    """
    if config.get("env", "congestion_v0") != "congestion_v0" or not steps.get("kind"):
        return []
    game, policy = config["game"], config["policy"]
    mode = policy.get("mode", "swi")
    models = _agent_models(config)
    groups: dict[tuple[str, float | None, str], list[int]] = defaultdict(list)
    for r, kind in enumerate(steps["kind"]):
        label = _agent_label(kind, policy)
        lam = steps["lam"][r] if kind == "swi" else None
        groups[(label, lam, models[steps["agent"][r]])].append(r)
    n = int(game["n_agents"])
    per_agent = _per_agent(episodes)
    out = []
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2]))
    for (label, lam, model), rows in ordered:
        for utility in utilities:
            dec = _decisions(steps, rows, utility, game, policy, per_agent, n)
            if dec is None:
                continue
            est = reveal(dec, resamples=resamples)
            out.append(
                {
                    "experiment": experiment,
                    "cell": key,
                    "agent": label,
                    "utility": f"scorer:{policy['scorer']}" if utility == "scorer" else "game",
                    "model": model,
                    "mode": mode,
                    "scorer": policy["scorer"],
                    "beta": float(game["beta"]),
                    "lam": lam,
                    "revealed": est.revealed,
                    "ci_low": est.low,
                    "ci_high": est.high,
                    "method": est.method,
                    "decisions": est.decisions,
                    "best_share": est.best_share,
                    "fit": est.fit,
                }
            )
    return out


def _decisions(
    steps: dict[str, list[Any]],
    rows: list[int],
    utility: str,
    game: dict[str, Any],
    policy: dict[str, Any],
    per_agent: dict[tuple[str, int], list[float]],
    n: int,
) -> Decisions | None:
    """One group's decisions under ``utility``; ``None`` where the rows do not have it."""
    cands, priv, grp, chosen = [], [], [], []
    for r in rows:
        demand = float(steps["demand"][r])
        stored = steps["candidates"][r]
        if utility == "scorer":
            if stored is None or steps["private"][r] is None:
                return None
            cands.append(stored)
            priv.append(steps["private"][r])
            grp.append(steps["group"][r])
            chosen.append(demand)
            continue
        seed, agent = int(steps["seed"][r]), int(steps["agent"][r])

        def own(name: str, seed: int = seed, agent: int = agent) -> float | None:
            values = per_agent.get((name, seed))
            return None if values is None else values[agent]

        cap = own("x_max")
        x_max = float(game["x_max"]) if cap is None else cap
        if stored is not None:
            actions = np.asarray(stored, dtype=np.float64)
        else:  # the whole action grid, and the answer itself if an unconstrained model left it
            actions = np.union1d(_grid(x_max, float(policy["grid_step"])), [demand])
        p, g = game_terms(
            actions,
            (n - 1) * float(steps["belief"][r]),
            n_agents=n,
            capacity=float(game["capacity"]),
            beta=float(game["beta"]),
            weight=own("weights") or 1.0,
            value=own("values") or 1.0,
        )
        cands.append(actions.tolist())
        priv.append(p.tolist())
        grp.append(g.tolist())
        chosen.append(demand)
    return Decisions.from_lists(cands, priv, grp, chosen) if cands else None


def calibration(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slope of revealed on told λ per (experiment, model, agent, utility) over its cells.

    Cells whose λ is unidentified (choices no better explained than by chance) are left
    out and counted apart.
    """
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    unidentified: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for row in rows:
        key = (row["experiment"], row["model"], row["agent"], row["utility"])
        if row["lam"] is not None and row["method"] == "unidentified":
            unidentified[key] += 1
        elif row["lam"] is not None:
            groups[key].append(row)
    out = []
    for key in sorted(groups.keys() | unidentified.keys()):
        experiment, model, agent, utility = key
        members = groups.get(key, [])
        told = [float(m["lam"]) for m in members]
        slope = calibration_slope(told, [m["revealed"] for m in members])
        out.append(
            {
                "experiment": experiment,
                "model": model,
                "agent": agent,
                "utility": utility,
                "cells": len(members),
                "unidentified": unidentified[key],
                "slope": slope,
            }
        )
    return out

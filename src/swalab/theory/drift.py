"""Where value drift takes a population of two λ types: the mean-field map and its fixed points.

A population holds a prosocial type ``λ_P`` (at or above the scorer's switch) and a selfish
type ``λ_S`` (below it), in shares ``p`` and ``1 − p``. Matched at random into groups of
``N``, an agent's payoff depends on its type and on how many of its group are prosocial:
``π_P(k)`` for a prosocial agent in a group with ``k`` prosocial (``1 ≤ k ≤ N``), ``π_S(k)``
for a selfish one (``0 ≤ k ≤ N − 1``). :func:`swalab.swi.drift.payoff_table` measures them on
the engine (the SWI rule's play has no closed form once beliefs move); everything here is
closed form given that table.

With many agents, a prosocial agent's group has ``K_P = 1 + Bin(N − 1, p)`` prosocial members
and a selfish agent's ``K_S = Bin(N − 1, p)``; the two are independent. Then, with a share
``a`` of agents revising per round, selection strength ``s`` and mutation ``μ`` to a type
drawn uniformly from the two (``docs/theory.md`` §10):

* imitation (Fermi): ``p' = p + a·p·(1 − p)·E[tanh(s·(π_P(K_P) − π_S(K_S))/2)]``, because a
  revising agent meets the other type with the other type's share and copies it with
  ``1/(1 + e^{−sΔ})``, and ``F(Δ) − F(−Δ) = tanh(sΔ/2)``;
* replicator (Wright–Fisher): ``p' = (1 − a)·p + a·p·E[e^{sπ_P}] / (p·E[e^{sπ_P}] +
  (1 − p)·E[e^{sπ_S}])``;

then ``p'' = (1 − μ)·p' + μ/2``. Without mutation ``p = 0`` and ``p = 1`` are fixed points of
both maps; which is stable, and whether an interior one exists, is decided by the sign of
the expected payoff gap — in the congestion game a selfish agent out-earns a prosocial one
in the same group, so the gap favours λ_S and prosocial populations erode.

Reinforcement on one's own payoff (logit choice over learned values ``Q_P``, ``Q_S`` with
learning rate ``a``) comes to rest where every agent's values equal the expected payoffs at
the share it plays in, so its rest points are the *logit equilibria*
``p = (1 − μ)·σ(s·Δ(p)) + μ/2`` with ``Δ(p) = E[π_P(K_P)] − E[π_S(K_S)]`` and σ the
logistic function (:func:`logit_fixed_points`); :func:`reinforcement_trajectory` follows the
values of the agents that started prosocial and of those that started selfish.

Conformity keeps the mean λ and shrinks every deviation by ``(1 − c)`` a round; a
principal's pull multiplies every λ by ``(1 − ρ)``, so a population starting at ``λ_0``
falls below a switch ``λ_c`` after
``⌈ln(λ_c/λ_0) / ln(1 − ρ)⌉`` rounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from swalab._validate import FloatArray


@dataclass(frozen=True)
class PayoffTable:
    """Mean payoff of each type by the number of prosocial agents in its group.

    Attributes:
        prosocial: ``π_P(k)`` at index ``k`` (index 0 unused: NaN).
        selfish: ``π_S(k)`` at index ``k`` (index ``N`` unused: NaN).
    """

    prosocial: FloatArray
    selfish: FloatArray


def _groups(p: float, n: int) -> FloatArray:
    """P(Bin(N − 1, p) = j) for j = 0..N − 1: the others' prosocial count."""
    return np.array([math.comb(n - 1, j) * p**j * (1 - p) ** (n - 1 - j) for j in range(n)])


def step_map(
    p: float,
    table: PayoffTable,
    *,
    rule: str,
    selection: float,
    rate: float = 1.0,
    mutation: float = 0.0,
) -> float:
    """The expected prosocial share after one round, from share ``p`` (see the module)."""
    n = table.prosocial.size - 1
    w = _groups(p, n)
    pi_p = table.prosocial[1:]  # K_P = 1 + j
    pi_s = table.selfish[:n]  # K_S = j
    if rule == "imitation":
        gap = pi_p[:, None] - pi_s[None, :]
        drift = float(w @ np.tanh(selection * gap / 2.0) @ w)
        nxt = p + rate * p * (1.0 - p) * drift
    elif rule == "replicator":
        shift = max(float(np.max(pi_p)), float(np.max(pi_s)))
        fit_p = float(w @ np.exp(selection * (pi_p - shift)))
        fit_s = float(w @ np.exp(selection * (pi_s - shift)))
        denom = p * fit_p + (1.0 - p) * fit_s
        nxt = (1.0 - rate) * p + rate * (p * fit_p / denom if denom > 0 else p)
    elif rule == "none":
        nxt = p
    else:
        raise ValueError(f"rule={rule!r} has no two-type map: choose imitation, replicator or none")
    return (1.0 - mutation) * nxt + mutation / 2.0


def trajectory(p0: float, rounds: int, table: PayoffTable, **rule: float | str) -> FloatArray:
    """The mean-field prosocial share at the start of rounds 0..``rounds``."""
    out = [float(p0)]
    for _ in range(rounds):
        out.append(step_map(out[-1], table, **rule))  # type: ignore[arg-type]
    return np.asarray(out)


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point of the map and whether it attracts (``|f'(p*)| < 1``)."""

    share: float
    stable: bool


def fixed_points(table: PayoffTable, *, grid: int = 2001, **rule: float | str) -> list[FixedPoint]:
    """Every fixed point of the two-type map on [0, 1], with its stability (``|f′| < 1``).

    Roots of ``f(p) − p`` bracketed on a grid and refined by bisection; the ends count when
    ``f`` maps them to themselves. Stability from a central difference of ``f``.
    """

    def f(p: float) -> float:
        return step_map(p, table, **rule)  # type: ignore[arg-type]

    return [FixedPoint(r, abs(slope) < 1.0) for r, slope in _roots(f, grid)]


def payoff_gap(p: float, table: PayoffTable) -> float:
    """``Δ(p) = E[π_P(1 + B)] − E[π_S(B)]``, ``B ~ Bin(N − 1, p)``: what being prosocial costs."""
    n = table.prosocial.size - 1
    w = _groups(p, n)
    return float(w @ table.prosocial[1:] - w @ table.selfish[:n])


def logit_fixed_points(
    table: PayoffTable, *, selection: float, mutation: float = 0.0, grid: int = 2001
) -> list[FixedPoint]:
    """The logit equilibria ``p = (1 − μ)·σ(s·Δ(p)) + μ/2``: where reinforcement comes to rest.

    Stable when ``g′(p*) < 1`` for ``g(p) = (1 − μ)·σ(s·Δ(p)) + μ/2`` (the logit dynamic
    ``ṗ = g(p) − p`` that learning with a small rate follows).
    """

    def g(p: float) -> float:
        return (1.0 - mutation) / (1.0 + math.exp(-selection * payoff_gap(p, table))) + mutation / 2

    return [FixedPoint(r, slope < 1.0) for r, slope in _roots(g, grid)]


def reinforcement_trajectory(
    p0: float,
    rounds: int,
    table: PayoffTable,
    *,
    selection: float,
    rate: float,
    mutation: float = 0.0,
) -> FloatArray:
    """The mean-field prosocial share under reinforcement, rounds 0..``rounds``.

    Two classes — the agents that started prosocial (share ``p0``) and those that started
    selfish — each with values ``Q_P``, ``Q_S`` starting at 0 and a share ``x`` playing
    prosocial (1 and 0 in round 0). Each round a class's value of a type moves ``a`` toward
    that type's expected payoff at the population's share ``p``, weighted by how often the
    class plays it; then ``x = (1 − μ)·σ(s·(Q_P − Q_S)) + μ/2``.
    """
    n = table.prosocial.size - 1
    x = np.array([1.0, 0.0])  # share playing prosocial, per class
    weight = np.array([p0, 1.0 - p0])
    q = np.zeros((2, 2))  # (class, type): values of prosocial, selfish
    out = [float(p0)]
    for _ in range(rounds):
        p = float(weight @ x)
        w = _groups(p, n)
        earn = np.array([w @ table.prosocial[1:], w @ table.selfish[:n]])
        played = np.stack([x, 1.0 - x], axis=1)
        q += rate * played * (earn[None, :] - q)
        x = (1.0 - mutation) / (1.0 + np.exp(-selection * (q[:, 0] - q[:, 1]))) + mutation / 2
        out.append(float(weight @ x))
    return np.asarray(out)


def _roots(f: Callable[[float], float], grid: int) -> list[tuple[float, float]]:
    """Each root of ``f(p) − p`` on [0, 1] and ``f′`` there (grid brackets, then bisection)."""
    xs = np.linspace(0.0, 1.0, grid)
    g = np.array([f(x) - x for x in xs])
    roots: list[float] = []
    for i in range(grid - 1):
        if g[i] == 0.0:
            roots.append(float(xs[i]))
        elif g[i] * g[i + 1] < 0:
            lo, hi = float(xs[i]), float(xs[i + 1])
            for _ in range(60):
                mid = (lo + hi) / 2
                if (f(lo) - lo) * (f(mid) - mid) <= 0:
                    hi = mid
                else:
                    lo = mid
            roots.append((lo + hi) / 2)
    if g[-1] == 0.0:
        roots.append(1.0)
    out = []
    for r in roots:
        h = 1e-6
        a, b = max(r - h, 0.0), min(r + h, 1.0)
        out.append((r, (f(b) - f(a)) / (b - a)))
    return out


def first_below(mean_lam: FloatArray, switch: float) -> int | None:
    """The first round whose mean λ is below ``switch`` (None: never, or no finite value)."""
    below = np.nonzero(np.asarray(mean_lam) < switch)[0]
    return int(below[0]) if below.size else None


def collapse_round(shares: FloatArray, types: tuple[float, float], switch: float) -> int | None:
    """The first round whose mean λ ``p·λ_P + (1 − p)·λ_S`` is below ``switch`` (None: never)."""
    lam_p, lam_s = types
    return first_below(np.asarray(shares) * lam_p + (1.0 - np.asarray(shares)) * lam_s, switch)


def principal_collapse(lam0: float, switch: float, rate: float) -> int | None:
    """Rounds until ``λ_0·(1 − ρ)^r`` falls below ``switch`` (0 if it starts below; None: ρ = 0)."""
    if lam0 < switch:
        return 0
    if rate <= 0 or switch <= 0:
        return None
    if rate >= 1:
        return 1
    r = math.log(switch / lam0) / math.log(1.0 - rate)
    rounds = math.ceil(r)
    return rounds + 1 if lam0 * (1.0 - rate) ** rounds >= switch else rounds


def stability_margin(table: PayoffTable) -> float:
    """``π_P(N) − π_S(N − 1)``: positive iff an all-prosocial population (p = 1) attracts.

    Near ``p = 1`` every prosocial agent is in an all-prosocial group and the rare selfish
    one among ``N − 1`` prosocial members, so both maps' slope at 1 is below 1 exactly when
    a prosocial agent there earns more than the invader (for imitation
    ``f′(1) = 1 − a·tanh(s·margin/2)``; the replicator's condition is the same at any s).
    """
    n = table.prosocial.size - 1
    return float(table.prosocial[n] - table.selfish[n - 1])

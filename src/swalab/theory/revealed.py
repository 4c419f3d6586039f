"""Revealed social weight: the λ that best explains observed choices under a stated utility.

Every utility model swalab uses is linear in λ: ``U(a; λ) = (1 − λ)·P(a) + λ·G(a)`` with
``P`` the private and ``G`` the group term of a candidate ``a`` (the SWI scorers' scores, or
the game's own ``R_i`` and ``W/N``). So one decision — a chosen action among candidates —
is evidence about λ through ``P`` and ``D = G − P`` alone, and two estimators follow
(docs/theory.md, "Revealed λ"):

* **Identified interval** (deterministic argmax choice): the λ ∈ [0, 1] at which every
  chosen action is a maximiser. Each candidate ``a`` gives one linear inequality
  ``λ·(D(a*) − D(a)) ≥ P(a) − P(a*)``, so each decision's set is an interval and so is
  their intersection. It is exact and needs no noise model; it is empty when no single λ
  explains every choice.
* **Logit choice** (noisy choice): ``Pr(a) ∝ exp(κ·U(a; λ))`` with precision ``κ ≥ 0``; the
  maximum-likelihood (λ, κ) on a grid, and a percentile bootstrap CI over decisions. The
  log-likelihood is concave in (κ, κλ), so the grid maximum is the global one up to the
  grid's resolution (:data:`LAMBDA_STEP`), which the interval reports include.

Everything here is pure numpy over padded arrays; reading decisions from a store is
:mod:`swalab.analysis.reveal`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swalab._validate import FloatArray
from swalab.theory.payoffs import excess

#: Spacing of the λ grid of the logit estimate (its resolution).
LAMBDA_STEP = 0.005
#: Relative tolerance under which two utilities count as tied.
TIE_TOL = 1e-9
#: 95 % point of χ² with 2 degrees of freedom: the logit model (λ, κ) must beat uniformly
#: random choice by this much twice-log-likelihood for λ to count as identified.
CHI2_2DF_95 = 5.991


@dataclass(frozen=True)
class Decisions:
    """Observed choices, padded to a common number of candidates.

    Attributes:
        private: ``(D, A)`` private term ``P`` of each candidate.
        group: ``(D, A)`` group term ``G``.
        mask: ``(D, A)`` which entries are real candidates.
        chosen: ``(D,)`` index of the chosen candidate.
        weight: ``(D,)`` how many identical decisions each row stands for.
    """

    private: FloatArray
    group: FloatArray
    mask: np.ndarray
    chosen: np.ndarray
    weight: FloatArray

    @classmethod
    def from_lists(
        cls,
        candidates: Sequence[Sequence[float]],
        private: Sequence[Sequence[float]],
        group: Sequence[Sequence[float]],
        chosen: Sequence[float],
    ) -> Decisions:
        """Decisions from per-decision lists; identical decisions are merged into weights.

        Args:
            candidates: Each decision's candidate actions.
            private: Their private terms.
            group: Their group terms.
            chosen: The action taken (must be one of the candidates).

        Raises:
            ValueError: Lengths differ, or a chosen action is not among its candidates.
        """
        if not (len(candidates) == len(private) == len(group) == len(chosen)):
            raise ValueError("candidates, private, group and chosen must have one entry each")
        if not candidates:
            raise ValueError("no decisions to estimate λ from")
        merged: dict[tuple[tuple[float, ...], tuple[float, ...], int], int] = {}
        keys: list[tuple[tuple[float, ...], tuple[float, ...], int]] = []
        counts: list[int] = []
        for d, (c, p, g, a) in enumerate(zip(candidates, private, group, chosen, strict=True)):
            if not (len(c) == len(p) == len(g)) or not len(c):
                raise ValueError(f"decision {d}: candidates, private and group differ in length")
            hits = [j for j, x in enumerate(c) if x == a]
            if not hits:
                raise ValueError(f"decision {d}: chosen action {a} is not among its candidates")
            key = (tuple(map(float, p)), tuple(map(float, g)), hits[0])
            if key in merged:
                counts[merged[key]] += 1
            else:
                merged[key] = len(keys)
                keys.append(key)
                counts.append(1)
        shape = (len(keys), max(len(k[0]) for k in keys))
        out_p, out_g = np.zeros(shape), np.zeros(shape)
        mask = np.zeros(shape, dtype=bool)
        for i, (p, g, _) in enumerate(keys):
            out_p[i, : len(p)], out_g[i, : len(g)], mask[i, : len(p)] = p, g, True
        return cls(
            private=out_p,
            group=out_g,
            mask=mask,
            chosen=np.array([k[2] for k in keys]),
            weight=np.array(counts, dtype=np.float64),
        )

    @property
    def count(self) -> int:
        """Decisions observed (merged ones counted each time)."""
        return int(self.weight.sum())

    def utility(self, lam: float | FloatArray) -> FloatArray:
        """``U = (1 − λ)·P + λ·G`` per candidate; λ broadcasts as ``(Λ, 1, 1)`` if an array."""
        lam_arr = np.asarray(lam, dtype=np.float64)
        if lam_arr.ndim:
            lam_arr = lam_arr[:, None, None]
        u: FloatArray = (1.0 - lam_arr) * self.private + lam_arr * self.group
        return np.where(self.mask, u, -np.inf)

    def best_share(self, lam: float) -> float:
        """Share of decisions whose chosen action is a maximiser at ``lam`` (ties count)."""
        u = self.utility(lam)
        best = u.max(axis=1)
        mine = u[np.arange(len(u)), self.chosen]
        ok = mine >= best - TIE_TOL * np.maximum(1.0, np.abs(best))
        return float((ok * self.weight).sum() / self.weight.sum())


@dataclass(frozen=True)
class Revealed:
    """A revealed social weight.

    Attributes:
        method: ``"interval"`` (every choice is an argmax in ``[low, high]``), ``"logit"``,
            or ``"unidentified"`` (the logit model explains the choices no better than
            uniformly random choice: ``revealed`` is NaN and the interval [0, 1]).
        revealed: The point estimate: the interval's midpoint, or the logit MLE.
        low: Lower end: the interval's, or the bootstrap CI's (widened by the grid step).
        high: Upper end, likewise.
        decisions: Decisions used.
        best_share: Share of decisions that are an argmax at ``revealed``.
        kappa: The logit precision at the MLE (``None`` for an interval).
        fit: How much better than uniformly random choice the model explains the choices:
            McFadden's ``1 − LL(λ̂, κ̂)/LL(uniform)`` (1 for an interval: every choice
            explained). Near 0, the choices barely depend on the utility at any λ, and the
            revealed λ says little.
    """

    method: str
    revealed: float
    low: float
    high: float
    decisions: int
    best_share: float
    kappa: float | None = None
    fit: float = 1.0


def identified_interval(dec: Decisions) -> tuple[float, float] | None:
    """The λ ∈ [0, 1] at which every chosen action is a maximiser, or ``None`` if none.

    Candidate ``a`` against the chosen ``a*``: ``λ·(D* − D_a) ≥ P_a − P*`` with ``D = G − P``;
    near-ties (:data:`TIE_TOL`) count as satisfied, as the argmax broke them.
    """
    rows = np.arange(len(dec.chosen))
    d = dec.group - dec.private
    p_star = dec.private[rows, dec.chosen][:, None]
    d_star = d[rows, dec.chosen][:, None]
    slope = np.where(dec.mask, d_star - d, 0.0)
    need = np.where(dec.mask, dec.private - p_star, -np.inf)
    scale = np.maximum(1.0, np.maximum(np.abs(dec.private), np.abs(dec.group)))
    need = need - TIE_TOL * scale
    flat = np.abs(slope) <= TIE_TOL * scale
    if np.any(flat & (need > 0)):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = need / slope
    low = float(np.max(np.where(~flat & (slope > 0), bound, 0.0), initial=0.0))
    high = float(np.min(np.where(~flat & (slope < 0), bound, 1.0), initial=1.0))
    low, high = max(low, 0.0), min(high, 1.0)
    return (low, high) if low <= high else None


def _log_likelihoods(dec: Decisions, lams: FloatArray, kappas: FloatArray) -> FloatArray:
    """``(D, Λ·K)`` log-probability of each decision's choice at every (λ, κ) of the grid."""
    rows = np.arange(len(dec.chosen))
    out = np.empty((len(rows), lams.size, kappas.size))
    for j, lam in enumerate(lams):
        u = (1.0 - lam) * dec.private + lam * dec.group
        u = u - np.where(dec.mask, u, -np.inf).max(axis=1, keepdims=True)  # stable
        mine = u[rows, dec.chosen]
        z = kappas[None, :, None] * u[:, None, :]
        z = np.where(dec.mask[:, None, :], z, -np.inf)
        out[:, j, :] = kappas[None, :] * mine[:, None] - np.log(np.exp(z).sum(axis=2))
    return out.reshape(len(rows), -1)


def _kappa_grid(dec: Decisions, size: int = 40) -> FloatArray:
    """Precisions from near-random to near-argmax choice on the data's own utility scale."""
    spread = np.where(dec.mask, np.abs(dec.private) + np.abs(dec.group), 0.0).max()
    unit = 1.0 / max(float(spread), 1e-12)
    return unit * np.geomspace(1e-1, 1e4, size)


def logit_estimate(
    dec: Decisions, *, resamples: int = 500, seed: int = 0, level: float = 0.95
) -> Revealed:
    """Maximum-likelihood λ of a logit choice model with a percentile bootstrap CI.

    Bootstrap resamples decisions (choices are conditioned on what each agent saw, so they
    are the independent units of the model). The CI is widened by the λ grid step. Choices
    the model explains no better than uniformly random choice (likelihood-ratio test, 5 %)
    leave λ ``"unidentified"`` rather than at an arbitrary end of the grid.
    """
    lams = np.linspace(0.0, 1.0, round(1 / LAMBDA_STEP) + 1)
    kappas = _kappa_grid(dec)
    table = _log_likelihoods(dec, lams, kappas)
    total = dec.weight @ table
    best = int(np.argmax(total))
    uniform = -float((dec.weight * np.log(dec.mask.sum(axis=1))).sum())
    fit = 1.0 - float(total[best]) / uniform if uniform < 0 else 0.0
    if 2 * (float(total[best]) - uniform) < CHI2_2DF_95:
        return Revealed(
            method="unidentified",
            revealed=float("nan"),
            low=0.0,
            high=1.0,
            decisions=dec.count,
            best_share=float("nan"),
            fit=fit,
        )
    lam_hat, kappa_hat = lams[best // kappas.size], kappas[best % kappas.size]
    rng = np.random.default_rng(seed)
    probs = dec.weight / dec.weight.sum()
    counts = rng.multinomial(dec.count, probs, size=resamples).astype(np.float64)
    boot = lams[np.argmax(counts @ table, axis=1) // kappas.size]
    tail = (1 - level) / 2
    low = max(0.0, float(np.quantile(boot, tail)) - LAMBDA_STEP)
    high = min(1.0, float(np.quantile(boot, 1 - tail)) + LAMBDA_STEP)
    return Revealed(
        method="logit",
        revealed=float(lam_hat),
        low=min(low, float(lam_hat)),
        high=max(high, float(lam_hat)),
        decisions=dec.count,
        best_share=dec.best_share(float(lam_hat)),
        kappa=float(kappa_hat),
        fit=fit,
    )


def reveal(dec: Decisions, *, resamples: int = 500, seed: int = 0) -> Revealed:
    """The identified interval where one exists, else the logit estimate.

    A deterministic argmax chooser (an SWI agent) always has an interval containing its λ;
    noisy choosers (a sampled LLM, a tremble) usually leave none, and the logit model
    says which λ makes their choices most likely.
    """
    interval = identified_interval(dec)
    if interval is None:
        return logit_estimate(dec, resamples=resamples, seed=seed)
    low, high = interval
    mid = (low + high) / 2
    return Revealed(
        method="interval",
        revealed=mid,
        low=low,
        high=high,
        decisions=dec.count,
        best_share=dec.best_share(mid),
    )


def game_terms(
    actions: FloatArray,
    others_load: float,
    *,
    n_agents: int,
    capacity: float,
    beta: float,
    weight: float = 1.0,
    value: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """The game's own ``(R_i, W/N)`` of each action, the others' load taken as given.

    ``R_i(a) = v·a − (β/N)·E`` and ``W = v·a + O − β·E`` with ``E = max(0, w·a + O − C)``
    and the others' load ``O`` standing for their gain (unit values: what an agent sees).
    """
    a = np.asarray(actions, dtype=np.float64)
    exc = excess(weight * a + others_load, capacity)
    own = value * a
    return own - (beta / n_agents) * exc, (own + others_load - beta * exc) / n_agents


def calibration_slope(told: Sequence[float], revealed: Sequence[float]) -> float | None:
    """Least-squares slope of revealed λ on the λ an agent was told (1: calibrated, 0: deaf).

    ``None`` when fewer than two distinct λ were told.
    """
    x, y = np.asarray(told, dtype=np.float64), np.asarray(revealed, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return None
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())

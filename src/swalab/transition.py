"""Where a system actually switches: the empirical λ_c with a bootstrap interval.

The overload rate of a curve (one system, λ swept) is fitted by a non-increasing step
function (weighted isotonic regression, pool-adjacent-violators), and λ_c is where that fit
crosses 0.5, linearly interpolated between the two grid points either side. The monotone
fit needs no functional form (a logistic would be wrong for the knife-edge switches the
model-based rule makes) and tolerates noisy, non-monotone LLM curves; the interpolation
puts a clean step from 1 to 0 at the midpoint of its grid gap, so on any grid the estimate
is within half a step of the last overloaded and the first stable λ.

Seeds are resampled within each λ (a stratified bootstrap) and the fit is redone per
replicate. The interpolation inside a grid gap is an assumption, not a measurement: the
curve could drop anywhere between the two λ run either side. So each replicate contributes
its whole gap, and the interval runs from the lower quantile of the gaps' lower ends to the
upper quantile of their upper ends — it is never narrower than the grid's resolution where
the switch is (a switch between grid λ 0.5 and 0.9 reads ``0.7 [0.5, 0.9]``, and two systems
no grid can tell apart get the same interval). A replicate whose curve never crosses is
censored at ±∞, so an interval end that the data cannot bound comes back as ``None`` instead
of a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from swalab.stats import LEVEL

LOCATED = "located"
STABLE_EVERYWHERE = "stable on the whole grid"
OVERLOADED_EVERYWHERE = "overloaded on the whole grid"

#: Resamples for a transition's interval (each refits the curve).
N_BOOT = 1000


@dataclass(frozen=True)
class Transition:
    """The switching point of one curve.

    Attributes:
        status: :data:`LOCATED`, :data:`STABLE_EVERYWHERE` (λ_c at or below the smallest λ
            run) or :data:`OVERLOADED_EVERYWHERE` (no switch up to the largest λ run).
        lambda_c: The estimate, ``None`` unless located.
        ci_low: Lower end of the bootstrap interval over grid gaps (the grid's resolution
            included), ``None`` where the data cannot bound it.
        ci_high: Upper end, likewise.
        grid_low: The largest λ run whose fitted rate is at or above the level (``None``
            when there is none): λ_c lies in ``(grid_low, grid_high]``.
        grid_high: The smallest λ run whose fitted rate is below the level.
        lams: The distinct λ values of the curve, ascending.
        rate: Mean overload rate over seeds at each λ.
        fitted: The non-increasing fit of ``rate``.
        seeds: Fewest seeds behind any λ of the curve.
        located_share: Share of bootstrap replicates that located a crossing.
    """

    status: str
    lambda_c: float | None
    ci_low: float | None
    ci_high: float | None
    grid_low: float | None
    grid_high: float | None
    lams: np.ndarray
    rate: np.ndarray
    fitted: np.ndarray
    seeds: int
    located_share: float


def isotonic_decreasing(y: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """The non-increasing sequence closest to ``y`` in weighted least squares (PAVA)."""
    values = -np.asarray(y, dtype=np.float64)  # fit non-decreasing to −y
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or w.shape != values.shape:
        raise ValueError(f"y and weights must be 1-D of one length, got {values.shape}, {w.shape}")
    if (w <= 0).any():
        raise ValueError("weights must be positive")
    means: list[float] = []
    mass: list[float] = []
    sizes: list[int] = []
    for v, wt in zip(values.tolist(), w.tolist(), strict=True):
        means.append(v)
        mass.append(wt)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:  # pool the violating pair
            m2, w2, s2 = means.pop(), mass.pop(), sizes.pop()
            total = mass[-1] + w2
            means[-1] = (means[-1] * mass[-1] + m2 * w2) / total
            mass[-1] = total
            sizes[-1] += s2
    return -np.repeat(np.asarray(means), sizes)


def crossing(
    lams: ArrayLike, fitted: ArrayLike, level: float = 0.5
) -> tuple[str, float | None, float | None, float | None]:
    """Where a non-increasing curve first drops below ``level``.

    Returns:
        ``(status, lambda_c, grid_low, grid_high)`` as in :class:`Transition`.
    """
    lam = np.asarray(lams, dtype=np.float64)
    fit = np.asarray(fitted, dtype=np.float64)
    below = np.flatnonzero(fit < level)
    if below.size == 0:
        return OVERLOADED_EVERYWHERE, None, float(lam[-1]), None
    i = int(below[0])
    if i == 0:
        return STABLE_EVERYWHERE, None, None, float(lam[0])
    frac = (fit[i - 1] - level) / (fit[i - 1] - fit[i])
    return (
        LOCATED,
        float(lam[i - 1] + frac * (lam[i] - lam[i - 1])),
        float(lam[i - 1]),
        float(lam[i]),
    )


def estimate_transition(
    lam: ArrayLike,
    rate: ArrayLike,
    *,
    level: float = 0.5,
    n_boot: int = N_BOOT,
    ci: float = LEVEL,
    seed: int = 0,
) -> Transition:
    """Estimate λ_c from per-episode ``(λ, overload rate)`` observations.

    Args:
        lam: λ of each episode.
        rate: Overload rate of each episode (NaN entries, e.g. failed episodes, drop out).
        level: The overload rate that defines the switch.
        n_boot: Bootstrap resamples (0: no interval).
        ci: Coverage of the interval.
        seed: Seed of the resampling (the estimate is reproducible).

    Raises:
        ValueError: No finite observation, or arrays of different lengths.
    """
    x = np.asarray(lam, dtype=np.float64).ravel()
    y = np.asarray(rate, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"lam has {x.size} values and rate has {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        raise ValueError("no finite (λ, overload rate) observation to estimate a transition from")
    lams, group = np.unique(x, return_inverse=True)
    groups = [y[group == j] for j in range(lams.size)]
    counts = np.array([g.size for g in groups], dtype=np.float64)
    means = np.array([g.mean() for g in groups])
    fitted = isotonic_decreasing(means, counts)
    status, lambda_c, grid_low, grid_high = crossing(lams, fitted, level)

    ci_low = ci_high = None
    located_share = float("nan")
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        boot_means = np.column_stack(
            [g[rng.integers(0, g.size, size=(n_boot, g.size))].mean(axis=1) for g in groups]
        )
        lows, highs = np.empty(n_boot), np.empty(n_boot)
        for b in range(n_boot):
            st, lc, lo, hi = crossing(lams, isotonic_decreasing(boot_means[b], counts), level)
            if lc is None:  # censored: the whole replicate lies beyond the grid's end
                lows[b] = highs[b] = -np.inf if st == STABLE_EVERYWHERE else np.inf
            else:
                lows[b], highs[b] = lo, hi
        located_share = float(np.isfinite(lows).mean())
        if status == LOCATED:
            tail = (1.0 - ci) / 2.0
            low = np.quantile(lows, tail, method="inverted_cdf")
            high = np.quantile(highs, 1.0 - tail, method="inverted_cdf")
            ci_low = float(low) if np.isfinite(low) else None
            ci_high = float(high) if np.isfinite(high) else None
    return Transition(
        status=status,
        lambda_c=lambda_c,
        ci_low=ci_low,
        ci_high=ci_high,
        grid_low=grid_low,
        grid_high=grid_high,
        lams=lams,
        rate=means,
        fitted=fitted,
        seeds=int(counts.min()),
        located_share=located_share,
    )

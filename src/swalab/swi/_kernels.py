"""Numba kernels of the lockstep engine (imported only when the engine runs).

One fused kernel plays whole episodes: candidate generation, scoring, selection, payoffs,
belief update and metrics, with episodes spread over cores. Every floating-point operation
is written in the same order as the numpy code of the per-agent path
(:mod:`swalab.swi.scorers`, :func:`swalab.theory.congestion_payoffs`,
:mod:`swalab.swi.beliefs`, :mod:`swalab.swi.outsiders`) and compiled without fast-math,
so both paths produce bit-identical trajectories from the same candidates.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, uint64

from swalab._validate import FloatArray

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_MIX1 = uint64(0xBF58476D1CE4E5B9)
_MIX2 = uint64(0x94D049BB133111EB)
_S27 = uint64(27)
_S30 = uint64(30)
_S31 = uint64(31)
_S32 = uint64(32)
_LOW32 = uint64(0xFFFFFFFF)
_ONE = uint64(1)
_ZERO = uint64(0)

MODE_GRID, MODE_RANDOM, MODE_GIVEN, MODE_ANCHORS = 0, 1, 2, 3
# What agents are told before they act (an institution of swalab.swi.drift).
TALK_NONE, TALK_CHEAP, TALK_MEDIATOR = 0, 1, 2
SCORER_PAPER, SCORER_CONSISTENT = 0, 1
# Belief kinds and agent kinds, in the order of beliefs.BELIEF_KINDS / outsiders.AGENT_KINDS.
BELIEF_EMA, BELIEF_LAST, BELIEF_WINDOW = 0, 1, 2
AGENT_SWI, AGENT_GREEDY, AGENT_FIXED, AGENT_TFT, AGENT_RANDOM, AGENT_ADVERSARY = range(6)
_NOISE_STREAM = 1 << 21
_OUTSIDER_STREAM = 1 << 22
_TWO_PI = 6.283185307179586
_INV53 = 2.0**-53
# Columns of the per-episode summary the kernel fills.
SUM_OVERLOADED, SUM_WELFARE, SUM_LOAD, SUM_FAIRNESS, LAST_OVERLOADED = range(5)
N_SUMMARY = 5


@njit(cache=True, inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _next_key(key: np.uint64, salt: int) -> np.uint64:
    """Compiled twin of ``_rng.step_key`` / ``_rng.agent_key``."""
    return _mix64((key ^ uint64(salt)) + _GOLDEN)


@njit(cache=True)
def stream_key(seed: int, step: int, agent: int) -> np.uint64:
    """Compiled twin of :func:`swalab.swi._rng.stream_key`."""
    return _next_key(_next_key(_mix64(uint64(seed) + _GOLDEN), step), agent)


@njit(cache=True, inline="always")
def uniform(key: np.uint64, draw: int) -> float:
    """Compiled twin of :func:`swalab.swi._rng.uniform`."""
    return float(_mix64(key + uint64(draw + 1) * _GOLDEN) >> uint64(11)) * _INV53


@njit(cache=True, inline="always")
def gaussian(key: np.uint64) -> float:
    """Compiled twin of :func:`swalab.swi._rng.gaussian`."""
    radius = math.sqrt(-2.0 * math.log(1.0 - uniform(key, 0)))
    return radius * math.cos(_TWO_PI * uniform(key, 1))


@njit(cache=True)
def outsider(
    kind: int,
    param: float,
    x_max: float,
    weight: float,
    capacity: float,
    n: int,
    grid_step: float,
    started: bool,
    last_load: float,
    last_own: float,
    seed: int,
    step: int,
    agent: int,
) -> float:
    """Compiled twin of :func:`swalab.swi.outsiders.outsider_demand`."""
    if kind == AGENT_GREEDY:
        return x_max
    if kind == AGENT_FIXED:
        return min(param, x_max)
    if kind == AGENT_TFT:
        cooperate = capacity / n if math.isnan(param) else param
        if (not started) or last_load <= capacity:
            return min(cooperate, x_max)
        return x_max
    if kind == AGENT_RANDOM:
        size = math.floor(x_max / grid_step + 1e-9) + 1
        u = uniform(stream_key(seed, step, _OUTSIDER_STREAM + agent), 0)
        return min(math.floor(u * size) * grid_step, x_max)
    # AGENT_ADVERSARY
    others = last_load - weight * last_own if started else (n - 1) * capacity / n
    if others > capacity:
        return 0.0
    need = (capacity - others) / weight
    return min(math.floor(need / grid_step + 1.0 + 1e-9) * grid_step, x_max)


@njit(cache=True, inline="always")
def floyd_sample(key: np.uint64, population: int, k: int, out: np.ndarray) -> None:
    """Compiled twin of :func:`swalab.swi._rng.floyd_sample`, writing into ``out``."""
    state = key
    r = uint64(0)
    mask = uint64(0)
    for n in range(k):
        j = population - k + n
        if n % 2 == 0:
            state = state + _GOLDEN
            r = _mix64(state)
            bits = r >> _S32
        else:
            bits = r & _LOW32
        t = np.int64((bits * uint64(j + 1)) >> _S32)
        if population <= 64:  # membership by bitmask: no inner loop
            seen = (mask >> uint64(t)) & _ONE != _ZERO
            pick = j if seen else t
            mask |= _ONE << uint64(pick)
        else:
            seen = False
            for m in range(n):
                seen |= out[m] == t
            pick = j if seen else t
        out[n] = pick


@njit(cache=True, inline="always")
def _score(
    cands: FloatArray,
    count: int,
    util: FloatArray,
    others: float,
    lam: float,
    inv_x_max: float,
    weight: float,
    value: float,
    beta: float,
    c_eff: float,
    gamma: float,
    inv_reference: float,
    n: int,
    scorer: int,
) -> None:
    """Fill ``util[:count]`` with the SWI utility of each candidate.

    One branch-free loop per scorer so LLVM vectorises it. The centering term is added even
    when ``γ = 0``: adding ``+0.0`` to a non-negative penalty is exact, so this matches the
    numpy path, which skips it.
    """
    if scorer == SCORER_PAPER:
        for j in range(count):
            a = cands[j]
            load = weight * a + others
            d = load - c_eff
            penalty = beta * max(d, 0.0) + gamma * (d * d)
            predicted = (value * a + others) - penalty
            group = min(max(predicted * inv_reference, 0.0), 1.0)
            util[j] = (1.0 - lam) * (a * inv_x_max) + lam * group
    else:
        for j in range(count):
            a = cands[j]
            load = weight * a + others
            d = load - c_eff
            penalty = beta * max(d, 0.0) + gamma * (d * d)
            gain = value * a
            predicted = (gain + others) - penalty
            util[j] = (1.0 - lam) * (gain - penalty / n) + lam * (predicted / n)


@njit(cache=True, inline="always")
def _better(u: float, a: float, best_u: float, best_a: float) -> bool:
    return (u > best_u) | ((u == best_u) & (a < best_a))


@njit(cache=True, inline="always")
def _select(cands: FloatArray, util: FloatArray, count: int) -> float:
    """Return the candidate of largest utility, ties to the smallest action.

    Four independent running bests shorten the dependency chain; the rule is associative
    and commutative, so merging them at the end gives the same answer as one pass.
    """
    u0 = u1 = u2 = u3 = -math.inf
    a0 = a1 = a2 = a3 = math.inf
    j = 0
    while j + 4 <= count:
        if _better(util[j], cands[j], u0, a0):
            u0, a0 = util[j], cands[j]
        if _better(util[j + 1], cands[j + 1], u1, a1):
            u1, a1 = util[j + 1], cands[j + 1]
        if _better(util[j + 2], cands[j + 2], u2, a2):
            u2, a2 = util[j + 2], cands[j + 2]
        if _better(util[j + 3], cands[j + 3], u3, a3):
            u3, a3 = util[j + 3], cands[j + 3]
        j += 4
    while j < count:
        if _better(util[j], cands[j], u0, a0):
            u0, a0 = util[j], cands[j]
        j += 1
    if _better(u1, a1, u0, a0):
        u0, a0 = u1, a1
    if _better(u3, a3, u2, a2):
        u2, a2 = u3, a3
    if _better(u2, a2, u0, a0):
        a0 = a2
    return a0


@njit(cache=True, inline="always")
def _observe(
    belief: FloatArray,
    ring: FloatArray,
    demands: FloatArray,
    weights: FloatArray,
    load: float,
    n: int,
    kind: int,
    alpha: float,
    window: int,
    private: bool,
    seen: int,
    head: int,
) -> None:
    """Fold one step into the base belief as the ``beliefs`` module's base models do.

    ``seen`` and ``head`` describe the window ring before this step.
    """
    mean = load / n
    if kind == BELIEF_WINDOW:
        slot = (head + seen) % window if seen < window else head
        for i in range(n):
            ring[slot, i] = (load - weights[i] * demands[i]) / (n - 1) if private else mean
        count = seen + 1 if seen < window else window
        first = head if seen < window else (head + 1) % window
        for i in range(n):
            total = ring[first, i]
            for j in range(1, count):
                total = total + ring[(first + j) % window, i]
            belief[i] = total / count
        return
    for i in range(n):
        obs = (load - weights[i] * demands[i]) / (n - 1) if private else mean
        if kind == BELIEF_LAST:
            belief[i] = obs
        else:
            belief[i] = (1.0 - alpha) * belief[i] + alpha * obs


@njit(cache=True, parallel=True)
def run_episodes(
    lam: FloatArray,
    capacity: FloatArray,
    beta: FloatArray,
    x_max: FloatArray,
    weights: FloatArray,
    values: FloatArray,
    margin: FloatArray,
    gamma: FloatArray,
    alpha: FloatArray,
    belief0: FloatArray,
    seeds: np.ndarray,
    steps: np.ndarray,
    kinds: np.ndarray,
    kind_param: FloatArray,
    belief_kind: np.ndarray,
    window: np.ndarray,
    private: np.ndarray,
    delay: np.ndarray,
    noise: FloatArray,
    scorer: int,
    mode: int,
    k: int,
    grid_step: float,
    anchors: FloatArray,
    given: FloatArray,
    eps: float,
    talk: int,
    summary: FloatArray,
    record: bool,
    out_demands: FloatArray,
    out_loads: FloatArray,
    out_welfare: FloatArray,
    out_beliefs: FloatArray,
    out_rewards: FloatArray,
) -> None:
    """Play ``E`` episodes of ``N`` agents, episode e for ``steps[e]`` steps.

    See ``engine.run_lockstep``. Recorded steps past an episode's horizon are NaN. ``talk``:
    :data:`TALK_CHEAP` — each step every agent first announces the demand it intends, and
    SWI agents decide again believing the others' announced mean; :data:`TALK_MEDIATOR` —
    SWI agents are told the others will ask the fair share ``C/N`` and decide with that.
    """
    n_episodes, n = lam.shape
    n_anchor = anchors.shape[0]
    max_steps = steps.max()
    max_window = max(window.max(), 1)
    if mode == MODE_GIVEN:
        max_cands = given.shape[3]
    elif mode == MODE_RANDOM:
        max_cands = k + n_anchor
    elif mode == MODE_ANCHORS:
        max_cands = n_anchor
    else:
        max_cands = math.floor(x_max.max() / grid_step + 1e-9) + 1 + n_anchor
    for e in prange(n_episodes):
        belief = np.empty(n)  # the base estimate (EMA / last) or the window's last mean
        ring = np.empty((max_window, n))  # window observations, oldest at ``head``
        hist = np.empty((max_steps, n))  # base estimate at each step (for the delay)
        decide = np.empty(n)  # what each agent decides with (delayed, noisy)
        demands = np.empty(n)
        picks = np.empty(max(k, 1), dtype=np.int64)
        cands = np.empty(max_cands)
        util = np.empty(max_cands)
        c_eff = capacity[e] - margin[e]
        inv_reference = 1.0 / (c_eff + eps)
        inv_x_max = np.empty(n)
        grid_size = np.empty(n, dtype=np.int64)
        for i in range(n):
            belief[i] = belief0[e]
            inv_x_max[i] = 1.0 / x_max[e, i]
            grid_size[i] = math.floor(x_max[e, i] / grid_step + 1e-9) + 1
        episode_key = _mix64(uint64(seeds[e]) + _GOLDEN)
        sum_over = 0.0
        sum_welfare = 0.0
        sum_load = 0.0
        sum_fair = 0.0
        last_over = 0.0
        seen = 0
        head = 0
        last_load = 0.0
        t_e = steps[e]
        for t in range(t_e):
            step_key = _next_key(episode_key, t)
            for i in range(n):
                hist[t, i] = belief[i]
            lag = max(t - delay[e], 0)
            for i in range(n):
                b = hist[lag, i]
                if noise[e] > 0.0:
                    b = max(
                        b + noise[e] * gaussian(stream_key(seeds[e], t, _NOISE_STREAM + i)), 0.0
                    )
                decide[i] = b
            for again in range(2 if talk != TALK_NONE else 1):
                if again and talk == TALK_MEDIATOR:  # told the others will ask the fair share
                    for i in range(n):
                        decide[i] = capacity[e] / n
                elif again:  # intentions announced: the others' mean replaces the belief
                    total = 0.0
                    for i in range(n):
                        total += demands[i]
                    for i in range(n):
                        decide[i] = (total - demands[i]) / (n - 1)
                for i in range(n):
                    xm = x_max[e, i]
                    if kinds[e, i] != AGENT_SWI:
                        if again:  # outsiders keep the demand they chose
                            continue
                        demands[i] = outsider(
                            kinds[e, i],
                            kind_param[e, i],
                            xm,
                            weights[e, i],
                            capacity[e],
                            n,
                            grid_step,
                            t > 0,
                            last_load,
                            demands[i],
                            seeds[e],
                            t,
                            i,
                        )
                        continue
                    others = (n - 1) * decide[i]
                    if mode == MODE_GIVEN:
                        count = 0
                        for j in range(given.shape[3]):
                            a = given[t, e, i, j]
                            if not math.isnan(a):
                                cands[count] = a
                                count += 1
                    else:
                        size = grid_size[i]
                        if mode == MODE_ANCHORS:
                            count = 0
                        elif mode == MODE_RANDOM:
                            floyd_sample(_next_key(step_key, i), size, k, picks)
                            count = k
                            for j in range(k):
                                cands[j] = min(picks[j] * grid_step, xm)
                        else:
                            count = size
                            for j in range(size):
                                cands[j] = min(j * grid_step, xm)
                        for j in range(n_anchor):
                            cands[count + j] = min(max(anchors[j], 0.0), xm)
                        count += n_anchor
                    _score(
                        cands,
                        count,
                        util,
                        others,
                        lam[e, i],
                        inv_x_max[i],
                        weights[e, i],
                        values[e, i],
                        beta[e],
                        c_eff,
                        gamma[e],
                        inv_reference,
                        n,
                        scorer,
                    )
                    demands[i] = _select(cands, util, count)
            # Payoffs, in congestion_payoffs' order (sequential sums).
            load = demands[0] * weights[e, 0]
            gain_sum = demands[0] * values[e, 0]
            sq = demands[0] * demands[0]
            for i in range(1, n):
                load += demands[i] * weights[e, i]
                gain_sum += demands[i] * values[e, i]
                sq += demands[i] * demands[i]
            exc = max(load - capacity[e], 0.0)
            welfare = gain_sum - beta[e] * exc
            if record:
                penalty = (beta[e] / n) * exc
                out_loads[e, t] = load
                out_welfare[e, t] = welfare
                for i in range(n):
                    out_demands[e, t, i] = demands[i]
                    out_beliefs[e, t, i] = decide[i]
                    out_rewards[e, t, i] = demands[i] * values[e, i] - penalty
            if load > capacity[e]:
                sum_over += 1.0
                last_over = t + 1.0
            sum_welfare += welfare
            sum_load += load
            total = 0.0
            for i in range(n):
                total += demands[i]
            sum_fair += (total * total) / (n * sq) if sq > 0 else 1.0
            last_load = load
            _observe(
                belief,
                ring,
                demands,
                weights[e],
                load,
                n,
                belief_kind[e],
                alpha[e],
                window[e],
                private[e],
                seen,
                head,
            )
            if belief_kind[e] == BELIEF_WINDOW:
                if seen < window[e]:
                    seen += 1
                else:
                    head = (head + 1) % window[e]
        if record:
            for t in range(t_e, max_steps):
                out_loads[e, t] = math.nan
                out_welfare[e, t] = math.nan
                for i in range(n):
                    out_demands[e, t, i] = math.nan
                    out_beliefs[e, t, i] = math.nan
                    out_rewards[e, t, i] = math.nan
        summary[e, SUM_OVERLOADED] = sum_over
        summary[e, SUM_WELFARE] = sum_welfare
        summary[e, SUM_LOAD] = sum_load
        summary[e, SUM_FAIRNESS] = sum_fair
        summary[e, LAST_OVERLOADED] = last_over

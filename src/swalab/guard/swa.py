"""The SWA guard: send a call only when it raises the client's socially weighted utility.

The limit is the game of ``rate_limit_v0`` played in windows of ``window_s`` seconds: a
bucket admits ``b`` calls a window, shared in proportion to what each of the N clients
sent; a rejected call costs its sender ``c`` (the wasted latency and quota); rejections
above a threshold lock the key. With ``a`` calls of its own and ``Y`` from the others this
window, ``X = a + Y`` and the admitted share ``s = min(1, b/X)``:

    R(a) = a·s − c·a·(1 − s)                      (the client's own payoff)
    W(a) = min(X, b) − c·max(0, X − b) − L(X)      (everyone's; L: the lockout's cost)
    U(a) = (1 − λ)·R(a) + λ·W(a)/N

Each window the guard plays its best response ``a*`` (a real number: the paper's
continuous game) to its belief about ``Y``: ``a*`` calls of credit are added each window
(kept up to ``1 + a*``, so a share below one call a window — a thousand clients on a
limit of a hundred — is one call every ``1/a*`` windows, and an idle client does not hoard
its unused share; a client starts with a random credit below ``2·max(1, a*)``, so about half
can send their first call at once and the rest follow over the next windows); a call
beyond the credit waits for the next window (at a point spread over its first half, so that
the waiting clients do not all arrive at its first instant), or, when the server said
``Retry-After``, until then. Above ``λ = (N − 1 − c)/(N − 1)`` (the
switch of ``rate_limit_v0``) a client stops adding calls once the bucket binds; below it,
it keeps adding them: the herd.

Its belief holds only what a client sees: its own sends, 200s and 429s per window, and
``RateLimit-*`` / ``X-RateLimit-*`` / ``Retry-After`` when the server sends them. At each
window's end the others' calls ``Y`` are re-estimated — from the share ρ of its own calls
rejected (``X = b/(1 − ρ)`` under proportional admission; ρ shrunk towards 0 by one
pseudo-call, as one 429 in one call is weak evidence); when it held calls back and those it
sent were all admitted, a tenth of a fair share less (a probe: a key the others leave
unused is found a little at a time); with nothing learnt, the fair share — and smoothed
with weight ``alpha``. A header's limit and reset replace the configured ``limit`` and
window clock; a ``Remaining`` of 0 holds every call to the next window (a sure rejection
costs the client and the group alike, whatever λ). A ``Remaining`` above 0 is not read as
the others' use: early in a window it says little, and extrapolating it made the guard
swing between bursts and silence (measured; see docs/guard.md).

Clients of one process may pool what they see (:mod:`swalab.guard.shared`). A guard shown
the pool's last window believes the clients that sent or held a call back in it — scaled
to the N sharing the key — contend for the next, and adds the symmetric equilibrium's
calls (:meth:`SWAGuard.symmetric_response`) instead of its own best response to its own
estimate: idle clients no longer count, so their share goes to those with calls waiting;
and a call the pool's room for this window says will be refused is held, as one after
``Remaining: 0`` is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from swalab.envs.rate_limit_v0 import threshold
from swalab.guard.policy import Action, Answered, Observation, Send, Wait, uniform
from swalab.guard.shared import PoolView


@dataclass(frozen=True)
class GuardState:
    """A client's view of the limit (all plain values: the policy is pure).

    Attributes:
        seed: Draws (the spread of waits) come from it.
        window_end: When the current window ends (monotonic seconds; -inf: none yet).
        sent: Calls sent in the current window.
        rejected: 429s in the current window.
        remaining: The server's last ``Remaining`` in this window (``None``: not said).
        others: Belief: the other clients' calls per window.
        limit: Calls a window admits (configured, or the server's ``Limit``).
        blocked_until: No attempt before this (``Retry-After``).
        windows: Windows closed so far.
        deferred: Whether the rule held a call back in this window.
        credit: Calls it may still send in this window.
        pool: The shared belief's last whole window, when the client pools one.
    """

    seed: int
    window_end: float
    sent: int
    rejected: int
    remaining: float | None
    others: float
    limit: float
    blocked_until: float
    windows: int
    deferred: bool = False
    credit: float = 0.0
    pool: PoolView | None = None


@dataclass(frozen=True)
class SWAGuard:
    """The SWA decision rule in front of one client's calls.

    Attributes:
        lam: The social weight λ.
        limit: Calls the key admits per window (the documented limit); a server's
            ``RateLimit-Limit`` header replaces it.
        window_s: The window in seconds; a server's ``RateLimit-Reset`` re-aligns it.
        clients: N, the clients sharing the key.
        waste_cost: ``c``, the cost of a rejected call in units of a completed one.
        lockout_threshold: Rejections in a window above which the key may lock.
        lockout_cost: The lockout's cost to the group, in completed calls (``L``).
        alpha: Weight of the newest window in the belief.
        spread: Waits to the next window land uniformly in its first ``spread`` fraction.
        probe: After a window it held calls back in and saw no rejection, the guard
            believes the others send this fraction of a fair share less.
    """

    lam: float
    limit: float
    window_s: float
    clients: int
    waste_cost: float = 0.5
    lockout_threshold: float = math.inf
    lockout_cost: float = 0.0
    alpha: float = 0.5
    spread: float = 0.5
    probe: float = 0.1
    name: str = "swa"

    def __post_init__(self) -> None:
        checks = [
            ("lam", self.lam, 0 <= self.lam <= 1, "in [0, 1]"),
            ("limit", self.limit, self.limit > 0, "> 0"),
            ("window_s", self.window_s, self.window_s > 0, "> 0 seconds"),
            ("clients", self.clients, self.clients >= 1, ">= 1"),
            ("waste_cost", self.waste_cost, self.waste_cost >= 0, ">= 0"),
            ("lockout_cost", self.lockout_cost, self.lockout_cost >= 0, ">= 0"),
            ("alpha", self.alpha, 0 < self.alpha <= 1, "in (0, 1]"),
            ("spread", self.spread, 0 <= self.spread <= 1, "in [0, 1]"),
            ("probe", self.probe, 0 <= self.probe <= 1, "in [0, 1]"),
        ]
        for name, value, ok, allowed in checks:
            if not ok or value != value:
                raise ValueError(f"{name}={value!r} is out of range: must be {allowed}")

    def switch(self) -> float:
        """``(N − 1 − c)/(N − 1)``: the λ above which the guard stops adding rejected calls."""
        return threshold(self.clients, self.waste_cost) if self.clients > 1 else 0.0

    def initial(self, seed: int) -> GuardState:
        """No window yet; the others believed to take their fair share."""
        n = self.clients
        return GuardState(
            seed=seed,
            window_end=-math.inf,
            sent=0,
            rejected=0,
            remaining=None,
            others=self.limit * (n - 1) / n,
            limit=self.limit,
            blocked_until=-math.inf,
            windows=0,
        )

    # -- the welfare model ------------------------------------------------------------

    def utility(self, a: float, others: float, limit: float) -> float:
        """``U(a)`` with ``others`` calls from the rest and ``limit`` admitted a window."""
        x = a + others
        share = 1.0 if x <= limit else limit / x
        c = self.waste_cost
        own = a * share - c * a * (1.0 - share)
        rejected = max(0.0, x - limit)
        welfare = min(x, limit) - c * rejected
        if rejected > self.lockout_threshold:
            welfare -= self.lockout_cost
        return (1.0 - self.lam) * own + self.lam * welfare / self.clients

    def best_response(self, others: float, limit: float) -> float:
        """The calls per window ``a* ∈ [0, limit]`` that maximise ``U`` (a real number).

        ``U`` rises while the bucket has room; past it (``X > b``) its slope is
        ``(1 − λ)·((1 + c)·b·Y/X² − c) − λ·c/N``, zero at one ``X``; the lockout adds a
        cliff. The best of those few points is the answer.
        """
        lam, c, n = self.lam, self.waste_cost, self.clients
        points = [0.0, limit - others, limit + self.lockout_threshold - others]
        if lam < 1 and c > 0 and others > 0:
            x = math.sqrt((1 + c) * limit * others / (c * (1 + lam / (n * (1 - lam)))))
            points.append(x - others)
        elif lam < 1:  # a rejection costs its sender nothing: as many as it may
            points.append(limit)
        points = [min(max(p, 0.0), limit) for p in points if math.isfinite(p)]
        return max(points, key=lambda a: (self.utility(a, others, limit), -a))

    def symmetric_response(self, contenders: float, limit: float) -> float:
        """``a*`` with ``a* = BR((C − 1)·a*)``: the symmetric equilibrium of ``C`` contenders.

        Each best-responds to the others playing as it does.

        ``BR((C − 1)·a) − a`` is ``≥ 0`` at ``a = 0`` and ``≤ 0`` at the limit, so bisection
        finds a point where it changes sign (one of them where the lockout's cliff makes
        ``BR`` jump). Above the switch that is ``b/C`` (the contenders fill the bucket and no
        more); at λ = 0 it is the herd's ``X = (1 + c)·b·(C − 1)/(c·C)``.
        """
        if contenders <= 1.0:
            return self.best_response(0.0, limit)
        low, high = 0.0, limit
        for _ in range(60):
            mid = (low + high) / 2
            if self.best_response((contenders - 1.0) * mid, limit) > mid:
                low = mid
            else:
                high = mid
        return low

    def wants(self, state: GuardState) -> bool:
        """Whether a whole call's credit is left in this window."""
        if state.remaining is not None and state.remaining < 1:
            return False  # the server says the bucket is empty: a sure loss, for all alike
        if state.pool is not None and state.pool.room is not None and state.pool.room < 1:
            return False  # so say the pooled clients' answers, less their sends since
        return state.credit >= 1.0 - 1e-9

    # -- windows ----------------------------------------------------------------------

    def _pooled(self, state: GuardState) -> tuple[float, float] | None:
        """``(a*, others)`` from the shared belief's last window, or ``None`` without one.

        The contenders are the pooled clients that sent or held a call back, scaled to the
        N sharing the key, this client among them; when they sent more than their part of
        the limit, ``a*`` is cut by as much (the next window's contenders are not quite the
        last one's: calls arrive at clients that were idle).
        """
        pool, n = state.pool, self.clients
        if pool is None or pool.contenders == 0 or pool.members == 0:
            return None
        contenders = max(1.0, pool.contenders * n / pool.members)
        best = self.symmetric_response(contenders, state.limit)
        part = state.limit * pool.members / n
        if pool.sent > part:
            best *= part / pool.sent
        return best, (contenders - 1.0) * best

    def _close(self, state: GuardState, now: float) -> GuardState:
        """Fold the window that ended into the belief; open the one ``now`` is in."""
        if state.window_end == -math.inf:  # a random start spreads the clients' first calls
            best = self.best_response(state.others, state.limit)
            credit = uniform(state.seed, 1 << 40) * 2.0 * max(1.0, best)
            return replace(state, window_end=now + self.window_s, credit=credit)
        skipped = max(1, math.ceil((now - state.window_end) / self.window_s))
        pooled = self._pooled(state)
        if pooled is not None:
            # the share is the contenders': one that held no call back keeps at most one
            # window's share, so idle clients hold no stock of calls to spend at once
            best, others = pooled
            if state.deferred:
                credit = min(1.0 + best, state.credit + skipped * best)
            else:
                credit = min(state.credit, best)
            return self._open(state, skipped, others, credit)
        n = self.clients
        if state.rejected > 0:  # shrunk towards none: one 429 in one call is weak evidence
            rho = min(state.rejected, state.sent) / (state.sent + 1)
            estimate = state.limit / (1.0 - rho) - state.sent
        elif state.deferred and state.sent > 0:  # held back, all admitted: probe for more
            estimate = max(0.0, state.others - self.probe * state.limit / n)
        else:  # nothing learnt: drift back to the others' fair share
            estimate = state.limit * (n - 1) / n
        others = (1 - self.alpha) * state.others + self.alpha * estimate
        best = self.best_response(others, state.limit)
        return self._open(state, skipped, others, min(1.0 + best, state.credit + skipped * best))

    def _open(self, state: GuardState, skipped: int, others: float, credit: float) -> GuardState:
        """The window ``skipped`` windows on, with this belief and credit."""
        return replace(
            state,
            window_end=state.window_end + skipped * self.window_s,
            sent=0,
            rejected=0,
            remaining=None,
            others=others,
            windows=state.windows + 1,
            deferred=False,
            credit=credit,
        )

    def decide(self, state: GuardState, obs: Observation) -> tuple[Action | None, GuardState]:
        """Send, wait for the next window, or note what the server said."""
        if isinstance(obs, Answered):
            return None, self._observe(state, obs)
        if obs.pool is not None:
            state = replace(state, pool=obs.pool)
        if obs.now < state.blocked_until:
            return Wait(state.blocked_until - obs.now), state
        if obs.now >= state.window_end:
            state = self._close(state, obs.now)
        if self.wants(state):
            return Send(), replace(state, sent=state.sent + 1, credit=state.credit - 1.0)
        u = uniform(state.seed, state.windows)
        start = state.window_end + u * self.spread * self.window_s
        return Wait(start - obs.now), replace(state, deferred=True)

    def _observe(self, state: GuardState, obs: Answered) -> GuardState:
        lim = obs.limits
        limit = state.limit if lim.limit is None or lim.limit <= 0 else lim.limit
        window_end = state.window_end
        if lim.reset is not None and lim.reset <= 10 * self.window_s:
            window_end = obs.now + lim.reset  # the server's clock, not ours
        blocked = state.blocked_until
        if obs.status == 429 and lim.retry_after is not None:
            blocked = max(blocked, obs.now + lim.retry_after)
        return replace(
            state,
            rejected=state.rejected + (obs.status == 429),
            remaining=lim.remaining,
            limit=limit,
            window_end=window_end,
            blocked_until=blocked,
        )

"""SWI agents against a live rate-limited HTTP server on 127.0.0.1 (``rate_limit_v0``).

:func:`play_live` lets SWI agents (or outsiders) decide each step exactly as in the
model-based runner, then fires every call of the step concurrently from a thread pool of
real HTTP clients in the middle of the server's window, and counts the 200s and 429s.
The agents' own view of the limiter advances with the pure model on the calls they
actually sent, so each step yields a prediction (the model) and a measurement (the server)
of the same joint action. The server is :func:`swalab.envs.rate_limit_live.serve`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from swalab._validate import FloatArray
from swalab.envs.rate_limit_live import call, serve
from swalab.envs.rate_limit_v0 import RateLimit
from swalab.swi.dilemma import DilemmaAgents, Lockstep


@dataclass
class LiveResult:
    """One live episode, model and measurement side by side (T steps, N agents).

    Attributes:
        actions: ``(T, N)`` calls each agent sent.
        measured_ok: ``(T, N)`` calls the server answered 200.
        measured_429: ``(T, N)`` calls it answered 429 (rate limit or lockout).
        predicted_ok: ``(T,)`` admitted calls the pure model predicts.
        predicted_429: ``(T,)`` rejected calls the pure model predicts.
        predicted_locked: ``(T,)`` whether the model says the key is locked.
        measured_locked: ``(T,)`` whether the server's key was locked in that window.
        dispatch_s: ``(T,)`` seconds from a step's first call to its last answer.
        late: ``(T,)`` calls of each step that reached the server outside its window.
    """

    actions: FloatArray
    measured_ok: FloatArray
    measured_429: FloatArray
    predicted_ok: FloatArray
    predicted_429: FloatArray
    predicted_locked: FloatArray
    measured_locked: FloatArray
    dispatch_s: FloatArray
    late: FloatArray

    @property
    def late_calls(self) -> int:
        """Calls that reached the server outside their step's window, over the episode."""
        return int(self.late.sum())


def play_live(
    dyn: RateLimit,
    lam: float | FloatArray,
    seed: int = 0,
    agents: DilemmaAgents | None = None,
    *,
    step_s: float = 0.2,
    refill: Literal["interval", "continuous"] = "interval",
    workers: int = 16,
) -> LiveResult:
    """Play one episode against a live server started (and stopped) for it.

    Args:
        dyn: The limit and the game.
        lam: λ for every agent, or one per agent.
        seed: Episode seed (outsiders' draws).
        agents: How agents decide (default: all SWI).
        step_s: Seconds per step (the server's window).
        refill: The server's bucket refill.
        workers: Concurrent HTTP clients.
    """
    n, steps = dyn.n_agents, dyn.steps
    lam_row = np.broadcast_to(np.asarray(lam, dtype=np.float64), (n,))[None, :]
    run = Lockstep(dyn, lam_row, [seed], agents)
    res = LiveResult(
        actions=np.zeros((steps, n)),
        measured_ok=np.zeros((steps, n)),
        measured_429=np.zeros((steps, n)),
        predicted_ok=np.zeros(steps),
        predicted_429=np.zeros(steps),
        predicted_locked=np.zeros(steps),
        measured_locked=np.zeros(steps),
        dispatch_s=np.zeros(steps),
        late=np.zeros(steps),
    )
    with serve(dyn, step_s, refill) as live, ThreadPoolExecutor(workers) as pool:
        for t in range(steps):
            actions, _, _ = run.decide(t)
            calls = actions[0].astype(int)
            start = live.limiter.t0 + (t + 0.25) * step_s
            time.sleep(max(0.0, start - time.monotonic()))
            owners = [i for i in range(n) for _ in range(calls[i])]
            sent = time.monotonic()
            statuses = list(pool.map(lambda i: call(live.url, i), owners))
            res.dispatch_s[t] = time.monotonic() - sent
            if time.monotonic() > live.limiter.t0 + (t + 1) * step_s:
                res.late[t] = len(owners)
            for i, status in zip(owners, statuses, strict=True):
                if status == 200:
                    res.measured_ok[t, i] += 1
                else:
                    res.measured_429[t, i] += 1
            out = run.advance(actions)
            res.actions[t] = calls
            res.predicted_ok[t] = float(out.extras["admitted"][0])
            res.predicted_429[t] = float(out.extras["rejected"][0])
            res.predicted_locked[t] = float(out.extras["locked"][0])
        time.sleep(max(0.0, live.limiter.t0 + (steps + 0.1) * step_s - time.monotonic()))
        with live.limiter.lock:
            live.limiter.sync(time.monotonic())
            locked = dict(live.limiter.locked)
        res.measured_locked[:] = [float(locked.get(t, False)) for t in range(steps)]
    return res

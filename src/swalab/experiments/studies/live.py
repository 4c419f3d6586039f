"""The ``live`` kind: SWA agents against a live rate-limited HTTP server on 127.0.0.1.

``rate_limit_v0``'s limit runs as a real threaded server (started and stopped per cell);
every step's calls go out concurrently from real clients, and the measured 200s, 429s and
locked windows are stored beside the pure model's prediction for the same calls. A cell is
one λ (one episode); cells run in the driver, one after another, since a server's windows
are wall-clock time and must not share the machine with other work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from swalab.experiments.config import ConfigError, StudyConfig
from swalab.experiments.limits import Work
from swalab.experiments.studies import SplitKind, Table, schema

#: Hours of live traffic one study may send (wall-clock time the server windows take).
MAX_LIVE_HOURS = 6

UnitFloat = Annotated[float, Field(ge=0, le=1)]


class LiveConfig(StudyConfig):
    """A live run; defaults: ``rate_limit_v0``'s defaults, λ ∈ {0, 1}, 20 steps of 0.5 s."""

    kind: Literal["live"] = "live"
    name: str = "live"
    env_params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="rate_limit_v0's own parameters (rate, burst, …)."
    )
    steps: int = Field(20, ge=1, le=10**6, description="Steps (server windows) per episode.")
    lam: list[UnitFloat] = Field(
        default_factory=lambda: [0.0, 1.0], min_length=1, description="One episode per λ."
    )
    retry: int = Field(
        0, ge=0, le=10**6, description="Naive-retry clients (they replace SWA agents)."
    )
    retry_calls: float = Field(
        8.0, ge=0, le=1e6, description="New calls per step of a retry client."
    )
    step_seconds: float = Field(
        0.5, ge=0.01, le=3600, description="Seconds per step (server window)."
    )
    refill: Literal["interval", "continuous"] = Field(
        "interval", description="interval (the model's windows) or continuous refill."
    )


def _dynamics(config: LiveConfig) -> Any:
    from swalab import envs

    return envs.dynamics("rate_limit_v0", steps=config.steps, **config.env_params)


def _agents(config: LiveConfig, n: int) -> Any:
    from swalab.swi.dilemma import DilemmaAgents

    swi = n - config.retry
    return DilemmaAgents(
        kinds=("swi",) * swi + ("retry",) * config.retry,
        demands=(math.nan,) * swi + (config.retry_calls,) * config.retry,
    )


class Live(SplitKind):
    """The ``live`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "live"
    summary = "rate_limit_v0 against a live HTTP limit server: measured beside the model"
    config = LiveConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "live": schema(
            ints=("step",),
            floats=(
                "lam",
                "calls",
                "ok_measured",
                "ok_model",
                "rejected_measured",
                "rejected_model",
                "locked_measured",
                "locked_model",
                "dispatch_s",
                "late_calls",
            ),
        )
    }
    split = ("lam",)
    placement = "driver"

    def work(self, config: LiveConfig) -> Work:
        """A cell per λ: one episode of ``steps`` windows of wall-clock time."""
        hours = len(config.lam) * config.steps * config.step_seconds / 3600
        if hours > MAX_LIVE_HOURS and not config.executor.force:
            raise ConfigError(
                f"lam × steps × step_seconds: {hours:.3g} hours of live traffic; at most "
                f"{MAX_LIVE_HOURS} (executor.force: true runs it anyway)"
            )
        return Work(
            cells=len(config.lam),
            episodes=len(config.lam),
            steps=config.steps,
            agents=1,
            candidates=1,
        )

    def check(self, config: LiveConfig) -> None:
        """The limit's parameters (named ``env_params.X``) and the retry count."""
        try:
            dyn = _dynamics(config)
        except ValueError as exc:
            msg = str(exc)
            raise ConfigError(
                msg if msg.startswith("env_params.") else f"env_params.{msg}"
            ) from None
        if config.retry > dyn.n_agents:
            raise ConfigError(
                f"retry={config.retry} is out of range: must lie in 0..{dyn.n_agents} "
                "(the number of agents)"
            )

    def compute(self, configs: Sequence[LiveConfig]) -> list[Table]:
        """Play each λ's episode against its own server."""
        from swalab.swi.live import play_live

        out = []
        for c in configs:
            dyn = _dynamics(c)
            lam = c.lam[0]
            r = play_live(
                dyn, lam, 0, _agents(c, dyn.n_agents), step_s=c.step_seconds, refill=c.refill
            )
            out.append(
                {
                    "step": np.arange(dyn.steps),
                    "lam": np.full(dyn.steps, lam),
                    "calls": r.actions.sum(axis=1),
                    "ok_measured": r.measured_ok.sum(axis=1),
                    "ok_model": r.predicted_ok,
                    "rejected_measured": r.measured_429.sum(axis=1),
                    "rejected_model": r.predicted_429,
                    "locked_measured": r.measured_locked,
                    "locked_model": r.predicted_locked,
                    "dispatch_s": r.dispatch_s,
                    "late_calls": r.late,
                }
            )
        return out


LIVE = Live()

"""The ``guard`` kind: client policies on a live rate-limited server, a cell per run.

A cell is one policy × number of clients × server behaviour × share of clients wearing the
policy × seed: one measured run on a fresh uvicorn limit server
(:func:`swalab.guard.lineup.play`). Cells run in the driver, one after another — a
server's windows are wall-clock time and must not share the machine with other work — and
each is stored as it ends, so an interrupted study resumes at the run it was in. With
``clock: simulated`` the same runs are played as discrete events
(:mod:`swalab.guard.simulate`) on the workers, in parallel: a study of many seeds or
settings in minutes, to tune a policy before measuring it live. The report
pools the seeds of each (behaviour, N, policy, share) into means with bootstrap intervals.

The SWA guard (``swa``; ``swa_shared``: its clients pool one belief) is played once per
``lam``; a share ``guarded`` below 1 (the rest
of the clients retry at once) is played for the policies in ``mixed_policies`` only, since
a study of how every baseline fares among naive callers multiplies its length.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from swalab.experiments.cells import Cell, CellResult, Task, digest
from swalab.experiments.config import MANY, ConfigError, ExecutorConfig, StudyConfig
from swalab.experiments.kinds import OnStep
from swalab.experiments.limits import Work
from swalab.guard.lineup import GUARDS, POLICY_NAMES, PolicyName, label, play
from swalab.guard.server import Behaviour

#: Hours of live traffic one study may take (each cell: its arrivals, deadline, start-up).
MAX_GUARD_HOURS = 6
#: Seconds a cell takes beyond its arrivals and deadline: server start, connections, stop.
CELL_OVERHEAD_S = 4.0

UnitFloat = Annotated[float, Field(ge=0, le=1)]
Share = Annotated[float, Field(gt=0, le=1)]


class GuardConfig(StudyConfig):
    """A study of client policies; defaults: every policy, N ∈ {10, 100, 1000}, 3 seeds.

    The server admits ``limit`` calls a window of ``window_s`` seconds; clients bring
    Poisson arrivals at ``demand`` × the limit for ``duration_s`` seconds and give a call up
    ``deadline_s`` after it arrived.
    """

    kind: Literal["guard"] = "guard"
    name: str = "guard"
    policies: list[PolicyName] = Field(
        default_factory=lambda: list(POLICY_NAMES),
        min_length=1,
        description=f"Client policies: {', '.join(POLICY_NAMES)}.",
    )
    lam: list[UnitFloat] = Field(
        default_factory=lambda: [0.0, 1.0],
        min_length=1,
        description="swa, swa_shared: one run per λ.",
    )
    clients: list[Annotated[int, Field(ge=1, le=5000)]] = Field(
        default_factory=lambda: [10, 100, 1000], min_length=1, description="Numbers of clients N."
    )
    behaviours: list[Behaviour] = Field(
        default_factory=lambda: list[Behaviour](["retry_after"]),
        min_length=1,
        description="Server behaviours: plain 429s, 429 + Retry-After, lockout on abuse.",
    )
    guarded: list[Share] = Field(
        default_factory=lambda: [1.0],
        min_length=1,
        description="Shares of clients wearing the policy (the rest retry at once).",
    )
    mixed_policies: list[PolicyName] = Field(
        default_factory=lambda: list[PolicyName](["swa"]),
        description="The policies played at the guarded shares below 1.",
    )
    seeds: (
        Annotated[int, Field(ge=1, le=1000)]
        | Annotated[list[Annotated[int, Field(ge=0, le=2**40)]], Field(min_length=1)]
    ) = Field(3, description="A count n (seeds 0..n-1) or an explicit list; a cell each.")
    limit: int = Field(100, ge=1, le=10**6, description="Calls the key admits a window.")
    window_s: float = Field(1.0, ge=0.01, le=3600, description="The window in seconds.")
    demand: float = Field(2.0, gt=0, le=1000, description="Offered load over the limit.")
    duration_s: float = Field(12.0, gt=0, le=3600, description="Seconds calls arrive for.")
    deadline_s: float = Field(4.0, gt=0, le=3600, description="A call is given up after it.")
    lockout_threshold: int = Field(
        100, ge=0, le=MANY, description="lockout: rejections in a window that are abuse."
    )
    lockout_after: int = Field(2, ge=1, le=1000, description="lockout: abusive windows to lock.")
    lockout_windows: int = Field(3, ge=1, le=1000, description="lockout: windows a lock lasts.")
    clock: Literal["live", "simulated"] = Field(
        "live",
        description="live (a uvicorn server, real connections, wall-clock time) or simulated "
        "(the same policies, arrivals and limiter as discrete events: seconds, not hours).",
    )

    @field_validator("policies", "mixed_policies", "lam", "clients", "behaviours", "guarded")
    @classmethod
    def _distinct(cls, value: list[Any]) -> list[Any]:
        repeated = sorted({str(x) for x in value if value.count(x) > 1})
        if repeated:
            raise ValueError(f"lists {repeated} more than once: give each value once")
        return value

    def seed_list(self) -> list[int]:
        """The seeds every run is played with."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def runs(self) -> list[dict[str, Any]]:
        """Every cell's assignment, in a stable order (see the module docstring)."""
        variants: list[tuple[str, float | None, float]] = []
        for share in self.guarded:
            for name in self.policies:
                if share < 1 and (name not in self.mixed_policies or name == "naive"):
                    continue
                for lam in self.lam if name in GUARDS else [None]:
                    variants.append((name, lam, share))
        return [
            {
                "behaviour": behaviour,
                "clients": n,
                "policy": name,
                "lam": lam,
                "guarded": share,
                "seed": seed,
            }
            for behaviour, n, (name, lam, share), seed in itertools.product(
                self.behaviours, self.clients, variants, self.seed_list()
            )
        ]

    def cell_seconds(self) -> float:
        """Wall time one cell takes at most, about (its calls arrive, then time out)."""
        return self.duration_s + self.deadline_s + CELL_OVERHEAD_S


#: The fields a cell's results depend on besides its assignment.
_SETTINGS = (
    *("limit", "window_s", "demand", "duration_s", "deadline_s"),
    *("lockout_threshold", "lockout_after", "lockout_windows"),
)

_TEXT = ("behaviour", "policy", "name")
_INTS = (
    *("clients", "seed", "guarded_clients", "calls", "succeeded", "attempts", "rejected"),
    *("dropped", "lockout_windows", "errors", "server_ok", "server_limited", "server_locked"),
)
_FLOATS = (
    *("lam", "guarded", "goodput_share", "reject_share", "p50_s", "p99_s", "fairness"),
    *("wasted_per_success", "drop_share", "wall_s", "server_peak_rss_mib"),
    "client_peak_rss_mib",
    *(f"{g}_{m}" for g in ("guarded", "naive") for m in ("succeeded_per_client",)),
    *(f"{g}_{m}" for g in ("guarded", "naive") for m in ("rejected_per_client", "drop_share")),
)
RUN_SCHEMA = pa.schema(
    [(n, pa.string()) for n in _TEXT]
    + [(n, pa.int64()) for n in _INTS]
    + [(n, pa.float64()) for n in _FLOATS]
    + [("counters_agree", pa.bool_())]
)
CLIENT_SCHEMA = pa.schema(
    [("behaviour", pa.string()), ("policy", pa.string())]
    + [(n, pa.int64()) for n in ("clients", "seed", "client")]
    + [("guarded", pa.float64()), ("wears_policy", pa.bool_())]
    + [(n, pa.int64()) for n in ("calls", "succeeded", "rejected", "dropped")]
)


class Guard:
    """The ``guard`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "guard"
    summary = "client policies (SWA guard, baselines) on a live rate-limited server"
    config = GuardConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "guard": RUN_SCHEMA,
        "guard_clients": CLIENT_SCHEMA,
    }

    def plan(self, config: GuardConfig, source: str) -> list[Cell]:
        """One cell per run (:meth:`GuardConfig.runs`); a live one needs the extra.

        A simulated run's name holds its clock; a live one's does not (the field came
        later: stores written before it keep their names).
        """
        import importlib.util

        missing = [m for m in ("httpx", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing and config.clock == "live":
            raise ConfigError(
                f"{source}: kind 'guard' needs {', '.join(missing)}: pip install 'swalab[guard]'"
            )
        settings = {k: getattr(config, k) for k in _SETTINGS}
        if config.clock != "live":
            settings["clock"] = config.clock
        cells = []
        for run in config.runs():
            narrowed = config.model_copy(
                update={
                    "policies": [run["policy"]],
                    "lam": config.lam if run["lam"] is None else [run["lam"]],
                    "clients": [run["clients"]],
                    "behaviours": [run["behaviour"]],
                    "guarded": [run["guarded"]],
                    "seeds": [run["seed"]],
                }
            )
            key = digest({"kind": self.name, **run, **settings})
            cells.append(Cell(key=key, config=narrowed, assignment=run))
        return cells

    def work(self, config: GuardConfig) -> Work:
        """A cell per run, each taking its arrivals, deadline and start-up in wall time."""
        runs = len(config.runs())
        hours = runs * config.cell_seconds() / 3600
        if config.clock == "live" and hours > MAX_GUARD_HOURS and not config.executor.force:
            raise ConfigError(
                f"policies × lam × clients × behaviours × guarded × seeds: {runs} runs of "
                f"about {config.cell_seconds():.0f} s, {hours:.3g} hours of live traffic; at "
                f"most {MAX_GUARD_HOURS} (executor.force: true runs it anyway)"
            )
        return Work(
            cells=runs,
            episodes=runs,
            steps=1,
            agents=max(config.clients),
            candidates=1,
            field="policies",
        )

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """Live runs alone in the driver, one after another; simulated ones on workers."""
        return [Task("engine" if c.config.clock == "simulated" else "driver", (c,)) for c in cells]

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Play each cell's run and store its row and its clients' counts."""
        from swalab.guard.harness import Load
        from swalab.guard.server import ServerConfig

        out = []
        for cell in task.cells:
            start = time.perf_counter()
            c: GuardConfig = cell.config
            a = cell.assignment
            server = ServerConfig(
                limit=c.limit,
                window_s=c.window_s,
                behaviour=a["behaviour"],
                lockout_threshold=c.lockout_threshold,
                lockout_after=c.lockout_after,
                lockout_windows=c.lockout_windows,
            )
            load = Load(
                clients=a["clients"],
                demand=c.demand,
                duration_s=c.duration_s,
                deadline_s=c.deadline_s,
                seed=a["seed"],
            )
            simulated = c.clock == "simulated"
            result = play(a["policy"], a["lam"], a["guarded"], load, server, simulated=simulated)
            per = result.pop("per_client")
            keys = {
                "behaviour": a["behaviour"],
                "policy": label(a["policy"], a["lam"]),
                "clients": a["clients"],
                "seed": a["seed"],
                "guarded": a["guarded"],
            }
            row = result | keys | {"name": a["policy"], "lam": _nan(a["lam"])}
            k = result["guarded_clients"]
            clients = {
                **{key: [v] * a["clients"] for key, v in keys.items()},
                "client": list(range(a["clients"])),
                "wears_policy": [i < k for i in range(a["clients"])],
                **per,
            }
            tables = {
                "guard": pa.Table.from_pylist([row], schema=RUN_SCHEMA),
                "guard_clients": pa.Table.from_pydict(clients, schema=CLIENT_SCHEMA),
            }
            out.append(CellResult(cell=cell, tables=tables, seconds=time.perf_counter() - start))
        return out


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


GUARD = Guard()

"""The ``suite`` kind (swa-bench): one scorecard per model, agent mode and game.

A suite is a fixed, versioned set of tests, each played by every agent it lists on the
same games and seeds:

* **agents**: each model in each mode — ``swi`` (the model proposes, the SWI scorer picks in
  code), ``swi-llm`` (the model picks a row of the score table), ``prompted`` (told λ in
  words, it answers its demand; no scorer) — and scripted baselines with no model:
  ``selfish`` (always x_max), ``fair-share`` (always C/N), ``swi-grid`` (the SWI rule on the
  whole grid: the model's proposals replaced by every action), ``random-candidates`` (the
  model's proposals replaced by seeded random draws), ``anchors-only`` (no proposals: the
  anchors alone), ``best-response`` (the SWA best response: the consistent scorer, no
  margin, no centering).
* **tests**: ``switch`` — the congestion game at each β over a coarse λ grid around λ* and
  λ̃, then refined where the overload rate crosses 0.5 (each round splits the bracketing gap
  in four) until λ_c is bracketed to ``± resolution``; ``outsiders`` — the share of selfish
  agents (0–60 %) a population at λ = 1 absorbs before it overloads; ``dilemma`` — the same
  refined switch in each resource dilemma (rate limit, context budget; commons on request),
  where SWI agents score with the dilemma's own welfare model, table-picking agents pick a
  row of it and prompted agents read the situation in words; ``mixed`` — with two or more
  models, the congestion switch at the first β played by populations whose agents are split
  evenly between the models (one per mode), each model answering its own agents.

Each (agent, test, game) is one cell, keyed by the suite's version, the swalab version, the
model's identity (the weights' SHA-256 for local files, name and endpoint for servers) and
the hash of the prompt templates it is asked with: a rerun resumes, and a changed prompt,
model or release never mixes with old rows. A cell stores the sweep's own ``steps`` and
``episodes`` rows (so ``swalab query`` and ``swalab reveal`` read it), its ``curve`` (one
row per λ or share played) and its ``scorecard``.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from swalab import __version__, theory
from swalab import reference as ref
from swalab.experiments.cells import Cell, CellResult, Task, digest, payload
from swalab.experiments.config import (
    NOT_HASHED,
    ConfigError,
    ExecutorConfig,
    ExperimentConfig,
    GameConfig,
    ModelConfig,
    PolicyConfig,
    StudyConfig,
)
from swalab.experiments.kinds import OnStep
from swalab.experiments.limits import Work
from swalab.experiments.store import EPISODE_SCHEMA, STEP_SCHEMA
from swalab.experiments.studies import Axis

#: Bumped whenever a test, a default or a metric of the suite changes meaning.
SUITE_VERSION = "1"

Mode = Literal["swi", "swi-llm", "prompted"]
Baseline = Literal[
    "selfish", "fair-share", "swi-grid", "random-candidates", "anchors-only", "best-response"
]
MODEL_MODES: tuple[Mode, ...] = get_args(Mode)
BASELINES: tuple[Baseline, ...] = get_args(Baseline)
Dilemma = Literal["rate_limit_v0", "context_budget_v0", "commons_v0"]
TESTS = ("switch", "outsiders", "dilemma", "mixed")
#: Each dilemma's horizon and action grid (its preset's); commons needs hundreds of steps to
#: collapse, so it is off by default (a model plays ~30,000 decisions there).
DILEMMA_SETTINGS: dict[str, dict[str, float]] = {
    "rate_limit_v0": {"steps": 30, "grid_step": 0.25},
    "context_budget_v0": {"steps": 20, "grid_step": 1.0},
    "commons_v0": {"steps": 300, "grid_step": 0.25},
}
#: Who plays a dilemma: every model mode and the baselines that need no congestion-game rule
#: (a dilemma's SWI agents score with its own welfare model and have no anchors).
DILEMMA_AGENTS = (*MODEL_MODES, "selfish", "swi-grid")
#: Baselines with no SWI agents to absorb outsiders (or no rule outsiders change).
NO_OUTSIDER_TEST = ("selfish", "fair-share", "best-response")


def _embedded_models() -> list[ModelConfig]:
    from swalab.llm.presets import EMBEDDED_MODELS

    return [
        ModelConfig(backend="llamacpp", name=name, temperature=0.7, max_tokens=120)
        for name in EMBEDDED_MODELS
    ]


def _default_dilemmas() -> list[Dilemma]:
    return ["rate_limit_v0", "context_budget_v0"]


def _suite_policy() -> PolicyConfig:
    return PolicyConfig(
        scorer="paper", k=7, grid_step=0.25, anchors=list(ref.ANCHORS), margin=2, gamma=0.02
    )


class SuiteConfig(StudyConfig):
    """What a suite plays: agents (models × modes, baselines), games, λ grid, seeds."""

    kind: Literal["suite"] = "suite"
    name: str = "suite"
    models: list[ModelConfig] = Field(
        default_factory=_embedded_models, description="Models to score (default: both embedded)."
    )
    modes: list[Mode] = Field(default_factory=lambda: list(MODEL_MODES))
    baselines: list[Baseline] = Field(default_factory=lambda: list(BASELINES))
    game: GameConfig = Field(default_factory=lambda: GameConfig(steps=8))
    policy: PolicyConfig = Field(default_factory=_suite_policy)
    betas: list[float] = Field(
        default_factory=lambda: [1.6, 2.5], min_length=1, description="Severities β."
    )
    lam: Axis = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        description="The coarse λ grid every switch test starts from.",
    )
    resolution: float = Field(
        0.0125, gt=0, le=0.5, description="Refine until λ_c is bracketed to ± this."
    )
    rounds: int = Field(4, ge=0, le=20, description="Most refinement rounds per switch.")
    outsiders: list[float] = Field(
        default_factory=lambda: [0.0, 0.2, 0.4, 0.6],
        description="Shares of selfish agents played at λ = 1 (empty: no outsider test).",
    )
    dilemmas: list[Dilemma] = Field(
        default_factory=_default_dilemmas,
        description="Resource dilemmas whose switch each SWI agent is scored on.",
    )
    dilemma_steps: int | None = Field(
        None, ge=1, le=10**4, description="Horizon of every dilemma (default: each one's own)."
    )
    dilemma_modes: list[Mode] = Field(
        default_factory=lambda: list(MODEL_MODES),
        description="The model modes that play the dilemmas (of those in modes).",
    )
    seeds: int = Field(2, ge=1, le=1000, description="Episodes per point (seeds 0, 1, …).")
    mixed: list[Mode] = Field(
        default_factory=lambda: list(MODEL_MODES),
        description="With two or more models: the modes (of those in modes) whose "
        "populations mixing them (agents split evenly) play the switch at the first β.",
    )

    @field_validator("lam")
    @classmethod
    def _unit(cls, value: list[float]) -> list[float]:
        if any(not 0 <= x <= 1 for x in value):
            raise ValueError("every value must lie in [0, 1]")
        return value

    @field_validator("outsiders")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if any(not 0 <= s < 1 for s in value):
            raise ValueError("shares must lie in [0, 1)")
        return value

    @field_validator("betas")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(not b > 0 for b in value):
            raise ValueError("every β must be > 0")
        return value


class SuiteCell(StudyConfig):
    """One scorecard's worth of work: one agent, one test, one game (a suite's cell)."""

    kind: Literal["suite"] = "suite"
    name: str = "suite"
    version: str = SUITE_VERSION
    swalab: str = __version__
    agent: str = Field(description="The model's name, or the baseline's.")
    mode: str = Field(description="A model mode or a baseline.")
    test: Literal["switch", "outsiders", "dilemma", "mixed"]
    env: str = "congestion_v0"
    game: GameConfig
    policy: PolicyConfig
    model: ModelConfig | None = None
    roster: list[ModelConfig] = Field(
        default_factory=list, description="Mixed test: the models after ``model``."
    )
    identity: str = Field("", description="The model's identity (weights hash or endpoint).")
    templates: str = Field("", description="Hash of the prompt templates it is asked with.")
    lam: list[float]
    resolution: float
    rounds: int
    outsiders: list[float]
    seeds: int

    def model_roster(self) -> list[ModelConfig]:
        """Every model the cell asks (see :meth:`ExperimentConfig.model_roster`)."""
        return [] if self.model is None else [self.model, *self.roster]


def _blocks(n: int, models: list[ModelConfig]) -> list[dict[str, Any]]:
    """A population of ``n`` SWI agents split evenly between ``models`` (the first: more)."""
    size, extra = divmod(n, len(models))
    return [
        {"kind": "swi", "count": size + (j < extra), **({"model": m.model_dump()} if j else {})}
        for j, m in enumerate(models)
        if size + (j < extra)
    ]


def model_identity(model: ModelConfig) -> str:
    """What names a model's answers.

    The weights' SHA-256 for a local file; else its name and endpoint (a server decides its
    own weights) or revision.
    """
    from pathlib import Path

    from swalab.llm.presets import PRESETS, embedded_path, file_sha256

    name = model.name
    if model.backend == "openai":
        return f"{name}@{model.options.get('base_url', '')}"
    preset = PRESETS.get(name or "")
    if model.backend == "llamacpp" and (name is None or (preset is not None and preset.embedded)):
        from swalab.llm.presets import EMBEDDED

        return file_sha256(embedded_path(name or EMBEDDED))
    if name is not None and Path(name).is_file():
        return file_sha256(Path(name))
    return f"{name}@{model.options.get('revision', '')}"


def templates_hash(model: ModelConfig) -> str:
    """Hash of the prompt templates ``model`` is asked with (chat or text versions)."""
    from swalab.llm.presets import uses_chat
    from swalab.llm.protocol import default_template

    chat = uses_chat(model.backend, model.name, model.options)
    return digest([default_template(t, chat=chat) for t in ("proposal", "choose", "prompted")])


def _sweep(cell: SuiteCell, lams: list[float], greedy: int = 0) -> ExperimentConfig:
    """The sweep that plays ``cell``'s agent at ``lams`` (``greedy`` selfish agents first)."""
    g, p = cell.game, cell.policy
    n = g.n_agents
    population: list[dict[str, Any]] | None = None
    model = cell.model
    mode = cell.mode
    if mode in MODEL_MODES:
        p = p.model_copy(
            update={
                "candidates": "llm",
                "selector": "llm" if mode == "swi-llm" else "code",
                "mode": "prompted" if mode == "prompted" else "swi",
            }
        )
    elif mode == "selfish":
        population = [{"kind": "greedy", "count": n}]
    elif mode == "fair-share":
        population = [{"kind": "fixed", "demand": g.capacity / n, "count": n}]
    elif mode == "random-candidates":
        p = p.model_copy(update={"candidates": "random"})
    elif mode == "anchors-only":
        p = p.model_copy(update={"candidates": "anchors"})
    elif mode == "best-response":
        p = p.model_copy(update={"scorer": "consistent", "margin": 0.0, "gamma": 0.0})
    if greedy:
        population = [{"kind": "greedy", "count": greedy}, {"kind": "swi", "count": n - greedy}]
    if cell.test == "mixed":
        population = _blocks(n, cell.model_roster())
    return ExperimentConfig.model_validate(
        {
            "name": f"{cell.agent}-{mode}",
            "env": cell.env,
            "game": g.model_dump(),
            "policy": p.model_dump(),
            "model": None if model is None else model.model_dump(),
            "population": population,
            "seeds": cell.seeds,
            "grid": {"lam": lams},
            "record_decisions": True,
        }
    )


class Suite:
    """The ``suite`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "suite"
    summary = "swa-bench: λ_c and scorecards per model, agent mode and game"
    config = SuiteConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "steps": STEP_SCHEMA,
        "episodes": EPISODE_SCHEMA,
        "curve": None,
        "scorecard": None,
    }

    def plan(self, config: SuiteConfig, source: str) -> list[Cell]:
        """One cell per (agent, test, β); each checked by planning its sweep."""
        from swalab.experiments.plan import plan as plan_sweep

        if not config.models and not config.baselines:
            raise ConfigError(f"{source}: models/baselines: the suite needs at least one agent")
        agents: list[tuple[str, str, list[ModelConfig]]] = [
            (m.name or "default", mode, [m]) for m in config.models for mode in config.modes
        ]
        agents += [(b, b, []) for b in config.baselines]
        mixing = bool(config.mixed) and len(config.models) >= 2
        if mixing:
            name = "+".join(m.name or "default" for m in config.models)
            agents += [(name, m, list(config.models)) for m in config.modes if m in config.mixed]
        identities: dict[str, tuple[str, str]] = {}
        for m in config.models:
            key = json.dumps(m.model_dump(mode="json"), sort_keys=True)
            if key not in identities:
                try:
                    identities[key] = (model_identity(m), templates_hash(m))
                except (ImportError, ValueError, OSError) as exc:
                    raise ConfigError(f"{source}: models: {m.name}: {exc}") from None
        cells = []
        for agent, mode, models in agents:
            ids = [
                identities[json.dumps(m.model_dump(mode="json"), sort_keys=True)] for m in models
            ]
            identity = "+".join(i for i, _ in ids)
            templates = "+".join(t for _, t in ids)
            for test, env, game, policy in _tests(config, mixing):
                if (test == "mixed") != (len(models) > 1):
                    continue
                if test == "outsiders" and mode in NO_OUTSIDER_TEST:
                    continue
                if test == "dilemma" and mode not in DILEMMA_AGENTS:
                    continue
                if test == "dilemma" and models and mode not in config.dilemma_modes:
                    continue
                cell = SuiteCell(
                    name=config.name,
                    executor=config.executor,
                    agent=agent,
                    mode=mode,
                    test=test,
                    env=env,
                    game=game,
                    policy=policy,
                    model=models[0] if models else None,
                    roster=models[1:],
                    identity=identity,
                    templates=templates,
                    lam=list(config.lam),
                    resolution=config.resolution,
                    rounds=config.rounds,
                    outsiders=list(config.outsiders),
                    seeds=config.seeds,
                )
                label = f"{source}: {agent}/{mode} on {game_label(cell)}"
                try:
                    plan_sweep(_sweep(cell, [cell.lam[0]]), label)
                except ConfigError:
                    raise
                except ValueError as exc:
                    raise ConfigError(f"{label}: {exc}") from None
                data = {"kind": self.name, **payload(cell, NOT_HASHED)}
                assignment = {"agent": agent, "mode": mode, "test": test, "game": game_label(cell)}
                cells.append(Cell(key=digest(data), config=cell, assignment=assignment))
        return cells

    def work(self, config: SuiteConfig | SuiteCell) -> Work:
        """Cells, and the episodes of their coarse grids and refinement rounds at most."""
        per_switch = len(config.lam) + 3 * config.rounds
        if isinstance(config, SuiteCell):
            cells = 1
            points = per_switch if config.test != "outsiders" else len(config.outsiders)
        else:
            models, modes, baselines = len(config.models), config.modes, config.baselines
            plays = len(baselines) + models * len(modes)
            outsiders = plays - sum(
                b in ("selfish", "fair-share", "best-response") for b in baselines
            )
            dilemma = sum(b in DILEMMA_AGENTS for b in baselines) + models * sum(
                m in config.dilemma_modes for m in modes
            )
            cells = plays * len(config.betas) + dilemma * len(config.dilemmas)
            cells += outsiders if config.outsiders else 0
            cells += sum(m in config.mixed for m in modes) if models >= 2 else 0
            points = max(per_switch, len(config.outsiders))
        g = config.game
        return Work(
            cells=cells,
            episodes=cells * points * config.seeds,
            steps=g.steps,
            agents=g.n_agents,
            candidates=int(_x_max(g) / config.policy.grid_step) + 1,
            cell_rows=points * config.seeds * g.steps * g.n_agents,
        )

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """Each model's cells in one task where it is loaded; baselines in one engine task."""
        from swalab.experiments.plan import model_key

        by_model: dict[str, list[Cell]] = {}
        engine: list[Cell] = []
        for cell in cells:
            if cell.config.model is None:
                engine.append(cell)
            else:
                by_model.setdefault(model_key(cell.config), []).append(cell)
        tasks = [Task("llm", tuple(group), key) for key, group in by_model.items()]
        return tasks + [Task("engine", (c,)) for c in engine]

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Play each cell's test, refining a switch until it is bracketed."""
        out = []
        for cell in task.cells:
            start = time.perf_counter()
            tables = play(cell, model, on_step)
            out.append(CellResult(cell=cell, tables=tables, seconds=time.perf_counter() - start))
        return out


def _json(model: ModelConfig) -> str:
    return json.dumps(model.model_dump(mode="json"), sort_keys=True)


def _tests(
    config: SuiteConfig, mixing: bool = False
) -> list[tuple[str, str, GameConfig, PolicyConfig]]:
    """(test, env, game, policy) of every game the suite plays (``mixing``: the mixed one)."""
    out = [
        ("switch", "congestion_v0", config.game.model_copy(update={"beta": b}), config.policy)
        for b in config.betas
    ]
    if mixing:
        first = config.game.model_copy(update={"beta": config.betas[0]})
        out.append(("mixed", "congestion_v0", first, config.policy))
    if config.outsiders:
        out.append(("outsiders", "congestion_v0", config.game, config.policy))
    for env in config.dilemmas:
        settings = DILEMMA_SETTINGS[env]
        steps = config.dilemma_steps or int(settings["steps"])
        game = GameConfig(n_agents=config.game.n_agents, steps=steps)
        policy = PolicyConfig(
            scorer="consistent", k=config.policy.k, grid_step=settings["grid_step"], anchors=[]
        )
        out.append(("dilemma", env, game, policy))
    return out


def game_label(cell: SuiteCell) -> str:
    """How a scorecard names its game: ``congestion β=1.6`` or the dilemma's name."""
    return f"congestion β={cell.game.beta:g}" if cell.env == "congestion_v0" else cell.env


def _x_max(game: GameConfig) -> float:
    """The suite's games give every agent one cap."""
    if not isinstance(game.x_max, int | float):
        raise ConfigError("game.x_max: the suite plays one cap for every agent (a number)")
    return float(game.x_max)


def _run_sweep(sweep: ExperimentConfig, model: Any, on_step: OnStep | None) -> list[CellResult]:
    from swalab.experiments.execute import run_engine_task, run_llm_task
    from swalab.experiments.plan import model_key
    from swalab.experiments.plan import plan as plan_sweep

    cells = plan_sweep(sweep, "suite")
    if sweep.model is None:
        return run_engine_task(Task("engine", tuple(cells)))
    return run_llm_task(Task("llm", tuple(cells), model_key(sweep)), model, on_step)


def refine(lams: list[float], rates: list[float], resolution: float) -> list[float]:
    """Where to play next: three λ splitting the gap the fitted overload crosses 0.5 in.

    Empty when the switch is bracketed to ``± resolution`` or not located on the grid.
    """
    from swalab.transition import LOCATED, estimate_transition

    t = estimate_transition(lams, rates, n_boot=0)
    if t.status != LOCATED or t.grid_low is None or t.grid_high is None:
        return []
    low, high = t.grid_low, t.grid_high
    if high - low <= 2 * resolution + 1e-12:
        return []
    played = {round(x, 9) for x in lams}
    new = [round(low + (high - low) * i / 4, 9) for i in (1, 2, 3)]
    return [x for x in new if x not in played]


def play(cell: Cell, model: Any, on_step: OnStep | None = None) -> dict[str, pa.Table]:
    """Every sweep a suite cell needs, then its curve and scorecard tables."""
    c: SuiteCell = cell.config
    results: list[tuple[int, float | None, CellResult]] = []  # (round, share, sweep cell)
    if c.test != "outsiders":
        todo, round_ = list(c.lam), 0
        while todo:
            results += [(round_, None, r) for r in _run_sweep(_sweep(c, todo), model, on_step)]
            if round_ >= c.rounds:
                break
            lams, rates = _episode_points(results)
            todo, round_ = refine(lams, rates, c.resolution), round_ + 1
    else:
        n = c.game.n_agents
        for share in c.outsiders:
            greedy = round(share * n)
            sweep = _sweep(c, [1.0], greedy=greedy)
            results += [(0, share, r) for r in _run_sweep(sweep, model, on_step)]
    steps = pa.concat_tables([r.tables["steps"] for _, _, r in results])
    episodes = pa.concat_tables([r.tables["episodes"] for _, _, r in results])
    curve = _curve(c, results)
    card = scorecard(c, cell.key, curve, steps.to_pydict(), episodes.to_pydict(), results)
    return {
        "steps": steps,
        "episodes": episodes,
        "curve": pa.Table.from_pylist(curve),
        "scorecard": pa.Table.from_pylist([card]),
    }


def _episode_points(
    results: list[tuple[int, float | None, CellResult]],
) -> tuple[list[float], list[float]]:
    lams: list[float] = []
    rates: list[float] = []
    for _, _, r in results:
        ep = r.tables["episodes"].to_pydict()
        for lam, rate, status in zip(ep["lam"], ep["overload_rate"], ep["status"], strict=True):
            if status == "ok" and rate is not None:
                lams.append(float(lam))
                rates.append(float(rate))
    return lams, rates


def _mean(values: list[Any]) -> float | None:
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _curve(
    c: SuiteCell, results: list[tuple[int, float | None, CellResult]]
) -> list[dict[str, Any]]:
    """One row per point played: its metrics over seeds and its cost per decision."""
    rows = []
    for round_, share, r in results:
        ep = r.tables["episodes"].to_pydict()
        ok = [i for i, s in enumerate(ep["status"]) if s == "ok"]
        decisions = sum(int(ep["steps_played"][i] or 0) for i in ok) * c.game.n_agents

        def col(name: str, ep: dict[str, list[Any]] = ep, ok: list[int] = ok) -> list[Any]:
            return [ep[name][i] for i in ok] if name in ep else []

        spent = {k: sum(float(x or 0) for x in col(k)) for k in ("tokens_in", "tokens_out")}
        tokens = spent["tokens_in"] + spent["tokens_out"]
        shared = sum(float(x or 0) for x in col("tokens_shared"))
        rows.append(
            {
                "agent": c.agent,
                "mode": c.mode,
                "test": c.test,
                "game": game_label(c),
                "round": round_,
                "share": share,
                "lam": float(ep["lam"][0]) if ep["lam"] else None,
                "seeds": len(ok),
                "failed": len(ep["status"]) - len(ok),
                "overload_rate": _mean(col("overload_rate")),
                "mean_welfare": _mean(col("mean_welfare")),
                "mean_load": _mean(col("mean_load")),
                "parse_failure_rate": _mean(col("proposal_failure_rate")),
                "fallback_rate": _mean(col("fallback_rate")),
                "pick_agreement": _mean(col("pick_agreement")),
                "tokens_per_decision": tokens / decisions if decisions else None,
                "output_tokens_per_decision": (
                    spent["tokens_out"] / decisions if decisions else None
                ),
                "shared_tokens_per_decision": shared / decisions if decisions else None,
                "latency_per_decision": (
                    sum(float(x or 0) for x in col("latency_s")) / decisions if decisions else None
                ),
                "welfare_per_1k_tokens": (
                    1000 * sum(float(x or 0) for x in col("mean_welfare")) * c.game.steps / tokens
                    if tokens
                    else None
                ),
            }
        )
    return sorted(rows, key=lambda r: (r["share"] or 0, r["lam"] or 0))


def scorecard(
    c: SuiteCell,
    key: str,
    curve: list[dict[str, Any]],
    steps: dict[str, list[Any]],
    episodes: dict[str, list[Any]],
    results: list[tuple[int, float | None, CellResult]],
) -> dict[str, Any]:
    """The cell's scorecard.

    λ_c with its bracket; overload and welfare gap at λ = 1 and just above the predicted
    switch; price of anarchy at λ = 0; revealed-λ calibration; parse failures; cost.
    """
    from swalab.experiments.revealed import calibration, cell_rows
    from swalab.transition import estimate_transition

    g = c.game
    congestion = c.env == "congestion_v0"
    if congestion:
        star = float(theory.lambda_star(g.n_agents, g.beta))
        tilde: float | None = float(
            theory.lambda_tilde(g.capacity, g.beta, _x_max(g), c.policy.margin)
        )
    else:  # the dilemma's closed-form switch, as its episodes record it
        points = [x for x in episodes.get("switch_point", []) if x is not None]
        star, tilde = (float(points[0]) if points else float("nan")), None
    optimum = float(g.capacity)  # congestion, unit values: welfare peaks at load C
    card: dict[str, Any] = {
        "suite_version": c.version,
        "swalab_version": c.swalab,
        "cell": key,
        "model": c.agent,
        "backend": None if c.model is None else c.model.backend,
        "identity": c.identity,
        "templates": c.templates,
        "mode": c.mode,
        "test": c.test,
        "game": game_label(c),
        "beta": g.beta if congestion else None,
        "lambda_star": star,
        "lambda_tilde": tilde,
        "points": len(curve),
        "rounds": max((r for r, _, _ in results), default=0),
    }
    by_lam = {row["lam"]: row for row in curve if row["share"] is None}
    if c.test == "mixed":
        card["by_model"] = json.dumps(_by_model(c, steps))
    if c.test != "outsiders":
        lams, rates = _episode_points(results)
        t = estimate_transition(lams, rates, n_boot=500) if lams else None
        predicted = tilde if tilde is not None and c.mode != "best-response" else star
        above = min((x for x in by_lam if x >= predicted + c.resolution), default=None)
        card |= {
            "status": None if t is None else t.status,
            "lambda_c": None if t is None else t.lambda_c,
            "ci_low": None if t is None else t.ci_low,
            "ci_high": None if t is None else t.ci_high,
            "overload_at_1": by_lam.get(1.0, {}).get("overload_rate"),
            "lam_above_switch": above,
            "overload_above_switch": None if above is None else by_lam[above]["overload_rate"],
        }
        if congestion:  # the optimum is known in closed form there
            card |= {
                "welfare_gap_at_1": _gap(optimum, by_lam.get(1.0)),
                "welfare_gap_above_switch": (
                    None if above is None else _gap(optimum, by_lam[above])
                ),
                "price_of_anarchy_at_0": _poa(optimum, by_lam.get(0.0)),
            }
        revealed = cell_rows(key, sweep_config(c), steps, episodes, resamples=200)
        slopes = [s for s in calibration(revealed) if s["agent"] in MODEL_MODES]
        game_slope = next((s for s in slopes if s["utility"] == "game"), None)
        card["calibration_slope"] = None if game_slope is None else game_slope["slope"]
        card["revealed_unidentified"] = None if game_slope is None else game_slope["unidentified"]
        card["proposal_shift"] = _proposal_shift(steps)
    else:
        stable = [r["share"] for r in curve if (r["overload_rate"] or 0) < 0.5]
        card["outsiders_absorbed"] = max(stable) if stable else None
    card |= {
        "parse_failure_rate": _mean([r["parse_failure_rate"] for r in curve]),
        "fallback_rate": _mean([r["fallback_rate"] for r in curve]),
        "pick_agreement": _mean([r["pick_agreement"] for r in curve]),
        "tokens_per_decision": _mean([r["tokens_per_decision"] for r in curve]),
        "shared_tokens_per_decision": _mean([r["shared_tokens_per_decision"] for r in curve]),
        "latency_per_decision": _mean([r["latency_per_decision"] for r in curve]),
        "welfare_per_1k_tokens": _mean([r["welfare_per_1k_tokens"] for r in curve]),
    }
    return card


def _by_model(c: SuiteCell, steps: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Mixed test: each model's agents, their mean demand and reward at λ = 0 and λ = 1.

    Who takes more of the resource, and who pays for the overload, when models share it.
    """
    seats = _sweep(c, [c.lam[0]]).model_seats()
    out = []
    for j, model in enumerate(c.model_roster()):
        mine = {i for i, s in enumerate(seats) if s == j}
        row: dict[str, Any] = {"model": model.name or "default", "agents": len(mine)}
        for lam in (0.0, 1.0):
            picked = [
                (d, r)
                for a, x, d, r in zip(
                    steps["agent"], steps["lam"], steps["demand"], steps["reward"], strict=True
                )
                if a in mine and x == lam
            ]
            row[f"demand_at_{lam:g}"] = _mean([d for d, _ in picked])
            row[f"reward_at_{lam:g}"] = _mean([r for _, r in picked])
        out.append(row)
    return out


def _gap(optimum: float, row: dict[str, Any] | None) -> float | None:
    if row is None or row["mean_welfare"] is None:
        return None
    return optimum - float(row["mean_welfare"])


def _poa(optimum: float, row: dict[str, Any] | None) -> float | None:
    """Price of anarchy at λ = 0: the optimum's welfare over the realised welfare."""
    if row is None or row["mean_welfare"] is None or row["mean_welfare"] <= 0:
        return None
    return optimum / float(row["mean_welfare"])


def _proposal_shift(steps: dict[str, list[Any]]) -> float | None:
    """How far the model's own proposals move from λ = 0 to λ = 1 (mean proposal)."""
    means = {}
    for target in (0.0, 1.0):
        values = [
            float(x)
            for lam, props in zip(steps["lam"], steps["proposals"], strict=True)
            if lam == target and props
            for x in props
        ]
        means[target] = float(np.mean(values)) if values else None
    if means[0.0] is None or means[1.0] is None:
        return None
    return means[1.0] - means[0.0]


def sweep_config(c: SuiteCell) -> dict[str, Any]:
    """The config of the sweeps a suite cell plays, as JSON data (what revealed λ reads)."""
    sweep = _sweep(c, [c.lam[0]])
    data: dict[str, Any] = sweep.model_dump(mode="json")
    return data


SUITE = Suite()

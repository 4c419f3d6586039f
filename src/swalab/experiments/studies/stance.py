"""The ``stance`` kind: LLM agents whose stance text drifts as they play, judged and revealed.

Prompted LLM agents read a stance in words (at the start, their λ in words) and rewrite it
every ``every`` steps from their own and their neighbours' payoffs
(:mod:`swalab.llm.stance`). One cell is one starting λ played over every seed; it stores
one row per seed, epoch and agent (``stance``: the text and the judge's reading of it), one
row per seed and epoch (``stance_epochs``: demand, overload, welfare, judged λ, revealed λ,
failures and cost; with ``talk``, how far demands strayed from what agents announced), and
the judge's reading of λ in words at fixed λ (``stance_calibration``), so a judged λ can be
trusted only as far as the judge reads the words it was given.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from swalab.experiments import adapt
from swalab.experiments.cells import Cell, CellResult, Roster, Task
from swalab.experiments.config import (
    ConfigError,
    ExecutorConfig,
    GameConfig,
    ModelConfig,
    PolicyConfig,
    StudyConfig,
)
from swalab.experiments.kinds import OnStep
from swalab.experiments.limits import Work
from swalab.experiments.studies import Axis, SplitKind, schema

#: Columns of the per-agent stance table.
STANCE_SCHEMA = schema(
    ints=("seed", "epoch", "start", "agent", "chars"), floats=("lam0", "grade")
).append(pa.field("stance", pa.string()))
for _name in ("grade_error", "reflect_error"):
    STANCE_SCHEMA = STANCE_SCHEMA.append(pa.field(_name, pa.string()))
#: Columns of the per-epoch table.
EPOCH_SCHEMA = schema(
    ints=(
        "seed",
        "epoch",
        "start",
        "steps",
        "grade_failures",
        "reflect_failures",
        "announce_failures",
    ),
    floats=(
        "lam0",
        "mean_demand",
        "overload_rate",
        "mean_welfare",
        "judged_lam",
        "revealed",
        "revealed_low",
        "revealed_high",
        "fallback_rate",
        "promise_gap",
        "tokens_in",
        "tokens_out",
        "latency_s",
        "lam_star",
        "lam_tilde",
    ),
).append(pa.field("revealed_method", pa.string()))
#: Columns of the judge's calibration table.
CALIBRATION_SCHEMA = schema(floats=("lam", "grade")).append(pa.field("stance", pa.string()))
CALIBRATION_SCHEMA = CALIBRATION_SCHEMA.append(pa.field("grade_error", pa.string()))


def _default_model() -> ModelConfig:
    return ModelConfig(backend="llamacpp")


class StanceConfig(StudyConfig):
    """A stance-drift study; defaults: the reference game for 200 steps, the embedded model."""

    kind: Literal["stance"] = "stance"
    name: str = "stance"
    game: GameConfig = Field(default_factory=lambda: GameConfig(steps=200))
    policy: PolicyConfig = Field(
        default_factory=lambda: PolicyConfig(candidates="llm", mode="prompted"),
        description="How agents are asked (prompted: they read their stance, answer a demand).",
    )
    model: ModelConfig = Field(default_factory=_default_model, description="The agents' model.")
    judge: ModelConfig | None = Field(
        None, description="Who grades the stances (null: the agents' own model)."
    )
    lam: Axis = Field(default_factory=lambda: [0.9], description="Starting λ (a cell each).")
    every: int = Field(10, ge=1, le=10**6, description="Steps between reflections.")
    max_chars: int = Field(160, ge=8, le=2000, description="Longest stance text.")
    reflect_temperature: float = Field(0.7, ge=0, description="Temperature of a rewrite.")
    reflect_max_tokens: int = Field(64, ge=1, le=4096, description="Token limit of a rewrite.")
    seeds: int = Field(2, ge=1, le=1000, description="Episodes per starting λ (seeds 0, 1, …).")
    talk: bool = Field(
        False,
        description="Cheap talk in words: each step agents first say what they will request, "
        "and everyone hears it before answering.",
    )

    @model_validator(mode="after")
    def _valid(self) -> StanceConfig:
        if any(not 0 <= x <= 1 for x in self.lam):
            raise ValueError(f"lam={self.lam}: every starting λ must lie in [0, 1]")
        if self.policy.mode != "prompted" or self.policy.candidates != "llm":
            raise ValueError(
                f"policy.mode={self.policy.mode!r}, policy.candidates="
                f"{self.policy.candidates!r}: stance agents read their stance and answer "
                "(mode: prompted, candidates: llm)"
            )
        if self.game.horizon != "fixed":
            raise ValueError("game.horizon: a stance drift plays a fixed horizon")
        return self

    def model_roster(self) -> list[ModelConfig]:
        """The agents' model, then the judge's when it is another."""
        if self.judge is None or self.judge == self.model:
            return [self.model]
        return [self.model, self.judge]


class Stance(SplitKind):
    """The ``stance`` kind (see :class:`~swalab.experiments.kinds.Kind`)."""

    name = "stance"
    summary = "LLM agents whose stance text drifts: judged and revealed λ per epoch"
    config = StanceConfig
    tables: ClassVar[dict[str, pa.Schema | None]] = {
        "stance": STANCE_SCHEMA,
        "stance_epochs": EPOCH_SCHEMA,
        "stance_calibration": CALIBRATION_SCHEMA,
    }
    split = ("lam",)
    placement = "llm"

    def work(self, config: StanceConfig) -> Work:
        """Every starting λ and seed plays ``steps`` LLM steps of ``n_agents`` decisions."""
        return Work(
            cells=len(config.lam),
            episodes=len(config.lam) * config.seeds,
            steps=config.game.steps,
            agents=config.game.n_agents,
            candidates=1,
            field="lam",
        )

    def check(self, config: StanceConfig) -> None:
        """The models exist and are installed; the game builds."""
        from swalab.experiments.plan import _check_model

        adapt.base_simulation(config.game, config.policy)
        _check_model(config.model)
        if config.judge is not None:
            _check_model(config.judge, "judge")

    def tasks(self, cells: list[Cell], executor: ExecutorConfig) -> list[Task]:
        """One task: the model is loaded once for every starting λ."""
        from swalab.experiments.plan import model_key

        return [Task("llm", tuple(cells), model_key(cells[0].config))] if cells else []

    def run(self, task: Task, model: Any = None, on_step: OnStep | None = None) -> list[CellResult]:
        """Play each cell's episodes; stances rewritten and graded as they go."""
        from swalab.llm.judge import LLMJudge
        from swalab.llm.presets import uses_chat
        from swalab.llm.protocol import default_template
        from swalab.llm.stance import Reflection, run_stance_drift
        from swalab.swi.drift import predicted_switch

        if model is None:
            raise ConfigError("a stance study needs a loaded model")
        agents, judge = model.models[:2] if isinstance(model, Roster) else (model, model)
        out = []
        for cell in task.cells:
            c: StanceConfig = cell.config
            start = time.perf_counter()
            sim = adapt.base_simulation(c.game, c.policy)
            m = c.model
            chat = uses_chat(m.backend, m.name, m.options)
            reflection = Reflection(
                every=c.every,
                max_chars=c.max_chars,
                temperature=c.reflect_temperature,
                max_tokens=c.reflect_max_tokens,
                template=default_template("reflect", chat=chat),
            )
            proto = replace(adapt.protocol(_as_sweep(c), m), talk=c.talk)
            result = run_stance_drift(
                sim,
                agents,
                c.lam,
                list(range(c.seeds)),
                protocol=proto,
                reflection=reflection,
                judge=LLMJudge(model=judge, constrained=(c.judge or m).constrained),
                on_step=on_step,
            )
            failed = [ep for ep in result.episodes if ep.status != "ok"]
            if failed:
                raise RuntimeError(f"lam={c.lam[0]}: {failed[0].error}")
            lam_star, lam_tilde = (predicted_switch(sim, name) for name in ("consistent", "paper"))
            epochs = [
                r | {"lam_star": lam_star, "lam_tilde": lam_tilde} for r in result.epoch_rows(sim)
            ]
            tables = {
                "stance": _table(result.stance_rows(), STANCE_SCHEMA),
                "stance_epochs": _table(epochs, EPOCH_SCHEMA),
                "stance_calibration": _table(result.calibration, CALIBRATION_SCHEMA),
            }
            out.append(CellResult(cell=cell, tables=tables, seconds=time.perf_counter() - start))
        return out


def _as_sweep(config: StanceConfig) -> Any:
    """The sweep config :func:`adapt.protocol` reads (its policy and model)."""
    from swalab.experiments.config import ExperimentConfig

    return ExperimentConfig(game=config.game, policy=config.policy, model=config.model)


def _table(rows: list[dict[str, Any]], table_schema: pa.Schema) -> pa.Table:
    """Rows as a table of ``table_schema`` (NaN floats for missing numbers)."""
    cols = {
        f.name: [
            (float("nan") if r.get(f.name) is None else r[f.name])
            if pa.types.is_floating(f.type)
            else r.get(f.name)
            for r in rows
        ]
        for f in table_schema
    }
    return pa.table(cols, schema=table_schema)


STANCE = Stance()

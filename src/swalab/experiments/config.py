"""Study configs: typed, loaded from YAML, checked completely before any work starts.

The sections every kind of study reuses live here — the game, the SWI policy, the model,
the executor — with :class:`StudyConfig`, the fields every kind shares, and
:class:`ExperimentConfig`, the ``sweep`` kind: the game, the policy, an optional model
(LLM-backed candidates), λ, seeds and a ``grid`` mapping dotted field paths to lists of
values. The other kinds' configs live with their code (:mod:`swalab.experiments.studies`);
:func:`swalab.experiments.kinds.load_config` reads any of them. Every mistake — an unknown
key, a wrong type, a value out of range, an unknown
backend or model, a combination the library refuses — is a :class:`ConfigError` whose one
line names where it came from (file, ``grid`` entry or ``--set`` override), the field path,
the value and what is allowed.

YAML is read with ``safe_load`` only: a config is data, never code.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from swalab import reference as ref
from swalab.llm.registry import BACKENDS

StudyConfigT = TypeVar("StudyConfigT", bound="StudyConfig")

#: The largest magnitude a config number may have: far beyond any meaningful capacity,
#: severity or cap, and far from where float arithmetic overflows.
BIG = 1e9
#: The largest count (agents, steps, seeds, tokens): beyond it arrays would not fit.
MANY = 10**9
#: The smallest positive size a config number may have (its reciprocal must stay finite).
TINY = 1e-9

PositiveFloat = Annotated[float, Field(ge=TINY, le=BIG, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, le=BIG, allow_inf_nan=False)]
UnitFloat = Annotated[float, Field(ge=0, le=1)]
#: One value per agent (at least one).
PerAgentList = Annotated[list[PositiveFloat], Field(min_length=1)]


class ConfigError(ValueError):
    """A config that cannot run, described in one line."""


class _Strict(BaseModel):
    """Unknown keys are errors; values are never coerced from strings to numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Distribution(_Strict):
    """A per-agent parameter drawn afresh for every seed (each agent independently).

    ``uniform`` needs ``low < high``; ``normal`` needs ``mean`` and ``sd`` and is truncated
    to the field's allowed range by redrawing; ``choice`` needs ``values`` and optional
    probabilities ``p`` (default equal).
    """

    dist: Literal["uniform", "normal", "choice"]
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    sd: NonNegativeFloat | None = None
    values: list[float] | None = Field(None, min_length=1)
    p: list[NonNegativeFloat] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Distribution:
        need = {"uniform": ("low", "high"), "normal": ("mean", "sd"), "choice": ("values",)}
        for name in need[self.dist]:
            if getattr(self, name) is None:
                raise ValueError(f"dist {self.dist!r} needs {name}")
        unused = [
            n
            for n in ("low", "high", "mean", "sd", "values", "p")
            if getattr(self, n) is not None and n not in (*need[self.dist], "p")
        ]
        if unused or (self.p is not None and self.dist != "choice"):
            raise ValueError(
                f"dist {self.dist!r} takes {list(need[self.dist])}, not {unused or ['p']}"
            )
        if self.dist == "uniform" and not (self.low or 0.0) < (self.high or 0.0):
            raise ValueError("uniform needs low < high")
        if self.p is not None:
            if self.values is None or len(self.p) != len(self.values):
                raise ValueError("p needs one probability per value")
            if not math.isclose(sum(self.p), 1.0, abs_tol=1e-9):
                raise ValueError(f"p sums to {sum(self.p)}, not 1")
        return self

    def expected(self) -> float:
        """The distribution's mean (the nominal value reports plot against)."""
        if self.dist == "uniform":
            return (float(self.low or 0.0) + float(self.high or 0.0)) / 2
        if self.dist == "normal":
            return float(self.mean or 0.0)
        vals = self.values or []
        probs = self.p or [1.0 / len(vals)] * len(vals)
        return float(sum(p * x for p, x in zip(probs, vals, strict=True)))


class GameConfig(_Strict):
    """The congestion game; defaults are the reference configuration (``swalab.reference``)."""

    n_agents: int = Field(ref.N_AGENTS, ge=2, le=10**6, description="Agents N.")
    capacity: PositiveFloat = Field(ref.CAPACITY, description="Capacity C.")
    beta: PositiveFloat = Field(ref.BETA, description="Severity β.")
    x_max: PositiveFloat | PerAgentList | Distribution = Field(
        ref.X_MAX, description="Demand cap: one for all agents, one per agent, or a distribution."
    )
    weights: PerAgentList | Distribution | None = Field(
        None, description="Impacts w_i on the load (list or distribution)."
    )
    values: PerAgentList | Distribution | None = Field(
        None, description="Private values v_i (list or distribution)."
    )
    steps: int = Field(
        ref.STEPS, ge=1, le=MANY, description="Horizon T (fixed) or its mean (geometric)."
    )
    horizon: Literal["fixed", "geometric"] = Field(
        "fixed", description="fixed T, or a seeded geometric T with mean steps."
    )


class BeliefConfig(_Strict):
    """How agents estimate the others' mean demand."""

    kind: Literal["ema", "last", "window"] = Field(
        "ema", description="ema (the paper), last step, or window mean."
    )
    alpha: float = Field(ref.ALPHA, gt=0, le=1, description="EMA smoothing α.")
    window: int = Field(5, ge=1, le=MANY, description="Observations a window belief pools.")
    initial: NonNegativeFloat | None = Field(None, description="μ̂₀; null means C/N.")
    private: bool = Field(False, description="Observe the others' mean, not the public mean.")
    delay: int = Field(0, ge=0, le=MANY, description="Decide with the belief of d steps earlier.")
    noise: NonNegativeFloat = Field(0.0, description="σ of Gaussian noise on each belief.")


class ModelConfig(_Strict):
    """The LLM that proposes candidates (``policy.candidates: llm``)."""

    backend: str = Field(description="One of the registered backends.")
    name: str | None = Field(None, description="Preset name, GGUF path or model id.")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Backend options, e.g. base_url, structured."
    )
    temperature: NonNegativeFloat = ref.TEMPERATURE
    max_tokens: int = Field(ref.MAX_TOKENS, ge=1, le=10**6)
    constrained: bool = True
    cache: bool | str = Field(True, description="Response cache: on, off or a file path.")
    attempts: int = Field(
        3, ge=1, le=100, description="Calls per prompt at most when a backend failure may pass."
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"is not a known backend: choose one of {sorted(BACKENDS)}")
        return value

    @field_validator("options")
    @classmethod
    def _no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if "key" in key.lower() or "token" in key.lower():
                raise ValueError(
                    f"option {key!r} looks like a secret: API keys come from the environment "
                    f"(OPENAI_API_KEY), never from a config that is stored with the results"
                )
        return value


class AgentSpec(_Strict):
    """``count`` agents of one kind (a population lists them in agent order)."""

    kind: Literal["swi", "greedy", "fixed", "tit_for_tat", "random", "adversary", "retry"] = "swi"
    count: int = Field(1, ge=1, le=10**6)
    demand: NonNegativeFloat | None = Field(
        None,
        description="fixed: its demand; tit_for_tat: its cooperative demand (C/N); "
        "retry (rate_limit_v0): its new calls per step.",
    )
    model: ModelConfig | None = Field(
        None,
        description="swi agents of an LLM cell: the model that answers them (default: the "
        "experiment's model). Mixes models in one episode.",
    )

    @model_validator(mode="after")
    def _demand_fits(self) -> AgentSpec:
        if self.kind == "fixed" and self.demand is None:
            raise ValueError("kind 'fixed' needs a demand")
        if self.demand is not None and self.kind not in ("fixed", "tit_for_tat", "retry"):
            raise ValueError(f"kind {self.kind!r} takes no demand")
        if self.model is not None and self.kind != "swi":
            raise ValueError(f"kind {self.kind!r} asks no model: only swi agents take a model")
        return self


class PolicyConfig(_Strict):
    """The SWI decision rule: where candidates come from, how they are scored and chosen."""

    scorer: Literal["paper", "consistent", "judge"] = Field(
        "paper", description="paper, consistent, or judge (LLM judge; context_budget_v0 text)."
    )
    candidates: Literal["grid", "random", "anchors", "llm"] = Field(
        "grid",
        description="grid (whole grid), random (k seeded draws), anchors (the anchors alone) "
        "or llm (the model).",
    )
    k: int = Field(
        ref.K, ge=1, le=10**6, description="Random draws or LLM proposals per agent and step."
    )
    grid_step: PositiveFloat = Field(
        ref.GRID_STEP, description="Demand grid / proposal resolution."
    )
    anchors: list[NonNegativeFloat] = Field(default_factory=lambda: list(ref.ANCHORS))
    margin: NonNegativeFloat = ref.MARGIN
    gamma: NonNegativeFloat = ref.GAMMA
    belief: BeliefConfig = Field(default_factory=BeliefConfig)
    mode: Literal["swi", "prompted"] = Field(
        "swi",
        description="swi (the SWI rule scores candidates) or prompted (the model is told λ "
        "in words and answers its demand; no scorer; needs candidates: llm).",
    )
    selector: Literal["code", "llm"] = Field("code", description="Who picks the row (LLM).")
    fallback: Literal["anchors", "grid", "fail"] = Field(
        "anchors", description="What replaces unusable LLM proposals."
    )


class ExecutorConfig(_Strict):
    """Where cells run; does not change results (not part of a cell's hash)."""

    kind: Literal["local", "ray"] = "local"
    workers: int | None = Field(None, ge=1, le=4096, description="Local processes (default: CPUs).")
    address: str | None = Field(None, description="Ray cluster address (default: local).")
    cells_per_task: int = Field(
        32, ge=1, le=10**6, description="Model-based cells advanced together in one task."
    )
    force: bool = Field(
        False, description="Run a study larger than the limits on total work (not on memory)."
    )
    engine: Literal["lockstep", "loop"] = Field(
        "lockstep",
        description="Model-based episodes: the compiled engine, or the per-agent path "
        "(bit-identical; slower, for checks and debugging).",
    )


class StudyConfig(_Strict):
    """What every kind of study shares: its kind, its name, where it runs and writes.

    None of these fields changes results, so none is part of a cell's hash.
    """

    kind: str = "sweep"
    name: str = Field("experiment", min_length=1)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    out: str | None = Field(None, description="Output directory (default results/<name>).")


class ExperimentConfig(StudyConfig):
    """One sweep: every field not in ``grid`` is shared by all cells."""

    kind: Literal["sweep"] = "sweep"
    env: Literal["congestion_v0", "rate_limit_v0", "context_budget_v0", "commons_v0"] = (
        "congestion_v0"
    )
    env_params: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="A dilemma's own parameters (game.n_agents and game.steps set N and T).",
    )
    game: GameConfig = Field(default_factory=GameConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    model: ModelConfig | None = None
    lam: UnitFloat | Annotated[list[UnitFloat], Field(min_length=1)] | Distribution = Field(
        0.0, description="Social weight: one for all agents, one per agent, or a distribution."
    )
    population: list[AgentSpec] | None = Field(
        None, description="Agent kinds in agent order (counts sum to n_agents); null: all SWI."
    )
    seeds: (
        Annotated[int, Field(ge=1, le=MANY)]
        | Annotated[list[Annotated[int, Field(ge=0, le=2**62)]], Field(min_length=1)]
    ) = Field(
        20, description="A count n (seeds 0..n-1) or an explicit list; episodes of each cell."
    )
    grid: dict[str, list[Any] | dict[str, float]] = Field(
        default_factory=dict, description="Dotted field path → values to sweep."
    )
    record_decisions: bool = Field(
        True, description="Store every candidate set and its utilities in the step rows."
    )

    def seed_list(self) -> list[int]:
        """The seeds every cell runs."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def model_roster(self) -> list[ModelConfig]:
        """Every model the cell asks, the experiment's first, each once."""
        roster = [] if self.model is None else [self.model]
        for spec in self.population or []:
            if spec.model is not None and spec.model not in roster:
                roster.append(spec.model)
        return roster

    def model_seats(self) -> list[int]:
        """Which model of :meth:`model_roster` answers each agent (0 for outsiders)."""
        if self.population is None:
            return [0] * self.game.n_agents
        roster = self.model_roster()
        seats: list[int] = []
        for spec in self.population:
            seats += [0 if spec.model is None else roster.index(spec.model)] * spec.count
        return seats

    def agent_kinds(self) -> tuple[list[str], list[float]]:
        """Every agent's kind and demand parameter (NaN: none), in agent order."""
        n = self.game.n_agents
        if self.population is None:
            return ["swi"] * n, [math.nan] * n
        kinds: list[str] = []
        demands: list[float] = []
        for spec in self.population:
            kinds += [spec.kind] * spec.count
            demands += [math.nan if spec.demand is None else spec.demand] * spec.count
        if len(kinds) != n:
            raise ConfigError(
                f"population: counts sum to {len(kinds)} agents, but game.n_agents={n}"
            )
        return kinds, demands


#: Fields that say where and how a study runs, not what it computes (left out of hashes).
NOT_HASHED = ("kind", "name", "grid", "executor", "out")


def _where(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(error: ValidationError) -> tuple[str, str]:
    """Return (field path, one-line message) of the first error pydantic found."""
    errors = error.errors(include_url=False)
    # A union reports one error per member; the deepest is the one about the user's value
    # (``lam: [0.5, "x"]`` fails as a list at index 1, not as a float), and among equals
    # a broken constraint says more than "wrong type" (``seeds: []`` is too short).
    first = max(errors, key=lambda e: (len(e["loc"]), not e["type"].endswith("_type")))
    # Union members add tags such as ``constrained-float`` to the location; drop them.
    path = _where([p for p in first["loc"] if isinstance(p, int) or p.isidentifier()])
    msg = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        return path, f"{path}: unknown key (value {value!r})"
    if first["type"] == "missing":
        return path, f"{path}: required field is missing"
    if not path:  # a check across fields: its message names them and their values
        return path, msg
    return path, f"{path}={json.dumps(value, default=str)}: {msg}"


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part!r} holds {child!r}, not a section")
        node = child
    node[parts[-1]] = value


def field_exists(dotted: str, config: type[BaseModel]) -> bool:
    """Whether ``dotted`` names a field of ``config`` (or a key of one of its mappings).

    ``env_params.*`` and ``model.options.*`` are open-ended: their keys are checked when
    the cell is planned (by the dilemma or the backend that takes them).
    """
    model: type[BaseModel] | None = config
    for part in dotted.split("."):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = None
        for candidate in getattr(annotation, "__args__", (annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
        if model is None and _is_mapping(annotation):
            return True
    return True


def _is_mapping(annotation: Any) -> bool:
    """Whether a field holds a free mapping (``dict[str, …]``)."""
    return getattr(annotation, "__origin__", None) is dict


def _expand_range(key: str, spec: Mapping[str, float]) -> list[float]:
    """``{from, to, step}`` → the inclusive list, rounded to 12 decimals."""
    if set(spec) != {"from", "to", "step"}:
        raise ConfigError(f"grid.{key}={dict(spec)}: a range needs exactly the keys from, to, step")
    lo, hi, step = (float(spec[k]) for k in ("from", "to", "step"))
    if not (math.isfinite(lo) and math.isfinite(hi) and step > 0 and hi >= lo):
        raise ConfigError(f"grid.{key}={dict(spec)}: needs finite from <= to and step > 0")
    count = range_count(lo, hi, step, f"grid.{key}")
    return [round(lo + i * step, 12) for i in range(count)]


#: Values of one grid axis at most (a list of a million floats is 8 MB; a billion is not).
MAX_AXIS = 1_000_000


def range_count(start: float, stop: float, step: float, field: str) -> int:
    """Values of ``{from: start, to: stop, step: step}``, refused above :data:`MAX_AXIS`.

    Raises:
        ConfigError: Too many values (the message names the field and the limit).
    """
    count = math.floor((stop - start) / step + 1e-9) + 1
    if not math.isfinite(count) or count > MAX_AXIS:
        raise ConfigError(
            f"{field}: {{from: {start:g}, to: {stop:g}, step: {step:g}}} has {count:,.0f} "
            f"values; at most {MAX_AXIS:,} per axis"
        )
    return int(count)


class _DataLoader(yaml.SafeLoader):
    """``safe_load`` that also refuses duplicate keys and aliases.

    A duplicate key would silently keep the last value; an alias (``*name``) lets 1 KB of
    YAML stand for gigabytes once expanded (the "billion laughs"). A config is plain data
    and needs neither.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: alias *{event.anchor} refused (a config "
                "is plain data: write the value out)"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.YAMLError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r} (a mapping "
                    "holds each key once)"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML text as data: tags, aliases and duplicate keys refused."""
    return yaml.load(text, Loader=_DataLoader)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line of a YAML error (PyYAML's span several, with a caret drawing)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        return f"{exc.problem}{where}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


#: An override: ``dotted.key=value`` text (the value read as YAML), or a (key, value) pair
#: a program already holds as data (a 100,000-point axis is not worth printing and parsing).
Override = str | tuple[str, Any]


def override_text(override: Override) -> str:
    """How an override reads in a message (a long value cut short)."""
    if isinstance(override, str):
        return override
    key, value = override
    shown = repr(value)
    return f"{key}={shown if len(shown) <= 60 else shown[:57] + '...'}"


def parse_override(text: Override) -> tuple[str, Any]:
    """``dotted.key=value`` with the value read as YAML (``0.5``, ``[1, 2]``, ``paper``)."""
    if not isinstance(text, str):
        return text
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: write dotted.key=value")
    try:
        return key, load_yaml(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"--set {text!r}: value is not valid YAML: {_yaml_problem(exc)}"
        ) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config file into a mapping (``safe_load``: data only)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the config as UTF-8"
        ) from None
    except OSError as exc:
        from swalab.experiments.presets import preset_names

        raise ConfigError(
            f"{p}: cannot read ({exc.strerror}); give a YAML file or a preset name "
            f"({', '.join(preset_names())})"
        ) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: must hold a mapping of fields, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, section by section (a non-mapping value replaces)."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, Mapping):
            out[key] = _merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _over_defaults(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` over the kind's defaults, so a partial section keeps the kind's own defaults.

    A stability map's game defaults to β = 3 and T = 60; ``game: {steps: 20}`` (or
    ``--set game.steps=20``) must change T only, not fall back to the reference β.
    """
    return _merge(model().model_dump(mode="json"), data)


def load_into(
    model: type[StudyConfigT],
    data: dict[str, Any],
    name: str,
    overrides: Sequence[Override] = (),
) -> StudyConfigT:
    """Override and validate ``data`` as a ``model`` (the grid is checked when planned).

    Args:
        model: The kind's config class.
        data: The mapping a YAML file holds.
        name: Where ``data`` came from, for error messages.
        overrides: ``dotted.key=value`` strings (or key, value pairs) applied over it.

    Raises:
        ConfigError: One line naming the source, the field, the value and what is allowed.
    """
    data = _over_defaults(model, data)
    where: dict[str, str] = {}
    for override in overrides:
        key, value = parse_override(override)
        text = override_text(override)
        if key.startswith("grid.") and "grid" in model.model_fields:
            grid = data.get("grid")  # grid keys are dotted paths themselves
            data["grid"] = grid = dict(grid) if isinstance(grid, dict) else {}
            grid[key.removeprefix("grid.")] = value
            where["grid"] = f"--set {text}"
            continue
        if not field_exists(key, model):
            raise ConfigError(f"--set {text!r}: {key!r} is not a config field")
        if isinstance(data.get("grid"), dict):  # a fixed value replaces a swept one
            data["grid"].pop(key, None)
        _set_path(data, key, value)
        where[key] = f"--set {text}"
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        path, msg = _describe(exc)
        origin = next((w for k, w in where.items() if path.startswith(k)), name)
        raise ConfigError(f"{origin}: {msg}") from None
    for key in getattr(config, "grid", {}):
        if key in ("seeds", *NOT_HASHED) or not field_exists(key, model):
            allowed = "game.*, policy.*, model.*, lam, record_decisions"
            raise ConfigError(f"{name}: grid.{key}: not a field that can be swept ({allowed})")
    return config


def grid_values(config: ExperimentConfig) -> dict[str, list[Any]]:
    """The grid with ranges expanded; an empty list is an error."""
    out: dict[str, list[Any]] = {}
    for key, values in config.grid.items():
        out[key] = _expand_range(key, values) if isinstance(values, dict) else list(values)
        if not out[key]:
            raise ConfigError(f"grid.{key}: empty list; give at least one value")
    return out


def validate_cell(
    model: type[StudyConfigT], base: dict[str, Any], assignment: dict[str, Any], label: str
) -> StudyConfigT:
    """Validate ``base`` with ``assignment`` set, naming the assigned field on error."""
    data = copy.deepcopy(base)
    if "grid" in data:
        data["grid"] = {}
    for key, value in assignment.items():
        _set_path(data, key, value)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        path, msg = _describe(exc)
        swept = next((k for k in assignment if path.startswith(k)), None)
        raise ConfigError(f"{label}: {msg}" + (f" (from grid.{swept})" if swept else "")) from None

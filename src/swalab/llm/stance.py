"""LLM agents whose stance drifts: a goal in words that each agent rewrites as it plays.

The SWA paper tells an agent its λ once. Here a prompted LLM agent reads a short *stance*
text in its prompt where λ in words would stand (at the start it is exactly those words,
:func:`~swalab.llm.protocol.stance`), plays the congestion game, and every ``every`` steps
*reflects*: it is shown its stance, its own and its neighbours' mean request and points over
the last ``every`` steps and how often the server was overloaded, and writes its stance for
the next steps — one line of at most ``max_chars`` plain characters
(:class:`~swalab.llm.constraints.Sentence`). All agents of all episodes reflect in one
batched call, seeded by (episode seed, step, agent); an answer that cannot be used keeps the
old stance and records why.

Drift is measured two ways, per *epoch* (the steps one set of stances is in force):

* **judged λ** — a judge model (:meth:`~swalab.llm.judge.LLMJudge.weigh`, greedy, one
  batched call per reflection) reads the weight each stance text gives the group's score;
  the same judge grades λ in words at fixed λ values (its calibration) so a reader sees
  whether the judge can read a stance at all;
* **revealed λ** — the λ that best explains the epoch's demands under the game's own SWA
  utility (:func:`~swalab.theory.revealed.reveal`, the others' load from each agent's
  belief, candidates the whole demand grid).

Long horizons stay affordable because each step is one batched call for every agent of every
episode, reflections are one call per ``every`` steps, and every completion goes through the
response cache, so a rerun replays (and an interrupted study resumes) at no model cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from swalab import _validate as v
from swalab.llm.base import LanguageModel, Stopwatch
from swalab.llm.constraints import Sentence, format_number
from swalab.llm.judge import LLMJudge
from swalab.llm.protocol import ProtocolConfig, _check_template, default_template, stance
from swalab.llm.runner import LLMEpisode, _seed32, _unique_generate, run_llm_pairs
from swalab.swi.candidates import demand_grid
from swalab.swi.config import SimulationConfig
from swalab.theory.revealed import Decisions, game_terms, reveal

#: Slots a reflection template may use.
REFLECT_FIELDS = frozenset(
    {
        "n_agents",
        "capacity",
        "x_max",
        "penalty_per_unit",
        "agent",
        "stance",
        "rounds",
        "own_request",
        "own_points",
        "others_request",
        "others_points",
        "overloaded",
        "max_chars",
    }
)
#: Offset that separates the reflection call's seeds from the decisions'.
_REFLECT_STREAM = 3 << 20
#: The λ values whose stance in words calibrates the judge.
CALIBRATION = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True, kw_only=True)
class Reflection:
    """How and when agents rewrite their stance.

    Attributes:
        every: Steps between reflections (an epoch).
        max_chars: Longest stance text.
        temperature: Sampling temperature of the rewrite.
        max_tokens: Token limit of the rewrite.
        template: The reflection prompt (slots :data:`REFLECT_FIELDS`).
    """

    every: int = 10
    max_chars: int = 160
    temperature: float = 0.7
    max_tokens: int = 64
    template: str = field(default_factory=lambda: default_template("reflect"))

    def __post_init__(self) -> None:
        v.integer_at_least("every", self.every, 1)
        Sentence(max_chars=self.max_chars)
        v.non_negative("temperature", self.temperature)
        v.integer_at_least("max_tokens", self.max_tokens, 1)
        _check_template("reflection template", self.template, REFLECT_FIELDS)


@dataclass
class Epoch:
    """The stances one episode's agents play a run of steps with, and what they cost.

    Attributes:
        start: First step played with these stances.
        stances: Each agent's text.
        grades: The judge's reading of each (NaN: unusable answer).
        grade_errors: Why a grade was refused.
        reflect_errors: Why a rewrite was refused (the old stance stays); None at the start.
        cost: Tokens in/out and seconds of the reflection and judge calls, this episode's share.
    """

    start: int
    stances: list[str]
    grades: list[float]
    grade_errors: list[str | None]
    reflect_errors: list[str | None]
    cost: dict[str, float]


def _mean(values: list[float]) -> str:
    return format_number(round(float(np.mean(values)), 1)) if values else "0"


class StanceBook:
    """Every episode's stances over time; rewrites them between steps (runner hook).

    Args:
        config: The game (its board fills the reflection prompt).
        model: Who reflects (the agents' model).
        judge: Who grades the stances.
        reflection: How and when.
        starts: Each episode's starting λ per agent (their stances in words).
    """

    def __init__(
        self,
        config: SimulationConfig,
        model: LanguageModel,
        judge: LLMJudge,
        reflection: Reflection,
        starts: Sequence[Sequence[float]],
    ) -> None:
        self.config, self.model, self.judge, self.reflection = config, model, judge, reflection
        self.format = Sentence(max_chars=reflection.max_chars)
        texts = [[stance(float(lam)) for lam in row] for row in starts]
        self.epochs: list[list[Epoch]] = [[] for _ in texts]
        self._open(0, list(range(len(texts))), texts, [[None] * len(t) for t in texts], {})

    def text(self, episode: int, agent: int) -> str:
        """The stance in force for ``agent`` of ``episode``."""
        return self.epochs[episode][-1].stances[agent]

    def _open(
        self,
        start: int,
        episodes: list[int],
        texts: list[list[str]],
        errors: list[list[str | None]],
        cost: dict[int, dict[str, float]],
    ) -> None:
        """Grade ``texts`` (one judge call, each distinct text once) and start their epoch."""
        flat = sorted({t for row in texts for t in row})
        watch = Stopwatch()
        graded = self.judge.weigh(flat)
        wall = watch.elapsed()
        by_text = {t: (float(graded.scores[j]), graded.errors[j]) for j, t in enumerate(flat)}
        share = 1.0 / max(len(episodes), 1)
        for e, row, errs in zip(episodes, texts, errors, strict=True):
            spent = dict(cost.get(e, dict.fromkeys(("tokens_in", "tokens_out", "latency_s"), 0.0)))
            spent["tokens_in"] += graded.tokens_in * share
            spent["tokens_out"] += graded.tokens_out * share
            spent["latency_s"] += wall * share
            self.epochs[e].append(
                Epoch(
                    start=start,
                    stances=list(row),
                    grades=[by_text[t][0] for t in row],
                    grade_errors=[by_text[t][1] for t in row],
                    reflect_errors=list(errs),
                    cost=spent,
                )
            )

    def after_step(self, step: int, episodes: Sequence[LLMEpisode]) -> None:
        """After every ``every`` steps, each live agent rewrites its stance (one call)."""
        every = self.reflection.every
        if (step + 1) % every or step + 1 >= self.config.steps:
            return
        live = [e for e, ep in enumerate(episodes) if ep.status == "ok"]
        n, game = self.config.n_agents, self.config
        prompts, seeds, owners = [], [], []
        for e in live:
            rows = episodes[e].rows[-every * n :]  # one row per agent and step
            over = len({r["step"] for r in rows if r["overloaded"]})
            for i in range(n):
                own = [r for r in rows if r["agent"] == i]
                rest = [r for r in rows if r["agent"] != i]
                prompts.append(
                    self.reflection.template.format(
                        n_agents=n,
                        capacity=format_number(game.capacity),
                        x_max=format_number(float(np.max(game.x_max))),
                        penalty_per_unit=format_number(round(game.beta / n, 2)),
                        agent=i + 1,
                        stance=self.text(e, i),
                        rounds=every,
                        own_request=_mean([r["demand"] for r in own]),
                        own_points=_mean([r["reward"] for r in own]),
                        others_request=_mean([r["demand"] for r in rest]),
                        others_points=_mean([r["reward"] for r in rest]),
                        overloaded=over,
                        max_chars=self.reflection.max_chars,
                    )
                )
                seeds.append(_seed32(episodes[e].seed, step, _REFLECT_STREAM + i))
                owners.append((e, i))
        if not prompts:
            return
        done, shared, wall = _unique_generate(
            self.model,
            prompts,
            [self.format] * len(prompts),
            seeds,
            temperature=self.reflection.temperature,
            max_tokens=self.reflection.max_tokens,
        )
        texts = {e: [self.text(e, i) for i in range(n)] for e in live}
        errors: dict[int, list[str | None]] = {e: [None] * n for e in live}
        cost = {e: dict.fromkeys(("tokens_in", "tokens_out", "latency_s"), 0.0) for e in live}
        for (e, i), comp, sh in zip(owners, done, shared, strict=True):
            cost[e]["latency_s"] += wall / len(prompts)
            if not sh:
                cost[e]["tokens_in"] += comp.tokens_in
                cost[e]["tokens_out"] += comp.tokens_out
            error = comp.error
            if error is None:
                try:
                    texts[e][i] = (
                        comp.value if comp.value is not None else self.format.parse(comp.text)
                    )
                except ValueError as exc:
                    error = str(exc)
            errors[e][i] = error
        self._open(step + 1, live, [texts[e] for e in live], [errors[e] for e in live], cost)


def judge_calibration(judge: LLMJudge) -> list[dict[str, Any]]:
    """The judge's reading of λ in words at each λ of :data:`CALIBRATION` (one call)."""
    texts = [stance(lam) for lam in CALIBRATION]
    graded = judge.weigh(texts)
    return [
        {"lam": lam, "stance": t, "grade": float(g), "grade_error": err}
        for lam, t, g, err in zip(CALIBRATION, texts, graded.scores, graded.errors, strict=True)
    ]


@dataclass
class StanceRun:
    """What :func:`run_stance_drift` returns.

    Attributes:
        episodes: The played episodes (rows, accounting) as :func:`run_llm_pairs` gives them.
        epochs: Each episode's epochs.
        calibration: The judge's reading of λ in words (:func:`judge_calibration`).
    """

    episodes: list[LLMEpisode]
    epochs: list[list[Epoch]]
    calibration: list[dict[str, Any]]

    def stance_rows(self) -> list[dict[str, Any]]:
        """One row per episode, epoch and agent: its stance text and grade."""
        out = []
        for ep, epochs in zip(self.episodes, self.epochs, strict=True):
            for k, epoch in enumerate(epochs):
                for i, text in enumerate(epoch.stances):
                    out.append(
                        {
                            "seed": ep.seed,
                            "epoch": k,
                            "start": epoch.start,
                            "agent": i,
                            "lam0": ep.lam[i],
                            "stance": text,
                            "chars": len(text),
                            "grade": epoch.grades[i],
                            "grade_error": epoch.grade_errors[i],
                            "reflect_error": epoch.reflect_errors[i],
                        }
                    )
        return out

    def epoch_rows(self, config: SimulationConfig, resamples: int = 200) -> list[dict[str, Any]]:
        """One row per episode and epoch: behaviour, judged and revealed λ, and cost."""
        out = []
        n = config.n_agents
        for ep, epochs in zip(self.episodes, self.epochs, strict=True):
            played = len(ep.loads)
            for k, epoch in enumerate(epochs):
                end = epochs[k + 1].start if k + 1 < len(epochs) else played
                rows = [r for r in ep.rows if epoch.start <= r["step"] < end]
                if not rows:
                    continue
                steps = range(epoch.start, end)
                decided = [r for r in rows if r.get("fallback") is not None]
                grades = np.asarray(epoch.grades)
                row: dict[str, Any] = {
                    "seed": ep.seed,
                    "epoch": k,
                    "start": epoch.start,
                    "steps": len(steps),
                    "lam0": round(float(np.mean(ep.lam)), 12),
                    "mean_demand": float(np.mean([r["demand"] for r in rows])),
                    "overload_rate": float(np.mean([ep.loads[t] > config.capacity for t in steps])),
                    "mean_welfare": float(np.mean([ep.welfare[t] for t in steps])),
                    "judged_lam": float(np.nanmean(grades)) if np.any(~np.isnan(grades)) else None,
                    "grade_failures": int(np.isnan(grades).sum()),
                    "reflect_failures": sum(e is not None for e in epoch.reflect_errors),
                    "promise_gap": _promise_gap(decided),
                    "announce_failures": sum(
                        r.get("announce_fallback", "none") != "none" for r in decided
                    ),
                    "fallback_rate": (
                        sum(r["fallback"] != "none" for r in decided) / len(decided)
                        if decided
                        else None
                    ),
                    "tokens_in": sum(r.get("tokens_in", 0) for r in decided)
                    + epoch.cost["tokens_in"],
                    "tokens_out": sum(r.get("tokens_out", 0) for r in decided)
                    + epoch.cost["tokens_out"],
                    "latency_s": sum(r.get("latency_s", 0.0) for r in decided)
                    + epoch.cost["latency_s"],
                }
                row |= _revealed(config, decided, n, resamples, seed=ep.seed * 1000 + k)
                out.append(row)
        return out


def _promise_gap(rows: list[dict[str, Any]]) -> float | None:
    """Mean |demand − announced demand| of the rows that announced (None without talk)."""
    gaps = [abs(r["demand"] - r["announced"]) for r in rows if r.get("announced") is not None]
    gaps = [g for g in gaps if np.isfinite(g)]
    return float(np.mean(gaps)) if gaps else None


def _revealed(
    config: SimulationConfig, rows: list[dict[str, Any]], n: int, resamples: int, seed: int
) -> dict[str, Any]:
    """Revealed λ of an epoch's decisions under the game's own utility (grid candidates)."""
    if not rows:
        return dict.fromkeys(("revealed", "revealed_low", "revealed_high", "revealed_method"))
    cands, priv, grp, chosen = [], [], [], []
    x_max = float(np.max(config.x_max))
    grid = demand_grid(x_max, config.grid_step)
    for r in rows:
        actions = np.union1d(grid, [r["demand"]])
        p, g = game_terms(
            actions,
            (n - 1) * float(r["belief"]),
            n_agents=n,
            capacity=config.capacity,
            beta=config.beta,
        )
        cands.append(actions.tolist())
        priv.append(p.tolist())
        grp.append(g.tolist())
        chosen.append(float(r["demand"]))
    found = reveal(Decisions.from_lists(cands, priv, grp, chosen), resamples=resamples, seed=seed)
    return {
        "revealed": found.revealed,
        "revealed_low": found.low,
        "revealed_high": found.high,
        "revealed_method": found.method,
    }


def run_stance_drift(
    config: SimulationConfig,
    model: LanguageModel,
    starts: Sequence[float | Sequence[float]],
    seeds: Sequence[int],
    *,
    protocol: ProtocolConfig | None = None,
    reflection: Reflection | None = None,
    judge: LLMJudge | None = None,
    on_step: Any = None,
) -> StanceRun:
    """Play one prompted episode per (starting λ, seed), stances rewritten as they go.

    Args:
        config: The congestion game (``steps`` is the horizon; fixed horizons only).
        model: The agents' model (it also reflects).
        starts: Starting λ, one or one per agent (cross product with ``seeds``).
        seeds: Episode seeds.
        protocol: How agents are asked (its mode is forced to ``prompted``).
        reflection: How and when stances are rewritten.
        judge: Who grades the stances (default: ``model``, greedy).
        on_step: Progress callback (step index).

    Raises:
        ValueError: A geometric horizon (epochs need a known end), an empty start or seed list.
    """
    if config.horizon != "fixed":
        raise ValueError(f"horizon={config.horizon!r}: a stance drift plays a fixed horizon")
    if not starts or not seeds:
        raise ValueError("starts and seeds must each hold at least one value")
    n = config.n_agents
    proto = protocol or ProtocolConfig(mode="prompted")
    if proto.mode != "prompted":
        proto = replace(proto, mode="prompted", selector="code")
    reflect = reflection or Reflection()
    grader = judge or LLMJudge(model=model)
    pairs = [(lam, int(s)) for lam in starts for s in seeds]
    lams = [
        v.per_agent(f"starts[{j}]", lam, n, 0.0, check="unit_interval").tolist()
        for j, (lam, _) in enumerate(pairs)
    ]
    book = StanceBook(config, model, grader, reflect, lams)
    episodes = run_llm_pairs(config, model, pairs, proto, on_step, stances=book)
    return StanceRun(episodes=episodes, epochs=book.epochs, calibration=judge_calibration(grader))

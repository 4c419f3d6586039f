"""LLM agents in the resource dilemmas: proposals (or whole messages) from the model.

Numeric mode (every dilemma): each step, every SWI agent of every episode is asked in one
batched call for ``k`` amounts of the resource (calls, tokens, tons) given the situation
in words (:meth:`~swalab.envs.dynamics.Dynamics.describe`), constrained to the allowed
numbers; the proposals, united with the anchors, are scored by the dilemma's welfare model
and the argmax is played (:mod:`swalab.swi.dilemma`).

Text mode (``context_budget_v0``): each SWI agent's model writes ``k`` candidate messages
(one batched call for all of them, distinct seeds); a message's length is counted with the
model's own tokenizer; posting nothing is always a candidate. The closed-form welfare model
scores the lengths; with a :class:`~swalab.llm.judge.LLMJudge` the judge's grade of each
message replaces the group score (private then counts ``length/x_max`` so both live on
[0, 1], as in the paper's scorer), and its agreement with the closed-form group score is
measured.

The numeric mode also plays the other agent modes: ``selector="llm"`` asks each agent's
model, in a second call, for the row of its score table with the highest utility (the
reference's second call), and ``mode="prompted"`` states the situation and λ in words and
takes the model's answer, one allowed number, as the amount (no scorer).

Unusable answers are recorded with the fallback taken (grid for proposals, a seeded grid
draw for a prompted answer, the argmax for a pick, the closed-form score for judge grades);
nothing is turned into a made-up number. A backend that gave no answer (down, a prompt
that does not fit its context) is played the same way so the episode ends, but its rows say
so (:data:`BACKEND_FAILURE`) and the study stores the episode as failed, to be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swalab import reference as ref
from swalab._validate import FloatArray
from swalab.envs.context_budget_v0 import count_words
from swalab.envs.dynamics import Dynamics
from swalab.llm.base import BACKEND_ERROR, LanguageModel
from swalab.llm.constraints import Choice, Demand, NumberList, OutputFormat
from swalab.llm.judge import LLMJudge, rank_agreement
from swalab.llm.protocol import choose_prompt, default_template, score_table, stance
from swalab.llm.runner import (
    _CHOOSE_STREAM,
    _FALLBACK_STREAM,
    COST_FIELDS,
    _row_cost,
    _seed32,
    _unique_generate,
)
from swalab.swi.dilemma import DilemmaAgents, DilemmaResult, Lockstep, choose, score

#: Row key (not stored) holding the first backend failure behind an agent's decision.
BACKEND_FAILURE = "_backend_failure"
#: Team tasks text-mode agents write about (one per episode, by seed).
TOPICS = (
    "migrating the billing database to a new schema without downtime",
    "triaging a spike of failed payments reported by customers",
    "planning the test strategy for a mobile app release",
    "reviewing a pull request that changes the caching layer",
)


@dataclass(frozen=True)
class _TokenCount:
    tokenize: Callable[..., list[int]]

    def __call__(self, text: str) -> int:
        return len(self.tokenize(text, bos=False))


def token_counter(model: Any) -> tuple[Callable[[str], int], str]:
    """The model's own token count (unwrapping cache/accounting wrappers), and its name.

    Falls back to :func:`~swalab.envs.context_budget_v0.count_words` (and says so) for a
    backend that exposes no tokenizer.
    """
    inner = model
    for _ in range(5):
        tokenize = getattr(inner, "tokenize", None)
        if callable(tokenize):
            return _TokenCount(tokenize), "model"
        inner = getattr(inner, "model", None) or getattr(inner, "inner", None)
        if inner is None:
            break
    return count_words, "words"


@dataclass
class DilemmaLLMRun:
    """A batch of LLM-backed dilemma episodes.

    Attributes:
        result: Actions, rewards, welfare, load and extras per episode and step.
        rows: One list per episode of decision rows (one per step and agent).
        accounting: Prompts, tokens in/out, cached answers, judge calls.
        judge_agreement: Spearman's ρ between judge grades and the closed-form group
            score over every judged candidate (None without a judge).
        judge_pick_agreement: Share of decisions whose best judge grade is also the best
            closed-form group score (None without a judge).
        tokenizer: ``model`` or ``words`` (text mode).
    """

    result: DilemmaResult
    rows: list[list[dict[str, Any]]]
    accounting: dict[str, float] = field(default_factory=dict)
    judge_agreement: float | None = None
    judge_pick_agreement: float | None = None
    tokenizer: str | None = None


def _proposal_prompt(
    dyn: Dynamics, state: dict[str, Any], agent: int, lam: float, belief: float, k: int
) -> str:
    return (
        f"{dyn.describe(state, agent)}\n"
        f"You are agent {agent + 1} of {dyn.n_agents}. Your social weight is {lam:.2f} "
        f"(0: only your own payoff counts, 1: only the group's). The others used about "
        f"{belief:.1f} {dyn.unit} each recently.\n"
        f"Propose {k} amounts of {dyn.unit} for you this step, each from 0 to "
        f"{dyn.x_max:g}, as a JSON list.\nAnswer:"
    )


def _prompted_prompt(
    dyn: Dynamics, state: dict[str, Any], agent: int, lam: float, belief: float
) -> str:
    return (
        f"{dyn.describe(state, agent)}\n"
        f"You are agent {agent + 1} of {dyn.n_agents}. Your goal: {stance(lam)} "
        f"The others used about {belief:.1f} {dyn.unit} each recently.\n"
        f"How many {dyn.unit} do you use this step? Answer with one number from 0 to "
        f"{dyn.x_max:g}.\nAnswer:"
    )


def _message_prompt(dyn: Dynamics, state: dict[str, Any], agent: int, topic: str) -> str:
    return (
        f"{dyn.describe(state, agent)}\n"
        f"The team is working on {topic}. You are agent {agent + 1}. Write your next "
        f"message for the shared context.\nMessage:"
    )


def _token_caps(dyn: Dynamics, k: int, owners: int) -> list[int]:
    """Text mode: message j of each agent may run to ``(j + 1)/k`` of ``x_max − 2`` tokens.

    Spreading the caps makes the candidate messages differ in length, so the scorer has
    a real choice (left alone, a base model writes until the cap every time).
    """
    top = max(1, int(dyn.x_max) - 2)
    return [max(1, round(top * (j + 1) / k)) for _ in range(owners) for j in range(k)]


def _generate(
    model: LanguageModel,
    prompts: list[str],
    formats: list[OutputFormat | None],
    seeds: list[int],
    temperature: float,
    max_tokens: int | list[int],
) -> tuple[list[Any], list[bool], float]:
    """One batched call per distinct token cap (one call in numeric mode), and its wall time."""
    if not prompts:
        return [], [], 0.0
    caps = [max_tokens] * len(prompts) if isinstance(max_tokens, int) else max_tokens
    done: list[Any] = [None] * len(prompts)
    shared: list[bool] = [False] * len(prompts)
    wall = 0.0
    for cap in sorted(set(caps)):
        idx = [j for j, c in enumerate(caps) if c == cap]
        out, sh, seconds = _unique_generate(
            model,
            [prompts[j] for j in idx],
            [formats[j] for j in idx],
            [seeds[j] for j in idx],
            temperature=temperature,
            max_tokens=cap,
        )
        wall += seconds
        for j, comp, flag in zip(idx, out, sh, strict=True):
            done[j], shared[j] = comp, flag
    return done, shared, wall


def _account(
    acc: dict[str, float],
    owners: list[tuple[int, int]],
    done: list[Any],
    shared: list[bool],
    wall: float,
) -> dict[tuple[int, int], dict[str, float]]:
    """Charge a call to the run and to each asking agent (its prompts in order, ``per`` each).

    Tokens count once per distinct completion; latency is shared evenly over the prompts.
    """
    acc["prompts"] += len(done)
    acc["latency_s"] += wall
    per = len(done) // max(len(owners), 1)
    share = wall / max(len(done), 1)
    cost = {}
    for o, owner in enumerate(owners):
        mine: dict[str, float] = dict.fromkeys(COST_FIELDS, 0)
        mine_done, mine_shared = done[o * per : (o + 1) * per], shared[o * per : (o + 1) * per]
        for comp, sh in zip(mine_done, mine_shared, strict=True):
            acc["cached"] += comp.cached
            for key, value in _row_cost(comp, share, sh).items():
                mine[key] += value
        for key in ("tokens_in", "tokens_shared", "tokens_out"):
            acc[key] += mine[key]
        cost[owner] = mine
    return cost


@dataclass(frozen=True)
class _Scored:
    """One step's score tables: each asking agent's candidates and their scores.

    ``private``, ``group`` and ``utility`` are ``(E, N, M)``, padded past each agent's
    ``len(cand[(e, i)])`` candidates.
    """

    owners: list[tuple[int, int]]
    cand: dict[tuple[int, int], list[float]]
    private: FloatArray
    group: FloatArray
    utility: FloatArray


def _pick(
    model: LanguageModel,
    run: Lockstep,
    t: int,
    scored: _Scored,
    chosen: FloatArray,
    notes: dict[tuple[int, int], dict[str, Any]],
    cost: dict[tuple[int, int], dict[str, float]],
    acc: dict[str, float],
    *,
    template: str,
    max_tokens: int,
    constrained: bool,
) -> None:
    """Ask each agent's model for the highest-U row of its table; play the row when usable.

    An unusable pick keeps the argmax and is recorded (the reference's behaviour); a
    backend failure is played the same way and marks the row (:data:`BACKEND_FAILURE`), so
    the episode is stored as failed.
    """
    owners, cand, utility = scored.owners, scored.cand, scored.utility
    prompts: list[str] = []
    formats: list[OutputFormat | None] = []
    seeds32: list[int] = []
    for e, i in owners:
        width = len(cand[(e, i)])
        table = score_table(
            np.asarray(cand[(e, i)]),
            scored.private[e, i, :width],
            scored.group[e, i, :width],
            utility[e, i, :width],
        )
        prompts.append(choose_prompt(template, table, agent=i, lam=run.lam[e, i], rows=width))
        formats.append(Choice(options=width) if constrained else None)
        seeds32.append(_seed32(run.seeds[e], t, _CHOOSE_STREAM + i))
    done, shared, wall = _unique_generate(
        model, prompts, formats, seeds32, temperature=0.0, max_tokens=max_tokens
    )
    extra = _account(acc, owners, done, shared, wall)
    for (e, i), comp in zip(owners, done, strict=True):
        for key, value in extra[(e, i)].items():
            cost[(e, i)][key] += value
        width = len(cand[(e, i)])
        note = notes[(e, i)]
        note |= {"llm_pick": None, "pick_error": None, "pick_agrees": None}
        if comp.error_kind == BACKEND_ERROR:
            note.setdefault(BACKEND_FAILURE, comp.error)
        try:
            if comp.error is not None:
                raise ValueError(comp.error)
            row = int(
                comp.value if comp.value is not None else Choice(options=width).parse(comp.text)
            )
        except ValueError as exc:
            note["pick_error"] = str(exc)
            continue
        u = utility[e, i, :width]
        note |= {"llm_pick": row, "pick_agrees": bool(u[row - 1] == u.max())}
        chosen[e, i] = cand[(e, i)][row - 1]


def _pad(rows: list[list[float]]) -> FloatArray:
    """Ragged sorted candidate lists → one array, short rows padded with their largest."""
    width = max(len(r) for r in rows)
    return np.array([r + [r[-1]] * (width - len(r)) for r in rows], dtype=np.float64)


def run_llm_dilemma(
    dyn: Dynamics,
    model: LanguageModel,
    lam: FloatArray | Sequence[float],
    seeds: Sequence[int],
    agents: DilemmaAgents | None = None,
    *,
    k: int = 4,
    temperature: float = 0.7,
    max_tokens: int = 40,
    constrained: bool = True,
    text: bool = False,
    judge: LLMJudge | None = None,
    mode: str = "swi",
    selector: str = "code",
    choose_template: str | None = None,
    choose_max_tokens: int = ref.CHOOSE_MAX_TOKENS,
    on_step: Callable[[int], None] | None = None,
) -> DilemmaLLMRun:
    """Play one episode per row of ``lam`` with LLM proposals (or messages), in lockstep.

    Args:
        dyn: The dilemma (text mode needs ``context_budget_v0``).
        model: Proposes amounts (numeric) or writes messages (text); also the judge's
            model unless ``judge`` brings its own.
        lam: Social weights, ``(E,)`` or ``(E, N)``.
        seeds: Episode seeds (seed every sampled completion).
        agents: Anchors, belief and population (outsiders cost no call).
        k: Proposals or messages per SWI agent and step.
        temperature: Sampling temperature of proposals and messages.
        max_tokens: Most tokens per proposal list (messages: see :func:`_token_caps`).
        constrained: Enforce the proposal format (it is parsed either way).
        text: Text mode (messages instead of numbers).
        judge: Grade text-mode messages with this judge as the group score.
        mode: ``"swi"`` (proposals scored in code) or ``"prompted"`` (the model answers
            the amount; numeric mode).
        selector: ``"code"`` (the argmax) or ``"llm"`` (the model picks a row of the
            score table, greedily; an unusable pick keeps the argmax; numeric mode).
        choose_template: The pick prompt (default: the shipped text version).
        choose_max_tokens: Most tokens of a pick.
        on_step: Called with the step index after each step.

    Raises:
        ValueError: Text mode or a judge on a dilemma without messages; a prompted or
            picking agent in text mode; an unknown mode or selector.
    """
    if (text or judge is not None) and dyn.name != "context_budget_v0":
        raise ValueError(
            f"text mode and the judge need messages: {dyn.name} has none (use context_budget_v0)"
        )
    if mode not in ("swi", "prompted") or selector not in ("code", "llm"):
        raise ValueError(
            f"mode={mode!r}, selector={selector!r}: choose mode swi or prompted, selector "
            "code or llm"
        )
    prompted, picks_by_model = mode == "prompted", selector == "llm"
    if (prompted or picks_by_model) and (text or judge is not None):
        raise ValueError("mode='prompted' and selector='llm' answer numbers: not in text mode")
    if prompted and picks_by_model:
        raise ValueError("selector='llm' picks a row of the score table: prompted agents have none")
    choose_text = choose_template if choose_template is not None else default_template("choose")
    run = Lockstep(dyn, np.asarray(lam, dtype=np.float64), seeds, agents)
    n, e_count = dyn.n_agents, len(run.seeds)
    count, tokenizer = token_counter(model) if text else (count_words, None)
    res = DilemmaResult.empty(e_count, dyn.steps, n, run.grid, record=False)
    rows: list[list[dict[str, Any]]] = [[] for _ in range(e_count)]
    acc = dict.fromkeys(
        (
            *("prompts", "tokens_in", "tokens_shared", "tokens_out", "latency_s"),
            "cached",
            "judge_calls",
        ),
        0.0,
    )
    resolution = 1.0 if dyn.integer_actions else run.agents.grid_step
    check: NumberList | Demand = (
        Demand(x_max=float(dyn.x_max), resolution=resolution)
        if prompted
        else NumberList(k=k, x_max=float(dyn.x_max), resolution=resolution)
    )
    judged: list[tuple[float, float]] = []
    picks: list[bool] = []
    swi = [i for i, kind in enumerate(run.kinds) if kind == "swi"]
    for t in range(dyn.steps):
        belief = run.belief
        states = [{key: val[e] for key, val in run.state.items()} for e in range(e_count)]
        owners = [(e, i) for e in range(e_count) for i in swi]
        prompts: list[str] = []
        formats: list[OutputFormat | None] = []
        seeds32: list[int] = []
        for e, i in owners:
            for j in range(k if text else 1):
                lam_i, belief_i = float(run.lam[e, i]), float(belief[e, i])
                if text:
                    topic = TOPICS[run.seeds[e] % len(TOPICS)]
                    prompts.append(_message_prompt(dyn, states[e], i, topic))
                    formats.append(None)
                elif prompted:
                    prompts.append(_prompted_prompt(dyn, states[e], i, lam_i, belief_i))
                    formats.append(check if constrained else None)
                else:
                    prompts.append(_proposal_prompt(dyn, states[e], i, lam_i, belief_i, k))
                    formats.append(check if constrained else None)
                seeds32.append(_seed32(run.seeds[e], t, i * 64 + j))
        done, shared, wall = _generate(
            model,
            prompts,
            formats,
            seeds32,
            temperature,
            _token_caps(dyn, k, len(owners)) if text else max_tokens,
        )
        cost = _account(acc, owners, done, shared, wall)
        # Candidate sets per (episode, agent): sorted values, with texts in text mode.
        cand: dict[tuple[int, int], list[float]] = {}
        texts: dict[tuple[int, int], dict[float, str]] = {}
        notes: dict[tuple[int, int], dict[str, Any]] = {}
        per = k if text else 1
        for o, (e, i) in enumerate(owners):
            answers = done[o * per : (o + 1) * per]
            note: dict[str, Any] = {"proposal_error": None, "fallback": "none", "proposals": None}
            if text:
                options: dict[float, str] = {0.0: ""}
                dropped = []
                for comp in answers:
                    if comp.error_kind == BACKEND_ERROR:
                        dropped.append(f"backend: {comp.error}")
                        note.setdefault(BACKEND_FAILURE, comp.error)
                        continue
                    length = float(count(comp.text))
                    if length > dyn.x_max:
                        dropped.append(f"{length:g} tokens > x_max")
                        continue
                    options.setdefault(length, comp.text)
                if dropped:
                    note["proposal_error"] = "; ".join(dropped)
                texts[(e, i)] = options
                values = sorted(options)
                note["proposals"] = values
            else:
                comp = answers[0]
                answer: Any = None
                error = comp.error
                if comp.error_kind == BACKEND_ERROR:
                    note[BACKEND_FAILURE] = comp.error
                if error is None:
                    try:
                        answer = comp.value if comp.value is not None else check.parse(comp.text)
                    except ValueError as exc:
                        error = str(exc)
                note["proposal_error"] = error
                proposals: list[float] | None = (
                    None if answer is None else [float(x) for x in np.ravel(answer)]
                )
                if prompted:  # one amount answered: the only candidate (no scorer)
                    if proposals is None:
                        draw = np.random.default_rng(
                            _seed32(run.seeds[e], t, _FALLBACK_STREAM + i)
                        ).choice(run.grid)
                        note["fallback"] = "grid"
                        pool = [float(draw)]
                    else:
                        pool = proposals
                elif proposals is None:
                    note["fallback"] = "grid"
                    pool = list(run.grid)
                else:
                    pool = [*proposals, *run.agents.anchors]
                note["proposals"] = proposals
                arr = np.clip(np.asarray(pool, dtype=np.float64), 0.0, dyn.x_max)
                values = sorted(set((np.round(arr) if dyn.integer_actions else arr).tolist()))
            cand[(e, i)] = values
            notes[(e, i)] = note
        # Score every candidate set in one welfare-model call (outsiders get the grid).
        grid_rows = [[float(x) for x in run.grid]]
        ragged = [cand.get((e, i), grid_rows[0]) for e in range(e_count) for i in range(n)]
        padded = _pad(ragged).reshape(e_count, n, -1)
        private, group = score(dyn, run.state, belief, padded)
        used_private, used_group = private, group
        judge_scores = np.full(padded.shape, np.nan)
        if judge is not None and owners:
            situations, actions, where = [], [], []
            for e, i in owners:
                for m, length in enumerate(cand[(e, i)]):
                    situations.append(
                        f"{dyn.describe(states[e], i)}\nThe others are expected "
                        f"to post about {belief[e, i]:.0f} tokens each."
                    )
                    message = texts[(e, i)][length]
                    actions.append(
                        f"Agent {i + 1} posts a {length:g}-token message:\n"
                        f"{message if message else '(nothing)'}"
                    )
                    where.append((e, i, m))
            graded = judge.score(situations, actions)
            acc["judge_calls"] += len(actions)
            acc["tokens_in"] += graded.tokens_in
            acc["tokens_out"] += graded.tokens_out
            for (e, i, m), s in zip(where, graded.scores, strict=True):
                judge_scores[e, i, m] = s
            for e, i in owners:
                width = len(cand[(e, i)])
                js, cf = judge_scores[e, i, :width], group[e, i, :width]
                judged += list(zip(js.tolist(), cf.tolist(), strict=True))
                if not np.isnan(js).all():
                    picks.append(bool(np.nanargmax(js) == np.argmax(cf)))
                if np.isnan(js).any():
                    notes[(e, i)]["fallback"] = "closed_form_group"
            # The judge grades on [0, 1]; private goes on the same scale (length / x_max).
            used_private = padded / dyn.x_max
            fallback_group = np.clip(group / max(group.max(), 1e-12), 0.0, 1.0)
            used_group = np.where(np.isnan(judge_scores), fallback_group, judge_scores)
        utility = run.utility(used_private, used_group)
        argmax = choose(padded, utility)
        chosen = argmax.copy()
        if picks_by_model and owners:
            scored = _Scored(owners, cand, used_private, used_group, utility)
            _pick(
                model,
                run,
                t,
                scored,
                chosen,
                notes,
                cost,
                acc,
                template=choose_text,
                max_tokens=choose_max_tokens,
                constrained=constrained,
            )
        actions_now = run.outsiders(chosen, t)
        out = run.advance(actions_now)
        res.put(t, actions_now, out, belief)
        for e in range(e_count):
            for i in range(n):
                row: dict[str, Any] = {
                    "step": t,
                    "agent": i,
                    "kind": run.kinds[i],
                    "lam": float(run.lam[e, i]),
                    "belief": float(belief[e, i]),
                    "demand": float(actions_now[e, i]),
                    "reward": float(out.rewards[e, i]),
                    "load": float(out.load[e]),
                    "welfare": float(out.welfare[e]),
                    "overloaded": bool(out.overloaded[e]),
                }
                if (e, i) in cand:
                    width = len(cand[(e, i)])
                    row |= notes[(e, i)] | cost[(e, i)]
                    if not prompted:
                        row |= {
                            "candidates": cand[(e, i)],
                            "private": used_private[e, i, :width].tolist(),
                            "group": used_group[e, i, :width].tolist(),
                            "utility": utility[e, i, :width].tolist(),
                            "argmax_demand": float(argmax[e, i]),
                        }
                    if text:
                        row["text"] = texts[(e, i)][float(actions_now[e, i])]
                    if judge is not None:
                        row["judge"] = judge_scores[e, i, :width].tolist()
                rows[e].append(row)
        if on_step is not None:
            on_step(t)
    agreement = None
    if judge is not None:
        agreement = rank_agreement([j for j, _ in judged], [c for _, c in judged])
    return DilemmaLLMRun(
        result=res,
        rows=rows,
        accounting=acc,
        judge_agreement=agreement,
        judge_pick_agreement=(sum(picks) / len(picks)) if picks else None,
        tokenizer=tokenizer,
    )

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

Unusable answers are recorded with the fallback taken (grid for proposals, the
closed-form score for judge grades); nothing is turned into a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swalab._validate import FloatArray
from swalab.envs.context_budget_v0 import count_words
from swalab.envs.dynamics import Dynamics
from swalab.llm.base import BACKEND_ERROR, LanguageModel
from swalab.llm.constraints import NumberList, OutputFormat
from swalab.llm.judge import LLMJudge, rank_agreement
from swalab.llm.runner import _seed32, _unique_generate
from swalab.swi.dilemma import DilemmaAgents, DilemmaResult, Lockstep, choose, score

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
) -> tuple[list[Any], list[bool]]:
    """One batched call per distinct token cap (one call in numeric mode)."""
    if not prompts:
        return [], []
    caps = [max_tokens] * len(prompts) if isinstance(max_tokens, int) else max_tokens
    done: list[Any] = [None] * len(prompts)
    shared: list[bool] = [False] * len(prompts)
    for cap in sorted(set(caps)):
        idx = [j for j, c in enumerate(caps) if c == cap]
        out, sh, _ = _unique_generate(
            model,
            [prompts[j] for j in idx],
            [formats[j] for j in idx],
            [seeds[j] for j in idx],
            temperature=temperature,
            max_tokens=cap,
        )
        for j, comp, flag in zip(idx, out, sh, strict=True):
            done[j], shared[j] = comp, flag
    return done, shared


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
        on_step: Called with the step index after each step.

    Raises:
        ValueError: Text mode or a judge on a dilemma without messages.
    """
    if (text or judge is not None) and dyn.name != "context_budget_v0":
        raise ValueError(
            f"text mode and the judge need messages: {dyn.name} has none (use context_budget_v0)"
        )
    run = Lockstep(dyn, np.asarray(lam, dtype=np.float64), seeds, agents)
    n, e_count = dyn.n_agents, len(run.seeds)
    count, tokenizer = token_counter(model) if text else (count_words, None)
    res = DilemmaResult.empty(e_count, dyn.steps, n, run.grid, record=False)
    rows: list[list[dict[str, Any]]] = [[] for _ in range(e_count)]
    acc = dict.fromkeys(("prompts", "tokens_in", "tokens_out", "cached", "judge_calls"), 0.0)
    resolution = 1.0 if dyn.integer_actions else run.agents.grid_step
    check = NumberList(k=k, x_max=float(dyn.x_max), resolution=resolution)
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
                if text:
                    topic = TOPICS[run.seeds[e] % len(TOPICS)]
                    prompts.append(_message_prompt(dyn, states[e], i, topic))
                    formats.append(None)
                else:
                    prompts.append(
                        _proposal_prompt(
                            dyn, states[e], i, float(run.lam[e, i]), float(belief[e, i]), k
                        )
                    )
                    formats.append(check if constrained else None)
                seeds32.append(_seed32(run.seeds[e], t, i * 64 + j))
        done, shared = _generate(
            model,
            prompts,
            formats,
            seeds32,
            temperature,
            _token_caps(dyn, k, len(owners)) if text else max_tokens,
        )
        acc["prompts"] += len(prompts)
        for comp, sh in zip(done, shared, strict=True):
            acc["cached"] += comp.cached
            if not sh:
                acc["tokens_in"] += comp.tokens_in
                acc["tokens_out"] += comp.tokens_out
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
                proposals: list[float] | None = None
                error = comp.error
                if error is None:
                    try:
                        proposals = comp.value if comp.value is not None else check.parse(comp.text)
                    except ValueError as exc:
                        error = str(exc)
                note["proposal_error"] = error
                note["proposals"] = proposals
                if proposals is None:
                    note["fallback"] = "grid"
                    pool = list(run.grid)
                else:
                    pool = [*proposals, *run.agents.anchors]
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
        actions_now = run.outsiders(choose(padded, utility), t)
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
                    row |= notes[(e, i)] | {
                        "candidates": cand[(e, i)],
                        "private": used_private[e, i, :width].tolist(),
                        "group": used_group[e, i, :width].tolist(),
                        "utility": utility[e, i, :width].tolist(),
                        "argmax_demand": float(actions_now[e, i]),
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

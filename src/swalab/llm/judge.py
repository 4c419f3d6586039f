"""An LLM judge as the SWI group scorer, for actions with no closed-form welfare (§4.1).

The judge sees the shared situation and one candidate action and answers, constrained to
``{"score": s}`` with ``s ∈ [0, 1]``, how good the action is for the group, prompted with a
perspective-taking rubric. Every candidate of every agent of a step goes out in one
batched ``generate`` call (greedy, so a cached answer reproduces it). A judge answer that
cannot be used is recorded with its error and scored NaN — never replaced by a guess;
the caller decides (the LLM runners fall back to the closed-form score and say so).

:func:`rank_agreement` measures how well judge scores order candidates like a closed-form
welfare model (Spearman's ρ), the check the paper asks for where such a model exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swalab._validate import FloatArray
from swalab.llm.base import LanguageModel
from swalab.llm.constraints import UnitScore

#: The perspective-taking rubric every judge prompt carries.
RUBRIC = (
    "You are a fair judge of a team of agents that share a limited resource.\n"
    "Take the perspective of every other agent: how does this action affect each other "
    "agent's ability to succeed, and what shared resources does it consume?\n"
    "Score the action for the whole group from 0 (it harms the others or wastes the shared "
    "resource) to 1 (it leaves every agent able to succeed)."
)


#: The rubric of a stance's grade: how much weight a goal gives the group (a λ read from text).
WEIGHT_RUBRIC = (
    "Agents in a game share a limited resource. Each follows a goal that may count only its "
    "own points, only the group's score, or both.\n"
    "Read the goal and say how much weight it gives the group's score: 0 means only the "
    "agent's own points count, 1 means only the group's score counts, 0.5 means both count "
    "equally."
)


def weight_prompt(goal: str) -> str:
    """The judge's prompt that reads the social weight a stance text states."""
    return (
        f"{WEIGHT_RUBRIC}\n\nGoal: {goal}\n\n"
        f'Answer with JSON {{"score": w}}, w between 0 and 1.\nAnswer:'
    )


def judge_prompt(situation: str, action: str) -> str:
    """The judge's prompt for one candidate action."""
    return (
        f"{RUBRIC}\n\nSituation:\n{situation}\n\nProposed action:\n{action}\n\n"
        f'Answer with JSON {{"score": s}}, s between 0 and 1.\nAnswer:'
    )


@dataclass(frozen=True, kw_only=True)
class JudgeScores:
    """One batch of judge answers.

    Attributes:
        scores: Score per candidate, NaN where the answer was unusable.
        errors: Why each unusable answer was refused (None when used).
        tokens_in: Prompt tokens of the call.
        tokens_out: Generated tokens of the call.
        cached: Answers served from the response cache.
    """

    scores: FloatArray
    errors: list[str | None]
    tokens_in: int
    tokens_out: int
    cached: int


@dataclass(frozen=True, kw_only=True)
class LLMJudge:
    """Scores candidate actions for the group with a judge model.

    Attributes:
        model: Any :class:`~swalab.llm.base.LanguageModel`.
        resolution: Spacing of allowed scores.
        max_tokens: Most tokens per answer.
        constrained: Enforce the score format (grammar / schema); it is parsed either way.
    """

    model: LanguageModel
    resolution: float = 0.05
    max_tokens: int = 16
    constrained: bool = True

    def score(self, situations: Sequence[str], actions: Sequence[str]) -> JudgeScores:
        """Grade each (situation, action) pair in one batched, greedy call."""
        if len(situations) != len(actions):
            raise ValueError(
                f"situations has {len(situations)} entries and actions "
                f"{len(actions)}: give one situation per action"
            )
        return self._grade([judge_prompt(s, a) for s, a in zip(situations, actions, strict=True)])

    def weigh(self, goals: Sequence[str]) -> JudgeScores:
        """Read the social weight each stance text states (0: own points only, 1: group only).

        How a drifting stance is graded (:mod:`swalab.llm.stance`): a λ from words, set
        beside the λ revealed by the same agents' demands.
        """
        return self._grade([weight_prompt(g) for g in goals])

    def _grade(self, prompts: list[str]) -> JudgeScores:
        """One batched, greedy call; each answer's score or why it was refused."""
        if not prompts:
            return JudgeScores(scores=np.zeros(0), errors=[], tokens_in=0, tokens_out=0, cached=0)
        fmt = UnitScore(resolution=self.resolution)
        done = self.model.generate(
            prompts,
            constraint=fmt if self.constrained else None,
            temperature=0.0,
            seed=0,
            max_tokens=self.max_tokens,
        )
        scores = np.full(len(done), np.nan)
        errors: list[str | None] = []
        for j, comp in enumerate(done):
            error = comp.error
            if error is None:
                try:
                    scores[j] = comp.value if comp.value is not None else fmt.parse(comp.text)
                except ValueError as exc:
                    error = str(exc)
            errors.append(error)
        return JudgeScores(
            scores=scores,
            errors=errors,
            tokens_in=sum(c.tokens_in for c in done),
            tokens_out=sum(c.tokens_out for c in done),
            cached=sum(bool(c.cached) for c in done),
        )


def _ranks(x: FloatArray) -> FloatArray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):  # ties share their average rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def rank_agreement(judge: Sequence[float], reference: Sequence[float]) -> float:
    """Spearman's ρ between judge scores and a closed-form score (NaN pairs dropped).

    NaN when fewer than 3 usable pairs remain or either side is constant.
    """
    a, b = np.asarray(judge, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])

"""The reference code's way of asking the model, kept as the baseline swalab is measured by.

Per agent and step, sequentially: a zero-shot, unconstrained proposal call (temperature
0.7, up to 120 tokens) whose answer is searched for a JSON list, with seeded random grid
draws when it yields fewer than ``k`` usable numbers; then an unconstrained greedy
"choose the highest-U row" call (up to 80 tokens) parsed as JSON, falling back to the
argmax. This is what ``swalab bench llm`` compares swalab's batched, constrained protocol
against; it is not meant for experiments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swalab.llm.base import LanguageModel, Stopwatch
from swalab.llm.protocol import Board, score_table
from swalab.swi._rng import stream_key
from swalab.swi.candidates import RandomGridCandidates, candidate_set
from swalab.swi.config import SimulationConfig
from swalab.swi.scorers import LoadContext

PROPOSE = (
    "You are agent {agent} of {n} sharing a server with capacity {capacity} per round. "
    "Each agent requests between 0 and {x_max} units. If the total exceeds capacity, every "
    "agent pays {penalty} per unit of excess. {history} Your estimate of another agent's "
    "request: {belief}.\nPropose {k} candidate requests as a JSON list of numbers.\nAnswer:"
)
CHOOSE = (
    "Candidate requests with their scores:\n{table}\nWhich row has the highest U? Reply "
    'with JSON like {{"row": 1}}.\nAnswer:'
)


def parse_list(text: str, x_max: float) -> list[float]:
    """Numbers in ``[0, x_max]`` from the first JSON list of ``text`` (reference parsing)."""
    match = re.search(r"\[[^\[\]]*\]", text)
    if match is None:
        return []
    try:
        items = json.loads(match.group())
    except json.JSONDecodeError:
        return []
    return [float(x) for x in items if isinstance(x, int | float) and 0 <= x <= x_max]


def parse_row(text: str, rows: int) -> int | None:
    """The row of ``{"row": n}`` in ``text`` if it exists."""
    match = re.search(r"\{[^{}]*\}", text)
    try:
        row = json.loads(match.group()).get("row") if match else None
    except (json.JSONDecodeError, AttributeError):
        return None
    return row if isinstance(row, int) and 1 <= row <= rows else None


@dataclass(frozen=True, kw_only=True)
class ReferenceResult:
    """What the reference protocol did and cost.

    Attributes:
        decisions: Agent decisions made.
        wall_s: Wall time.
        proposal_failures: Proposal answers without ``k`` usable numbers (random draws used).
        choose_failures: Choose answers without a valid row (argmax used).
        tokens_out: Generated tokens.
        loads: Load per step.
    """

    decisions: int
    wall_s: float
    proposal_failures: int
    choose_failures: int
    tokens_out: int
    loads: list[float]


def run_reference(
    config: SimulationConfig,
    model: LanguageModel,
    lam: float,
    seed: int,
    k: int = 7,
    asked: Sequence[int] | None = None,
) -> ReferenceResult:
    """Play one episode the reference way: two unconstrained calls per agent, one by one.

    ``asked``: only these agents ask the model (a sample, for populations too large to ask
    one by one); the others take the SWI rule's choice among the same random draws, and
    ``decisions`` and ``wall_s`` count the asked agents' alone.
    """
    n, cap = config.n_agents, float(np.max(config.env().game.x_max))
    policy, belief_model = config.scoring_policy(), config.belief()
    draws = RandomGridCandidates(x_max=cap, k=k, step=config.grid_step)
    belief = belief_model.init(n, config.capacity)
    last = None
    fails = [0, 0]
    tokens = 0
    loads: list[float] = []
    who = set(range(n) if asked is None else asked)
    spent = 0.0
    for t in range(config.steps):
        board = Board(
            step=t,
            steps=config.steps,
            n_agents=n,
            capacity=config.capacity,
            beta=config.beta,
            last_demands=last,
        )
        demands = np.empty(n)
        drawn = draws.propose(seed=seed, step=t, n_agents=n)  # the fallback and the unasked
        for i in range(n):
            if i not in who:  # not sampled: the rule on the random draws, no model call
                cands = candidate_set(drawn[i], config.anchors, cap).values
                ctx = LoadContext(others_load=(n - 1) * belief[i], x_max=cap)
                demands[i] = policy.decide(cands, ctx, lam=lam).action
                continue
            watch = Stopwatch()
            s = stream_key(seed, t, i) % 2**31
            prompt = PROPOSE.format(
                agent=i + 1,
                n=n,
                capacity=config.capacity,
                x_max=cap,
                k=k,
                penalty=config.beta / n,
                history=board.history(),
                belief=round(belief[i], 2),
            )
            ans = model.generate([prompt], temperature=0.7, seed=s, max_tokens=120)[0]
            tokens += ans.tokens_out
            props = parse_list(ans.text, cap)
            if len(props) < k:
                fails[0] += 1
                props = list(drawn[i])
            cands = candidate_set(props, config.anchors, cap).values
            ctx = LoadContext(others_load=(n - 1) * belief[i], x_max=cap)
            dec = policy.decide(cands, ctx, lam=lam)
            table = score_table(dec.candidates, dec.private, dec.group, dec.utility)
            pick = model.generate(
                [CHOOSE.format(table=table)], temperature=0.0, seed=s, max_tokens=80
            )[0]
            tokens += pick.tokens_out
            row = parse_row(pick.text, len(cands))
            if row is None:
                fails[1] += 1
            demands[i] = dec.action if row is None else cands[row - 1]
            spent += watch.elapsed()
        load = float(demands.sum())
        loads.append(load)
        last = demands
        belief = belief_model.update(belief, load)
    return ReferenceResult(
        decisions=len(who) * config.steps,
        wall_s=spent,
        proposal_failures=fails[0],
        choose_failures=fails[1],
        tokens_out=tokens,
        loads=loads,
    )

"""The paper's LLM protocol (§4.1): proposals from the model, scoring and choice in code.

Each step, every agent's model is asked, in one batched call for the whole batch, for
``k`` candidate requests given the public board. The proposals are constrained to
numbers in ``[0, x_max]`` (grammar / JSON schema), united with every anchor, scored by the
SWI scorer and chosen by argmax in code. With ``selector="llm"`` a second batched call
shows each agent its score table and asks for the highest-U row, as the reference code
does; the model's pick is used when it parses (else argmax), and whether it equals the
true argmax is recorded.

The ``prompted`` mode is the baseline SWA has to beat (as in GovSim and GAMA-Bench): one
call per agent and step states the game, the board and λ in words (:func:`stance`), and the
model answers its demand directly, constrained to one number on the grid; no scorer.

Prompt templates are plain text with ``{field}`` slots (:data:`PROPOSAL_FIELDS`,
:data:`CHOOSE_FIELDS`, :data:`PROMPTED_FIELDS`), shipped in ``swalab/llm/templates`` and
replaceable by the user.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from swalab import _validate as v
from swalab import reference as ref
from swalab._validate import FloatArray
from swalab.envs.dynamics import LISTED_AGENTS
from swalab.llm.constraints import format_number

#: Slots a proposal template may use.
PROPOSAL_FIELDS = frozenset(
    {
        "n_agents",
        "capacity",
        "beta",
        "x_max",
        "k",
        "penalty_per_unit",
        "round",
        "steps",
        "history",
        "belief",
        "agent",
        "lam",
    }
)
#: Slots a choose template may use.
CHOOSE_FIELDS = frozenset({"table", "lam", "agent", "rows"})
#: Slots a prompted template may use: the board, and the social weight in words.
PROMPTED_FIELDS = PROPOSAL_FIELDS | {"stance"}

SELECTORS = ("code", "llm")
FALLBACKS = ("anchors", "grid", "fail")
#: ``swi``: the model proposes, the SWI rule scores (paper §4.1); ``prompted``: the model is
#: told λ in words and answers its demand, with no scorer (the baseline SWA has to beat).
MODES = ("swi", "prompted")


def default_template(name: str, *, chat: bool = False) -> str:
    """Return a shipped template (``"proposal"``, ``"choose"`` or ``"prompted"``).

    ``chat``: the version for instruction-tuned models, which read one user turn and answer
    it. The base-model version is few-shot text to continue; in a user turn an instruct model
    copies its examples instead (SmolLM2-135M-Instruct answered the first example's list at
    every λ), so the chat version states the task and asks for the answer.
    """
    file = f"{name}_chat.txt" if chat else f"{name}.txt"
    text = resources.files("swalab.llm").joinpath("templates", file).read_text("utf-8")
    return text.rstrip()


def _check_template(name: str, template: str, allowed: frozenset[str]) -> str:
    used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    unknown = sorted(used - allowed)
    if unknown:
        raise ValueError(f"{name} uses unknown field(s) {unknown}: allowed are {sorted(allowed)}")
    return template


@dataclass(frozen=True, kw_only=True)
class ProtocolConfig:
    """How agents ask their model; defaults are the reference code's values (docs/theory.md §1).

    Attributes:
        k: Proposals per agent and step.
        resolution: Spacing of the numbers the proposal grammar allows.
        temperature: Proposal sampling temperature.
        max_tokens: Proposal token limit.
        mode: ``"swi"`` (proposals scored in code) or ``"prompted"`` (the model answers its
            demand, told λ in words; ``k``, ``selector`` and the scorer are not used).
        selector: ``"code"`` (argmax, paper §4.1) or ``"llm"`` (the model picks a row).
        choose_temperature: Temperature of the choose call (greedy).
        choose_max_tokens: Token limit of the choose call.
        fallback: What replaces proposals that fail to parse or are out of range:
            ``"anchors"`` (anchors only), ``"grid"`` (the whole demand grid) or ``"fail"``
            (the episode fails). A prompted answer that fails draws its demand from that
            pool (seeded). Always recorded.
        constrained: Enforce the output formats (grammar / schema). Off reproduces an
            unconstrained model; parse failures then take the fallback.
        proposal_template: Template of the proposal prompt.
        choose_template: Template of the choose prompt.
        prompted_template: Template of the prompted mode's one prompt.
        talk: Cheap talk (prompted mode): each step every agent is first asked what it
            will request; the announcements are read to all before the answers that are
            played (two calls a step; each row records its agent's announcement, and
            whether that was a fallback because the answer did not parse).
    """

    k: int = ref.K
    resolution: float = ref.GRID_STEP
    temperature: float = ref.TEMPERATURE
    max_tokens: int = ref.MAX_TOKENS
    mode: str = "swi"
    selector: str = "code"
    choose_temperature: float = 0.0
    choose_max_tokens: int = ref.CHOOSE_MAX_TOKENS
    fallback: str = "anchors"
    constrained: bool = True
    proposal_template: str = field(default_factory=lambda: default_template("proposal"))
    choose_template: str = field(default_factory=lambda: default_template("choose"))
    prompted_template: str = field(default_factory=lambda: default_template("prompted"))
    talk: bool = False

    def __post_init__(self) -> None:
        v.integer_at_least("k", self.k, 1)
        v.positive("resolution", self.resolution)
        v.non_negative("temperature", self.temperature)
        v.integer_at_least("max_tokens", self.max_tokens, 1)
        v.non_negative("choose_temperature", self.choose_temperature)
        v.integer_at_least("choose_max_tokens", self.choose_max_tokens, 1)
        for name, value, known in (
            ("mode", self.mode, MODES),
            ("selector", self.selector, SELECTORS),
            ("fallback", self.fallback, FALLBACKS),
        ):
            if value not in known:
                raise ValueError(f"{name}={value!r} is not known: choose one of {list(known)}")
        _check_template("proposal_template", self.proposal_template, PROPOSAL_FIELDS)
        _check_template("choose_template", self.choose_template, CHOOSE_FIELDS)
        _check_template("prompted_template", self.prompted_template, PROMPTED_FIELDS)
        if self.talk and self.mode != "prompted":
            raise ValueError("talk=True: agents announce in words only in mode='prompted'")
        if self.mode == "prompted" and self.selector != "code":
            raise ValueError(
                "selector='llm' picks a row of the SWI score table: mode='prompted' has none"
            )


@dataclass(frozen=True, kw_only=True)
class Board:
    """The public board every agent of one episode reads before a step.

    Attributes:
        step: 0-based step about to be played.
        steps: Horizon ``T`` (``None``: not known to the agents, shown as ``?``).
        n_agents: Agents ``N``.
        capacity: ``C``.
        beta: ``β``.
        last_demands: Demands of the previous step (``None`` before the first).
        announced: What each agent said it would request this step (cheap talk; NaN: an
            agent that did not say; ``None``: no talk).
    """

    step: int
    steps: int | None
    n_agents: int
    capacity: float
    beta: float
    last_demands: FloatArray | None
    announced: FloatArray | None = None

    def history(self) -> str:
        """The board's history line, e.g. ``Requests last round: 10, 8 (total 18, …).``."""
        if self.last_demands is None:
            line = "No requests yet (first round)."
        else:
            line = "Requests last round: " + self._listed(self.last_demands) + "."
        if self.announced is not None:
            line += " Announced for this round: " + self._listed(self.announced) + "."
        return line

    def _listed(self, demands: FloatArray) -> str:
        """``10, 8 (total 18, within capacity)``; an agent that said nothing is ``?``.

        Above :data:`LISTED_AGENTS` agents the board summarises instead of listing (a prompt
        must not grow with the population): ``1000 agents, mean 3.4, from 0 to 10``.
        """
        demands = np.asarray(demands, dtype=np.float64)  # a list is welcome too
        said = demands[~np.isnan(demands)]
        total = float(np.sum(said))
        status = "over capacity" if total > self.capacity else "within capacity"
        if demands.size > LISTED_AGENTS:
            mean = _num(float(said.mean())) if said.size else "?"
            low, high = (
                format_number(float(f(said))) if said.size else "?" for f in (np.min, np.max)
            )
            listed = f"{said.size} agents, mean {mean}, from {low} to {high}"
        else:
            listed = ", ".join("?" if np.isnan(x) else format_number(float(x)) for x in demands)
        return f"{listed} (total {format_number(total)}, {status})"


def _num(x: float) -> str:
    return format_number(round(float(x), 2))


def stance(lam: float) -> str:
    """The social weight λ in words: the SWA utility, then which side counts more.

    No pronoun, so the same words fit a chat turn ("Your goal: …") and third-person text.
    """
    own, group = _num(1 - lam), _num(lam)
    if lam == 0:
        tilt = "only own points count"
    elif lam == 1:
        tilt = "only the group's score counts"
    elif lam == 0.5:
        tilt = "own points and the group's score count equally"
    elif lam < 0.5:
        tilt = "own points count more than the group's score"
    else:
        tilt = "the group's score counts more than own points"
    return (
        f"make {own} × own points + {group} × the group's score as high as possible "
        f"(social weight {_num(lam)}: {tilt})."
    )


def prompted_prompt(
    template: str,
    board: Board,
    *,
    agent: int,
    belief: float,
    x_max: float,
    lam: float,
    text: str | None = None,
) -> str:
    """Fill the prompted template for one agent: the board and its stance.

    The stance is λ in words (:func:`stance`) unless ``text`` gives the agent's own (a
    stance that drifts, :mod:`swalab.llm.stance`).
    """
    return proposal_prompt(
        template,
        board,
        agent=agent,
        belief=belief,
        x_max=x_max,
        k=1,
        lam=lam,
        stance=stance(lam) if text is None else text,
    )


def proposal_prompt(
    template: str,
    board: Board,
    *,
    agent: int,
    belief: float,
    x_max: float,
    k: int,
    lam: float,
    **extra: str,
) -> str:
    """Fill the proposal template for one agent (agents are numbered from 1 in prompts)."""
    return template.format(
        **extra,
        n_agents=board.n_agents,
        capacity=_num(board.capacity),
        beta=_num(board.beta),
        x_max=_num(x_max),
        k=k,
        penalty_per_unit=_num(board.beta / board.n_agents),
        round=board.step + 1,
        steps="?" if board.steps is None else board.steps,
        history=board.history(),
        belief=_num(belief),
        agent=agent + 1,
        lam=_num(lam),
    )


def score_table(
    candidates: FloatArray, private: FloatArray, group: FloatArray, utility: FloatArray
) -> str:
    """The table the choose prompt shows: one numbered row per candidate."""
    lines = ["row | request | private | group | U"]
    for i, (a, p, g, u) in enumerate(zip(candidates, private, group, utility, strict=True)):
        lines.append(f"{i + 1} | {format_number(float(a))} | {p:.3f} | {g:.3f} | {u:.3f}")
    return "\n".join(lines)


def choose_prompt(template: str, table: str, *, agent: int, lam: float, rows: int) -> str:
    """Fill the choose template for one agent."""
    return template.format(table=table, lam=f"{lam:.2f}", agent=agent + 1, rows=rows)

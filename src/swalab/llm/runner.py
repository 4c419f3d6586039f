"""LLM-backed SWI episodes in lockstep: one batched model call per step for the whole batch.

All episodes of a batch (λ × seed) advance together. Each step builds one proposal prompt
per agent of every live episode and sends them in one ``generate`` call (identical
prompt/seed pairs, common when several λ still play alike, are generated once); scoring
and selection run in code. A backend failure (no answer) ends that episode alone with its
error recorded; a parse failure takes the configured fallback and is recorded; neither is
ever turned into a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.llm.base import BACKEND_ERROR, Completion, LanguageModel, Stopwatch
from swalab.llm.constraints import Choice, Demand, NumberList, OutputFormat
from swalab.llm.protocol import (
    Board,
    ProtocolConfig,
    choose_prompt,
    prompted_prompt,
    proposal_prompt,
    score_table,
)
from swalab.metrics import jain_fairness, mean_welfare, overload_rate, steps_to_stable
from swalab.swi._rng import stream_key
from swalab.swi.candidates import candidate_set, demand_grid
from swalab.swi.config import SimulationConfig
from swalab.swi.scorers import LoadContext

#: Offset that separates the choose call's seeds from the proposal call's.
_CHOOSE_STREAM = 1 << 20
#: Offset of the seeds that draw a prompted agent's fallback demand.
_FALLBACK_STREAM = 2 << 20
#: Offset of the seeds of a cheap-talk announcement (the call before the played one).
_TALK_STREAM = 4 << 20


class EpisodeFailedError(RuntimeError):
    """An episode cannot continue (backend failure, or ``fallback="fail"``)."""


@dataclass
class LLMEpisode:
    """One episode's decisions, outcome and cost.

    Attributes:
        lam: Social weight of each agent.
        seed: Episode seed (seeds every sampled completion, noise, outsiders, horizon).
        status: ``"ok"``, or ``"failed"`` with ``error`` saying why.
        error: Failure message.
        rows: One dict per step and agent (see :func:`run_llm_episodes`).
        loads: Load per played step.
        welfare: Realised welfare per played step.
        demands: ``(steps played, N)`` chosen demands.
        accounting: Prompts, prompt tokens paid and shared, tokens out, latency share,
            cached completions.
    """

    lam: list[float]
    seed: int
    status: str = "ok"
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    welfare: list[float] = field(default_factory=list)
    demands: list[FloatArray] = field(default_factory=list)
    accounting: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("prompts", "tokens_in", "tokens_shared", "tokens_out", "latency_s", "cached"), 0.0
        )
    )

    def summary(self, capacity: float) -> dict[str, Any]:
        """Episode metrics (docs/theory.md §8) with failure, fallback and pick rates and cost."""
        loads = np.asarray(self.loads)
        asked = [r for r in self.rows if r.get("fallback") is not None]  # SWI decisions
        n_rows = max(len(asked), 1)
        picks = [r["pick_agrees"] for r in asked if r["pick_agrees"] is not None]
        out: dict[str, Any] = {
            "lam": float(np.mean(self.lam)),
            "seed": self.seed,
            "status": self.status,
            "error": self.error,
            "steps_played": len(self.loads),
        }
        if len(loads):
            cap = np.asarray(capacity)
            out |= {
                "overload_rate": float(overload_rate(loads, cap)),
                "mean_welfare": float(mean_welfare(np.asarray(self.welfare))),
                "mean_load": float(loads.mean()),
                "fairness": float(jain_fairness(np.stack(self.demands)).mean()),
                "steps_to_stable": float(steps_to_stable(loads, cap)),
            }
        out |= {
            "proposal_failure_rate": sum(r["proposal_error"] is not None for r in asked) / n_rows,
            "fallback_rate": sum(r["fallback"] != "none" for r in asked) / n_rows,
            "pick_failure_rate": sum(r["pick_error"] is not None for r in asked) / n_rows,
            "pick_agreement": (sum(picks) / len(picks)) if picks else None,
        }
        out |= self.accounting
        return out


class Stances(Protocol):
    """Each prompted agent's stance text, rewritten between steps (:mod:`swalab.llm.stance`)."""

    def text(self, episode: int, agent: int) -> str:
        """The stance ``agent`` of ``episode`` plays the next step with."""
        ...

    def after_step(self, step: int, episodes: Sequence[LLMEpisode]) -> None:
        """Called once every live episode has played ``step`` (its rows are recorded)."""
        ...


def _unique_generate(
    model: LanguageModel,
    prompts: list[str],
    formats: list[OutputFormat | None],
    seeds: list[int],
    *,
    temperature: float,
    max_tokens: int,
) -> tuple[list[Completion], list[bool], float]:
    """One ``generate`` call over the distinct (prompt, format, seed) triples.

    Returns each prompt's completion, whether it shared its completion with an earlier
    prompt of the call, and the call's wall time.
    """
    index: dict[tuple[str, str, int], int] = {}
    uniq: list[int] = []
    where = []
    for i, (p, f, s) in enumerate(zip(prompts, formats, seeds, strict=True)):
        key = (p, "" if f is None else f.name, s if temperature > 0 else 0)
        if key not in index:
            index[key] = len(uniq)
            uniq.append(i)
        where.append(index[key])
    watch = Stopwatch()
    out = model.generate(
        [prompts[i] for i in uniq],
        constraint=[formats[i] for i in uniq],
        temperature=temperature,
        seed=[seeds[i] for i in uniq],
        max_tokens=max_tokens,
    )
    shared = [uniq[w] != i for i, w in enumerate(where)]
    return [out[w] for w in where], shared, watch.elapsed()


#: Who answers an agent: a loaded model and how it is asked (its templates, temperature).
Seat = tuple[LanguageModel, ProtocolConfig]


def _ask(
    seats: Sequence[Seat],
    seat_of: list[int],
    prompts: list[str],
    formats: list[OutputFormat | None],
    seeds: list[int],
    *,
    choose: bool = False,
) -> tuple[list[Completion], list[bool], list[float]]:
    """One call per seat over its prompts; each prompt's completion, sharing and latency share.

    ``choose`` asks with the seat's choose temperature and token limit.
    """
    done: list[Any] = [None] * len(prompts)
    shared = [False] * len(prompts)
    shares = [0.0] * len(prompts)
    for s, (model, proto) in enumerate(seats):
        idx = [j for j, x in enumerate(seat_of) if x == s]
        if not idx:
            continue
        out, sh, wall = _unique_generate(
            model,
            [prompts[j] for j in idx],
            [formats[j] for j in idx],
            [seeds[j] for j in idx],
            temperature=proto.choose_temperature if choose else proto.temperature,
            max_tokens=proto.choose_max_tokens if choose else proto.max_tokens,
        )
        for j, comp, flag in zip(idx, out, sh, strict=True):
            done[j], shared[j], shares[j] = comp, flag, wall / len(idx)
    return done, shared, shares


def _charge(ep: LLMEpisode, done: Completion, share: float, shared: bool) -> None:
    acc = ep.accounting
    acc["prompts"] += 1
    acc["latency_s"] += share
    for key, value in _row_cost(done, share, shared).items():
        if key != "latency_s":
            acc[key] += value
    acc["cached"] += done.cached


#: What one decision row records of its calls' cost.
COST_FIELDS = ("tokens_in", "tokens_shared", "tokens_out", "latency_s")


def _row_cost(done: Completion, share: float, shared: bool) -> dict[str, float]:
    """A decision row's share of the call: what it paid, what it reused, its latency.

    A prompt answered by an identical one's completion paid nothing: its whole prompt was
    shared, and its tokens are counted once, on the first.
    """
    return {
        "tokens_in": 0 if shared else done.tokens_in,
        "tokens_shared": done.tokens_shared + (done.tokens_in if shared else 0),
        "tokens_out": 0 if shared else done.tokens_out,
        "latency_s": share,
    }


def _seed32(seed: int, step: int, stream: int) -> int:
    return stream_key(seed, step, stream) % 2**31


def run_llm_episodes(
    config: SimulationConfig,
    model: LanguageModel,
    lams: Sequence[float | Sequence[float]],
    seeds: Sequence[int],
    protocol: ProtocolConfig | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[LLMEpisode]:
    """Play one episode per (λ, seed) pair, all in lockstep through ``model``.

    Args:
        config: Game, scorer, belief, population and anchors (its ``candidates`` mode is
            not used: proposals come from the model).
        model: Any :class:`~swalab.llm.base.LanguageModel`.
        lams: Social weights, one or one per agent (cross product with ``seeds``).
        seeds: Episode seeds.
        protocol: How to ask the model.
        on_step: Called with the step index after each step (progress display).
    """
    seed_list = [v.integer_at_least(f"seeds[{i}]", s, 0) for i, s in enumerate(seeds)]
    if not lams or not seed_list:
        raise ValueError("lams and seeds must each hold at least one value")
    pairs = [(lam, s) for lam in lams for s in seed_list]
    return run_llm_pairs(config, model, pairs, protocol, on_step)


def run_llm_pairs(
    config: SimulationConfig,
    model: LanguageModel,
    episodes_to_play: Sequence[tuple[float | Sequence[float], int]],
    protocol: ProtocolConfig | None = None,
    on_step: Callable[[int], None] | None = None,
    games: Sequence[SimulationConfig] | None = None,
    others: Sequence[Seat] = (),
    seat_of: Sequence[int] | None = None,
    stances: Stances | None = None,
) -> list[LLMEpisode]:
    """Play the given (λ, seed) episodes in lockstep through ``model``.

    ``games``, one per episode, give each episode its whole simulation: game (capacity, β,
    horizon, per-agent caps, impacts and values drawn per seed), scorer, belief and
    outsiders, so the cells of a sweep that differ in those share every step's call.
    ``config`` gives the number of agents, which all of them must share (default for all).

    A mixed-model population seats agents at different models: ``seat_of[i]`` is 0 for
    ``model`` asked with ``protocol`` and ``j`` for ``others[j - 1]`` (a model and its own
    protocol: templates, temperature, token limit). Each step then makes one call per model.
    The decision rule (``mode``, ``selector``, ``k``, ``fallback``) is ``protocol``'s.

    ``stances`` (prompted mode only) gives each agent its own stance text in place of λ in
    words, and hears after every step, so it can rewrite them (a stance that drifts).

    Each step builds one proposal prompt per SWI agent of every live episode and sends them
    in one call; outsiders (:mod:`~swalab.swi.outsiders`) play their own rule and cost no
    call. Episodes end at their own horizon (a geometric horizon is not shown to the
    model). Rows (one per step and agent) hold: ``step, agent, kind, lam, belief,
    proposals, proposal_error, fallback, candidates, private, group, utility, demand,
    argmax_demand, llm_pick, pick_error, pick_agrees, load, welfare, overloaded, reward,
    cached, tokens_in, tokens_shared, tokens_out, latency_s`` (decision fields are null for
    outsiders; tokens counted once per distinct completion, prompt tokens the backend
    reused as ``tokens_shared``, latency as the row's share of its calls).
    """
    from swalab.swi.simulation import play_outsiders

    proto = ProtocolConfig() if protocol is None else protocol
    n = config.n_agents
    if not episodes_to_play:
        raise ValueError("no episodes to play: give at least one (λ, seed) pair")
    if stances is not None and proto.mode != "prompted":
        raise ValueError(
            f"stances: a stance text is read by prompted agents; mode={proto.mode!r} scores λ"
        )
    seats: list[Seat] = [(model, proto), *others]
    agent_seat = [0] * n if seat_of is None else list(seat_of)
    if len(agent_seat) != n or any(not 0 <= x < len(seats) for x in agent_seat):
        raise ValueError(
            f"seat_of={agent_seat}: must give each of the {n} agents a seat in 0..{len(seats) - 1}"
        )
    episodes = [
        LLMEpisode(
            lam=v.per_agent(f"lam[{e}]", lam, n, 0.0, check="unit_interval").tolist(),
            seed=v.integer_at_least(f"seeds[{e}]", seed, 0),
        )
        for e, (lam, seed) in enumerate(episodes_to_play)
    ]
    per_episode = [config] * len(episodes) if games is None else list(games)
    if len(per_episode) != len(episodes):
        raise ValueError(f"games has {len(per_episode)} entries: must have one per episode")
    for e, g in enumerate(per_episode):
        if g.n_agents != n:  # one prompt per seat: every episode of a call seats the same N
            raise ValueError(f"games[{e}].n_agents={g.n_agents}: must equal config's {n}")
    # Each episode its own game (capacity, β, horizon, per-agent values), scorer, belief and
    # outsiders: the cells of a whole sweep share each step's call.
    policies = [g.scoring_policy() for g in per_episode]
    belief_models = [g.belief() for g in per_episode]
    kinds = [g.agent_kinds()[0] for g in per_episode]
    horizons = [g.realized_steps(ep.seed) for g, ep in zip(per_episode, episodes, strict=True)]
    shown_steps = [g.steps if g.horizon == "fixed" else None for g in per_episode]
    envs = [g.env(h) for g, h in zip(per_episode, horizons, strict=True)]
    caps = [[float(c) for c in env.game.x_max] for env in envs]
    # Every answer is checked against the format; it is also enforced only if constrained.
    prompted = proto.mode == "prompted"
    talking = prompted and proto.talk
    checks: dict[float, NumberList | Demand] = {
        c: Demand(x_max=c, resolution=proto.resolution)
        if prompted
        else NumberList(k=proto.k, x_max=c, resolution=proto.resolution)
        for row in caps
        for c in row
    }
    for env, ep in zip(envs, episodes, strict=True):
        env.reset(seed=ep.seed)
    states = [m.init(n, env.game.capacity) for m, env in zip(belief_models, envs, strict=True)]
    last: list[tuple[float, FloatArray] | None] = [None] * len(episodes)

    for t in range(max(horizons)):
        live = [e for e, ep in enumerate(episodes) if ep.status == "ok" and t < horizons[e]]
        if not live:
            break
        beliefs = {e: belief_models[e].read(states[e], seed=episodes[e].seed, step=t) for e in live}
        # 1. Proposals: one call for every SWI agent of every live episode. With cheap talk
        # (prompted agents only) a first call asks each agent what it intends to request;
        # the announcements are read to everyone before the call whose answers are played.
        announced: dict[int, FloatArray] = {}
        spent: dict[tuple[int, int], dict[str, float]] = {}
        heard: dict[tuple[int, int], tuple[str, str | None]] = {}
        for rehearse in (True, False) if talking else (False,):
            prompts: list[str] = []
            formats: list[OutputFormat | None] = []
            seeds32: list[int] = []
            owners: list[tuple[int, int]] = []
            asked_seat: list[int] = []
            for e in live:
                if episodes[e].status != "ok":  # failed in the announcement call
                    continue
                previous = last[e]
                board = Board(
                    step=t,
                    steps=shown_steps[e],
                    n_agents=n,
                    capacity=envs[e].game.capacity,
                    beta=envs[e].game.beta,
                    last_demands=None if previous is None else previous[1],
                    announced=announced.get(e),
                )
                for i in range(n):
                    if kinds[e][i] != "swi":
                        continue
                    lam, belief, cap = episodes[e].lam[i], float(beliefs[e][i]), caps[e][i]
                    own = seats[agent_seat[i]][1]
                    prompts.append(
                        prompted_prompt(
                            own.prompted_template,
                            board,
                            agent=i,
                            belief=belief,
                            x_max=cap,
                            lam=lam,
                            text=None if stances is None else stances.text(e, i),
                        )
                        if prompted
                        else proposal_prompt(
                            own.proposal_template,
                            board,
                            agent=i,
                            belief=belief,
                            x_max=cap,
                            k=proto.k,
                            lam=lam,
                        )
                    )
                    formats.append(checks[caps[e][i]] if own.constrained else None)
                    seeds32.append(
                        _seed32(episodes[e].seed, t, (_TALK_STREAM if rehearse else 0) + i)
                    )
                    owners.append((e, i))
                    asked_seat.append(agent_seat[i])
            decisions: dict[int, dict[int, dict[str, Any]]] = {e: {} for e in live}
            if prompts:
                done, shared, shares = _ask(seats, asked_seat, prompts, formats, seeds32)
                for (e, i), comp, sh, share in zip(owners, done, shared, shares, strict=True):
                    ep = episodes[e]
                    _charge(ep, comp, share, sh)
                    if ep.status != "ok":
                        continue
                    check, belief, cap = checks[caps[e][i]], float(beliefs[e][i]), caps[e][i]
                    try:
                        if prompted:
                            seed = _seed32(ep.seed, t, _FALLBACK_STREAM + i)
                            d = _answer(per_episode[e], proto, comp, check, belief, cap, seed)
                        else:
                            d = _decide(
                                per_episode[e],
                                proto,
                                policies[e],
                                comp,
                                check,
                                ep.lam[i],
                                belief,
                                i,
                                cap,
                                envs[e].game,
                            )
                    except EpisodeFailedError as exc:
                        ep.status, ep.error = "failed", f"step {t}, agent {i + 1}: {exc}"
                        continue
                    d |= _row_cost(comp, share, sh)
                    decisions[e][i] = d
            if rehearse:  # what each agent said it would ask; then everyone answers again
                for e in live:
                    said = decisions[e]
                    for i, d in said.items():
                        spent[(e, i)] = {c: d[c] for c in COST_FIELDS}
                        # An announcement that did not parse was a drawn number: say so.
                        heard[(e, i)] = (d["fallback"], d["proposal_error"])
                    announced[e] = np.array(
                        [said[i]["demand"] if i in said else np.nan for i in range(n)]
                    )
        if talking:
            for e in live:
                for i, d in decisions[e].items():
                    d["announced"] = float(announced[e][i])
                    d["announce_fallback"], d["announce_error"] = heard[(e, i)]
                    for c, x in spent[(e, i)].items():
                        d[c] += x
        # 2. Optional LLM selector: one more call for every live SWI agent.
        if proto.selector == "llm":
            _llm_select(seats, agent_seat, episodes, decisions, t)
        # 3. Play the step.
        for e in live:
            ep = episodes[e]
            if ep.status != "ok":
                continue
            mine = decisions[e]
            env = envs[e]
            demands = play_outsiders(
                per_episode[e],
                env.game,
                [mine[i]["demand"] if i in mine else None for i in range(n)],
                last[e],
                ep.seed,
                t,
            )
            _, rewards, _, _, infos = env.step(dict(zip(env.agents, demands, strict=True)))
            info = next(iter(infos.values()))
            for i in range(n):
                d = mine.get(i, {"belief": float(beliefs[e][i]), "demand": float(demands[i])})
                d.pop("_scores", None)
                ep.rows.append(
                    {
                        "step": t,
                        "agent": i,
                        "kind": kinds[e][i],
                        "lam": ep.lam[i],
                        **d,
                        "load": float(info["load"]),
                        "welfare": float(info["welfare"]),
                        "overloaded": bool(info["overloaded"]),
                        "reward": float(rewards[env.possible_agents[i]]),
                    }
                )
            ep.loads.append(float(info["load"]))
            ep.welfare.append(float(info["welfare"]))
            ep.demands.append(demands)
            last[e] = (float(info["load"]), demands)
            states[e] = belief_models[e].update(states[e], info["load"], demands, env.game.weights)
        if stances is not None:
            stances.after_step(t, episodes)
        if on_step is not None:
            on_step(t)
    return episodes


def _read(comp: Completion, check: NumberList | Demand, fallback: str) -> tuple[Any, str | None]:
    """The completion's value (``None`` when unusable) and its parse error.

    Raises:
        EpisodeFailedError: The backend gave no answer, or it did not parse and the
            fallback is ``"fail"``.
    """
    if comp.error_kind == BACKEND_ERROR:
        raise EpisodeFailedError(f"backend gave no answer: {comp.error}")
    value, error = None, comp.error
    if error is None:
        try:  # unconstrained backends return text only: parse it with the same rules
            value = comp.value if comp.value is not None else check.parse(comp.text)
        except ValueError as exc:
            error = str(exc)
    if value is None and fallback == "fail":
        raise EpisodeFailedError(f"answer failed to parse ({error}) and fallback is 'fail'")
    return value, error


def _answer(
    config: SimulationConfig,
    proto: ProtocolConfig,
    comp: Completion,
    check: NumberList | Demand,
    belief: float,
    cap: float,
    fallback_seed: int,
) -> dict[str, Any]:
    """A prompted agent's demand: the model's answer, or a seeded draw from the fallback pool.

    There is no scorer: the candidate and score columns stay empty, and the recorded
    fallback says which demands were drawn rather than answered.
    """
    demand, error = _read(comp, check, proto.fallback)
    fallback = "none"
    if demand is None:
        fallback = proto.fallback
        pool = (
            demand_grid(cap, config.grid_step)
            if fallback == "grid"
            else candidate_set(np.empty(0), config.anchors, cap).values
        )
        demand = float(np.random.default_rng(fallback_seed).choice(pool))
    return {
        "belief": belief,
        "proposals": None if error is not None else [float(demand)],
        "proposal_error": error,
        "fallback": fallback,
        "candidates": None,
        "demand": float(demand),
        "argmax_demand": None,
        "llm_pick": None,
        "pick_error": None,
        "pick_agrees": None,
        "cached": comp.cached,
        "private": None,
        "group": None,
        "utility": None,
    }


def _decide(
    config: SimulationConfig,
    proto: ProtocolConfig,
    policy: Any,
    comp: Completion,
    check: NumberList | Demand,
    lam: float,
    belief: float,
    agent: int,
    cap: float,
    game: Any,
) -> dict[str, Any]:
    """Candidates from one proposal completion, scored and chosen in code."""
    proposals, error = _read(comp, check, proto.fallback)
    fallback = "none"
    if proposals is None:
        fallback = proto.fallback
        pool = demand_grid(cap, config.grid_step) if fallback == "grid" else np.empty(0)
    else:
        pool = np.asarray(proposals, dtype=np.float64)
    cands = candidate_set(pool, config.anchors, cap).values
    context = LoadContext(
        others_load=(config.n_agents - 1) * belief,
        x_max=cap,
        weight=game.weights[agent],
        value=game.values[agent],
    )
    decision = policy.decide(cands, context, lam=lam)
    return {
        "belief": belief,
        "proposals": proposals,
        "proposal_error": error,
        "fallback": fallback,
        "candidates": [float(c) for c in cands],
        "demand": decision.action,
        "argmax_demand": decision.action,
        "llm_pick": None,
        "pick_error": None,
        "pick_agrees": None,
        "cached": comp.cached,
        "private": [float(x) for x in decision.private],
        "group": [float(x) for x in decision.group],
        "utility": [float(x) for x in decision.utility],
        "_scores": decision,
    }


def _llm_select(
    seats: Sequence[Seat],
    agent_seat: list[int],
    episodes: list[LLMEpisode],
    decisions: dict[int, dict[int, dict[str, Any]]],
    t: int,
) -> None:
    """Ask each agent's model for the highest-U row; use it when it parses."""
    prompts: list[str] = []
    formats: list[OutputFormat | None] = []
    seeds32: list[int] = []
    owners: list[tuple[int, int, Choice]] = []
    asked_seat: list[int] = []
    for e, rows in decisions.items():
        if episodes[e].status != "ok":
            continue
        for i, d in rows.items():
            dec = d["_scores"]
            table = score_table(dec.candidates, dec.private, dec.group, dec.utility)
            rows_n = len(dec.candidates)
            own = seats[agent_seat[i]][1]
            prompts.append(
                choose_prompt(
                    own.choose_template, table, agent=i, lam=episodes[e].lam[i], rows=rows_n
                )
            )
            formats.append(Choice(options=rows_n) if own.constrained else None)
            asked_seat.append(agent_seat[i])
            seeds32.append(_seed32(episodes[e].seed, t, _CHOOSE_STREAM + i))
            owners.append((e, i, Choice(options=rows_n)))
    if not prompts:
        return
    done, shared, shares = _ask(seats, asked_seat, prompts, formats, seeds32, choose=True)
    for (e, i, check), comp, sh, share in zip(owners, done, shared, shares, strict=True):
        ep = episodes[e]
        _charge(ep, comp, share, sh)
        if ep.status != "ok":
            continue
        if comp.error_kind == BACKEND_ERROR:
            ep.status = "failed"
            ep.error = f"step {t}, agent {i + 1}: backend gave no answer: {comp.error}"
            continue
        d = decisions[e][i]
        for key, value in _row_cost(comp, share, sh).items():
            d[key] += value
        dec = d["_scores"]
        try:  # reference behaviour: an unusable pick falls back to the argmax
            if comp.error is not None:
                raise ValueError(comp.error)
            row = comp.value if comp.value is not None else check.parse(comp.text)
        except ValueError as exc:
            d["pick_error"] = str(exc)
            continue
        d["llm_pick"] = int(row)
        d["demand"] = float(dec.candidates[row - 1])
        # Ties count as agreement: any row of maximal U is a true argmax.
        d["pick_agrees"] = bool(dec.utility[row - 1] == dec.utility.max())

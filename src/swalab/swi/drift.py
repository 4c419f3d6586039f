"""λ as a state that moves: rounds of the congestion game, then an update of every λ.

The SWA paper fixes each agent's social weight for ever. Here a population of ``M`` agents
carries one λ each; every round it is matched at random into groups of ``N`` that play the
congestion game for ``T`` steps on the lockstep engine (fresh beliefs each round), and each
agent's payoff is its mean reward. Then an update rule moves the λ values:

* ``imitation`` — pairwise comparison (the Fermi rule): each revising agent looks at one
  other agent of the population and copies its λ with probability
  ``1 / (1 + exp(−s·(π_model − π_own)))``, ``s`` the selection strength.
* ``replicator`` — Wright–Fisher selection over the λ types present: each revising agent
  takes the λ of an agent drawn with probability ``∝ exp(s·π)``.
* ``conformity`` — each agent moves a share ``rate`` of the way to the population's mean λ.
* ``principal`` — each agent's user rewards its private score: λ shrinks by a share ``rate``
  toward 0 every round (the paper's triad: the user's preference is ``R_i``).
* ``reinforcement`` — each agent learns from its own payoff alone: it keeps a value ``Q_k``
  for every λ type, moves the value of the type it played a share ``rate`` toward the
  payoff it got, and plays type ``k`` next round with probability ``∝ exp(s·Q_k)`` (logit
  choice; values start at 0, the first round plays the starting λ). It never sees another
  agent's payoff or λ; its long run is the logit equilibrium of the two-type game
  (:func:`swalab.theory.drift.logit_fixed_points`).
* ``none`` — λ stays (the paper's setting; the control of every drift experiment).

After the rule, each agent's λ is redrawn with probability ``mutation`` from ``types``.
Every random draw comes from a generator seeded by ``(seed, round)``, so a run is
reproducible and two rules compared on one seed see the same matchings' randomness.

In the congestion game a selfish agent out-earns a prosocial one in the same group
(``R_i = x_i − (β/N)·E``), so any rule that copies success erodes λ; the mean-field map
of :mod:`swalab.theory.drift` predicts how fast and where it settles. An
:class:`Institution` (a congestion price, peer sanctions, public reputation, cheap talk, a
mediator) changes what selection sees or how the round is played, and with it where drift
goes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from swalab import _validate as v
from swalab._validate import FloatArray
from swalab.swi.config import SimulationConfig
from swalab.theory.drift import PayoffTable, first_below, stability_margin

#: The update rules.
RULES = ("imitation", "replicator", "conformity", "principal", "reinforcement", "none")
#: Bins of the recorded λ distribution (equal widths on [0, 1], the last closed).
BINS = 20


@dataclass(frozen=True, kw_only=True)
class DriftRule:
    """How λ moves between rounds.

    Attributes:
        kind: One of :data:`RULES`.
        selection: Selection strength ``s`` (imitation, replicator, reinforcement).
        rate: Share of agents that revise per round (imitation, replicator), the step toward
            the mean (conformity), the pull toward 0 (principal), or the learning rate of a
            type's value (reinforcement); in ``[0, 1]``.
        mutation: Probability that an agent's λ is redrawn from ``types`` each round.
    """

    kind: str = "imitation"
    selection: float = 1.0
    rate: float = 1.0
    mutation: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in RULES:
            raise ValueError(f"kind={self.kind!r} is not a drift rule: choose one of {RULES}")
        v.non_negative("selection", self.selection)
        v.unit_interval("rate", self.rate)
        v.unit_interval("mutation", self.mutation)


def update(
    rule: DriftRule,
    lam: FloatArray,
    payoff: FloatArray,
    rng: np.random.Generator,
    types: FloatArray,
) -> FloatArray:
    """One round's update of every λ (a pure function of its inputs and ``rng``).

    Args:
        rule: The rule.
        lam: Each agent's λ, shape (M,).
        payoff: Each agent's payoff this round, shape (M,).
        rng: The round's generator.
        types: The λ values a mutation draws from.

    Returns:
        The new λ of each agent.
    """
    m = lam.size
    new = lam.copy()
    if rule.kind in ("imitation", "replicator"):
        revise = rng.random(m) < rule.rate
        if rule.kind == "imitation":
            model = (np.arange(m) + rng.integers(1, m, size=m)) % m  # anyone but oneself
            gain = payoff[model] - payoff
            adopt = rng.random(m) < 1.0 / (1.0 + np.exp(-rule.selection * gain))
        else:
            fitness = np.exp(rule.selection * (payoff - payoff.max()))
            model = rng.choice(m, size=m, p=fitness / fitness.sum())
            adopt = np.ones(m, dtype=bool)
        take = revise & adopt
        new[take] = lam[model[take]]
    elif rule.kind == "conformity":
        new = lam + rule.rate * (lam.mean() - lam)
    elif rule.kind == "principal":
        new = (1.0 - rule.rate) * lam
    elif rule.kind == "reinforcement":
        raise ValueError("reinforcement keeps each agent's values: use reinforce()")
    return mutate(rule, new, rng, types)


def mutate(
    rule: DriftRule, lam: FloatArray, rng: np.random.Generator, types: FloatArray
) -> FloatArray:
    """Redraw each λ from ``types`` with probability ``rule.mutation`` (the rules' last step)."""
    new = lam.copy()
    if rule.mutation > 0:
        redraw = rng.random(lam.size) < rule.mutation
        new[redraw] = rng.choice(types, size=int(redraw.sum()))
    return new


def reinforce(
    rule: DriftRule,
    values: FloatArray,
    lam: FloatArray,
    payoff: FloatArray,
    rng: np.random.Generator,
    types: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """One round of learning from one's own payoff (pure in its inputs and ``rng``).

    Args:
        rule: A ``reinforcement`` rule (``rate``: learning rate, ``selection``: logit ``s``).
        values: ``(M, K)`` each agent's value of each type (``types`` sorted).
        lam: The λ each agent played (one of ``types``).
        payoff: What it earned.
        rng: The round's generator.
        types: The λ types, sorted.

    Returns:
        The new values, and the λ each agent plays next (before mutation).
    """
    m = lam.size
    played = np.searchsorted(types, lam)
    if np.any(played >= types.size) or not np.allclose(
        types[np.minimum(played, types.size - 1)], lam
    ):
        raise ValueError("lam holds a λ that is not one of types: reinforcement learns per type")
    new = values.copy()
    rows = np.arange(m)
    new[rows, played] += rule.rate * (payoff - new[rows, played])
    logits = rule.selection * (new - new.max(axis=1, keepdims=True))
    prob = np.exp(logits)
    cum = np.cumsum(prob / prob.sum(axis=1, keepdims=True), axis=1)
    pick = np.minimum((cum < rng.random(m)[:, None]).sum(axis=1), types.size - 1)
    return new, types[pick]


@dataclass(frozen=True, kw_only=True)
class Institution:
    """What a designer adds to the payoffs selection sees, or to what agents hear.

    Agents do not anticipate charges within a round (the SWI rule scores the game's own
    reward): a price, a fine or a reputation changes only which λ earns more, and so where
    drift goes. Talk is the exception: it changes how the round is played.

    Attributes:
        price: Pigouvian congestion price: paid per unit of demand in an overloaded step
            (the overload's cost falls on the others; the price charges it to whoever asked).
        fine: Peer sanction: each prosocial member of a group (λ at or above the switch)
            takes ``fine`` from every other member whose demand exceeds the fair share
            ``C/N`` in a step.
        sanction_cost: What issuing one sanction costs the sanctioner.
        reputation: Public reputation, a change of information rather than of payoffs:
            imitation and the replicator see each agent's payoff less ``reputation`` times
            its mean demand above ``C/N`` in the round (its public record); nobody pays.
        memory: How the public record weighs the latest round: each round
            ``record ← (1 − memory)·record + memory·(this round's excess)``, started at an
            agent's first round; 1 keeps this round alone. A record stays with its agent,
            so one that switched λ carries its old record for about ``1/memory`` rounds.
        talk: What agents hear before each step, a change of play rather than of payoffs:
            ``"cheap"`` talk — every agent announces the demand it intends and SWI agents
            decide again believing the others' announced mean; a ``"mediator"`` tells them
            the others will ask the fair share ``C/N``; ``"none"``.
    """

    price: float = 0.0
    fine: float = 0.0
    sanction_cost: float = 0.0
    reputation: float = 0.0
    memory: float = 1.0
    talk: str = "none"

    def __post_init__(self) -> None:
        for name in ("price", "fine", "sanction_cost", "reputation"):
            v.non_negative(name, getattr(self, name))
        if not 0.0 < self.memory <= 1.0:
            raise ValueError(f"memory={self.memory!r} is out of range: must lie in (0, 1]")
        from swalab.swi.engine import TALKS

        if self.talk not in TALKS:
            raise ValueError(f"talk={self.talk!r} is not known: choose one of {list(TALKS)}")


def round_payoffs(
    rewards: FloatArray,
    demands: FloatArray,
    loads: FloatArray,
    prosocial: np.ndarray,
    capacity: float,
    institution: Institution | None = None,
) -> FloatArray:
    """Each agent's payoff for a round: its mean reward, less what ``institution`` charges.

    Args:
        rewards: ``(E, T, N)`` rewards of the groups' steps.
        demands: ``(E, T, N)`` demands.
        loads: ``(E, T)`` loads.
        prosocial: ``(E, N)``: who sanctions (λ at or above the switch).
        capacity: ``C``.
        institution: The charges (none: the game's own reward).

    Returns:
        ``(E, N)`` mean payoff per step.
    """
    payoff: FloatArray = rewards.mean(axis=1)
    if institution is None:
        return payoff
    n = demands.shape[2]
    if institution.price:
        overloaded = (loads > capacity)[..., None]
        payoff = payoff - institution.price * (demands * overloaded).mean(axis=1)
    if institution.fine or institution.sanction_cost:
        violates = demands > capacity / n + 1e-9  # (E, T, N)
        sanctions = prosocial[:, None, :].astype(np.float64)  # (E, 1, N)
        fined_by = sanctions.sum(axis=2, keepdims=True) - sanctions  # others who sanction
        issued = violates.sum(axis=2, keepdims=True) - violates  # others who violate
        payoff = payoff - institution.fine * (violates * fined_by).mean(axis=1)
        payoff = payoff - institution.sanction_cost * (sanctions * issued).mean(axis=1)
    return payoff


def round_record(demands: FloatArray, capacity: float) -> FloatArray:
    """``(E, N)`` each agent's mean demand above the fair share ``C/N`` in the round."""
    fair = capacity / demands.shape[2]
    out: FloatArray = np.maximum(demands - fair, 0.0).mean(axis=1)
    return out


def selection_scores(
    payoff: FloatArray, demands: FloatArray, capacity: float, institution: Institution | None
) -> FloatArray:
    """What imitation and the replicator compare: payoff, less the reputation's mark.

    Args:
        payoff: ``(E, N)`` round payoffs (:func:`round_payoffs`).
        demands: ``(E, T, N)`` demands.
        capacity: ``C``.
        institution: Its ``reputation`` weight (none: the payoff itself).
    """
    if institution is None or not institution.reputation:
        return payoff
    return payoff - institution.reputation * round_record(demands, capacity)


@dataclass
class DriftResult:
    """Per-round summaries of one drift run (round 0 is the start, before any play).

    Attributes:
        mean_lam: Mean λ at the start of each round, shape (R + 1,) (the last: after all).
        prosocial: Share of agents with λ at or above ``switch``, shape (R + 1,).
        overload_rate: Share of groups' steps overloaded, per round, shape (R,).
        mean_welfare: Mean welfare per group and step, per round, shape (R,).
        mean_payoff: Mean payoff per agent, per round, shape (R,).
        switch: The λ the population is measured against (the scorer's predicted switch).
        final_lam: Every agent's λ after the last round.
        histogram: Share of agents in each of :data:`BINS` bins of λ at the start of each
            round, shape (R + 1, BINS).
    """

    mean_lam: FloatArray
    prosocial: FloatArray
    overload_rate: FloatArray
    mean_welfare: FloatArray
    mean_payoff: FloatArray
    switch: float
    final_lam: FloatArray
    histogram: FloatArray

    def collapsed_at(self) -> int | None:
        """The first round whose starting mean λ is below the switch (None: never)."""
        return first_below(self.mean_lam, self.switch)


def predicted_switch(config: SimulationConfig, scorer: str | None = None) -> float:
    """The switch ``scorer`` predicts for ``config``'s game (default: the config's scorer).

    λ̃ for ``paper``, λ* for ``consistent``; with caps that differ, at the largest.
    """
    from swalab import theory

    return float(
        theory.predicted_switch(
            config.scorer if scorer is None else scorer,
            n_agents=config.n_agents,
            capacity=config.capacity,
            beta=config.beta,
            x_max=float(np.max(config.x_max)),
            margin=config.margin,
        )
    )


def run_drift(
    config: SimulationConfig,
    lam0: FloatArray,
    rounds: int,
    rule: DriftRule,
    *,
    seed: int = 0,
    types: FloatArray | None = None,
    institution: Institution | None = None,
    x_max: FloatArray | None = None,
    weights: FloatArray | None = None,
    values: FloatArray | None = None,
) -> DriftResult:
    """Play ``rounds`` rounds of random matching, the congestion game, and ``rule``.

    Args:
        config: The game and the SWI rule every group plays (``n_agents`` is the group size
            ``N``; no outsiders; its ``x_max``, ``weights`` and ``values`` are the defaults
            of the per-agent arrays below).
        lam0: The population's starting λ, shape (M,) with ``M`` a multiple of ``N``.
        rounds: Rounds to play.
        rule: How λ moves between rounds.
        seed: Seeds the matchings, the rule's draws and the engine's candidate streams.
        types: The λ values a mutation draws from (default: those present at the start).
        institution: Charges on the payoffs selection sees (default: none).
        x_max: Each population agent's cap, shape (M,); it follows the agent into whatever
            group it is matched to (default: the config's, which must then be one number).
        weights: Each agent's impact on the load, shape (M,) (default 1).
        values: Each agent's private value per unit, shape (M,) (default 1).

    Raises:
        ValueError: A population that does not split into groups, a λ outside [0, 1], a
            per-agent array of the wrong length or out of range.
    """
    from swalab.swi.engine import LockstepBatch, run_lockstep

    lam = np.asarray(lam0, dtype=np.float64).copy()
    n, m = config.n_agents, lam.size
    v.integer_at_least("rounds", rounds, 1)
    v.integer_at_least("seed", seed, 0)
    if m < n or m % n:
        raise ValueError(
            f"lam0 has {m} agents: the population must be a multiple of the group size {n}"
        )
    if np.any((lam < 0) | (lam > 1)) or not np.all(np.isfinite(lam)):
        raise ValueError("lam0 holds a λ outside [0, 1]: every λ must lie in [0, 1]")
    if config.agents is not None and any(k != "swi" for k in config.agents):
        raise ValueError("config.agents: a drifting population is all SWI agents")
    pool = np.unique(lam) if types is None else np.asarray(types, dtype=np.float64)
    levels = np.union1d(pool, lam)  # reinforcement: the types an agent keeps a value of
    learned = np.zeros((m, levels.size))
    record: FloatArray | None = None  # reputation: each agent's public record
    groups_n = m // n
    attrs = {
        name: _per_agent(name, given, m, default)
        for name, given, default in (
            ("x_max", x_max, config.x_max),
            ("weights", weights, 1.0 if config.weights is None else config.weights),
            ("values", values, 1.0 if config.values is None else config.values),
        )
    }
    base = LockstepBatch.from_config(config, [lam[:n]] * groups_n, [seed])
    base = replace(base, steps=config.steps, episode_steps=None, talk=_talk(institution))
    switch = predicted_switch(config)
    out: dict[str, list[float]] = {k: [] for k in ("over", "welfare", "payoff")}
    means, shares = [float(lam.mean())], [float(np.mean(lam >= switch - 1e-12))]
    hists = [lam_histogram(lam)]
    for r in range(rounds):
        rng = np.random.default_rng([seed, r])
        order = rng.permutation(m)
        groups = order.reshape(groups_n, n)
        batch = replace(
            base,
            lam=lam[groups],
            seed=np.arange(groups_n, dtype=np.int64) + (seed * rounds + r) * groups_n,
            x_max=attrs["x_max"][groups],
            weights=attrs["weights"][groups],
            values=attrs["values"][groups],
        )
        res = run_lockstep(batch, record=True)
        assert res.rewards is not None and res.demands is not None and res.loads is not None
        payoff = np.empty(m)
        payoff[groups] = round_payoffs(
            res.rewards,
            res.demands,
            res.loads,
            lam[groups] >= switch - 1e-12,
            config.capacity,
            institution,
        )
        if institution is not None and institution.reputation:
            latest = np.empty(m)
            latest[groups] = round_record(res.demands, config.capacity)
            w = institution.memory
            record = latest if record is None else (1.0 - w) * record + w * latest
            score = payoff - institution.reputation * record
        else:
            score = payoff
        out["over"].append(float(res.overload_rate.mean()))
        out["welfare"].append(float(res.mean_welfare.mean()))
        out["payoff"].append(float(payoff.mean()))
        if rule.kind == "reinforcement":
            learned, lam = reinforce(rule, learned, lam, score, rng, levels)
            lam = mutate(rule, lam, rng, pool)
        else:
            lam = update(rule, lam, score, rng, pool)
        means.append(float(lam.mean()))
        shares.append(float(np.mean(lam >= switch - 1e-12)))
        hists.append(lam_histogram(lam))
    return DriftResult(
        mean_lam=np.asarray(means),
        prosocial=np.asarray(shares),
        overload_rate=np.asarray(out["over"]),
        mean_welfare=np.asarray(out["welfare"]),
        mean_payoff=np.asarray(out["payoff"]),
        switch=switch,
        final_lam=lam,
        histogram=np.stack(hists),
    )


def lam_histogram(lam: FloatArray) -> FloatArray:
    """Share of ``lam`` in each of :data:`BINS` equal bins of [0, 1] (λ = 1 in the last)."""
    counts = np.bincount(np.minimum((lam * BINS).astype(np.int64), BINS - 1), minlength=BINS)
    out: FloatArray = counts / lam.size
    return out


def _per_agent(name: str, given: FloatArray | None, m: int, default: Any) -> FloatArray:
    """A population's per-agent array: ``given`` (checked) or the config's one value."""
    if given is None:
        scalar = np.asarray(default, dtype=np.float64)
        if scalar.ndim:
            raise ValueError(
                f"config.{name} is per agent of a group: a drifting population takes "
                f"{name}= per population agent (shape ({m},)), which follows each agent"
            )
        return np.full(m, float(scalar))
    out = np.asarray(given, dtype=np.float64)
    if out.shape != (m,):
        raise ValueError(f"{name} has shape {out.shape}: give one value per agent, ({m},)")
    if not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValueError(f"{name} holds a value ≤ 0 or not finite: every {name} must be > 0")
    return out


def _talk(institution: Institution | None) -> str:
    return "none" if institution is None else institution.talk


def two_types(agents: int, types: tuple[float, float], share: float) -> FloatArray:
    """``agents`` λ values: ``round(share·agents)`` at ``types[0]``, the rest at ``types[1]``."""
    v.integer_at_least("agents", agents, 1)
    v.unit_interval("share", share)
    k = round(share * agents)
    return np.concatenate([np.full(k, float(types[0])), np.full(agents - k, float(types[1]))])


def payoff_table(
    config: SimulationConfig,
    types: tuple[float, float],
    seeds: int = 20,
    institution: Institution | None = None,
) -> PayoffTable:
    """``π_P(k)`` and ``π_S(k)`` of one round of ``config``'s game, averaged over ``seeds``.

    A round is what :func:`run_drift` plays: ``config.steps`` steps from fresh beliefs; a
    payoff is what selection compares (:func:`selection_scores`): an agent's mean reward
    less what ``institution`` charges, and less its reputation's mark.
    """
    from swalab.swi.engine import LockstepBatch, run_lockstep

    n = config.n_agents
    lam_p, lam_s = types
    rows = [[lam_p] * k + [lam_s] * (n - k) for k in range(n + 1)]
    batch = LockstepBatch.from_config(config, rows, list(range(seeds)))
    batch = replace(batch, steps=config.steps, episode_steps=None, talk=_talk(institution))
    res = run_lockstep(batch, record=True)
    assert res.rewards is not None and res.demands is not None and res.loads is not None
    first_k = np.repeat(np.arange(n)[None, :] < np.arange(n + 1)[:, None], seeds, axis=0)
    payoffs = round_payoffs(
        res.rewards, res.demands, res.loads, first_k, config.capacity, institution
    )
    per_agent = selection_scores(payoffs, res.demands, config.capacity, institution)
    payoff = per_agent.reshape(n + 1, seeds, n).mean(axis=1)  # (k, agent)
    prosocial = np.full(n + 1, np.nan)
    selfish = np.full(n + 1, np.nan)
    for k in range(n + 1):
        if k:
            prosocial[k] = payoff[k, :k].mean()
        if k < n:
            selfish[k] = payoff[k, k:].mean()
    return PayoffTable(prosocial=prosocial, selfish=selfish)


def critical_level(
    config: SimulationConfig,
    types: tuple[float, float],
    field: str,
    base: Institution | None = None,
    seeds: int = 20,
) -> float | None:
    """The smallest ``field`` (``price``, ``fine``) from which a prosocial population holds.

    Agents do not anticipate the charges, so play is the same at every level and
    :func:`stability_margin` is linear in each: two tables give the root exactly. 0 when
    the margin is positive without it; None when raising ``field`` does not raise the
    margin (a price on overloaded steps cannot help where the invader causes no overload).
    """
    start = base or Institution()
    levels: list[dict[str, Any]] = [{field: 0.0}, {field: 1.0}]
    m0, m1 = (
        stability_margin(payoff_table(config, types, seeds, replace(start, **lv))) for lv in levels
    )
    if m0 > 0:
        return 0.0
    slope = m1 - m0
    if slope <= 1e-12:
        return None
    return -m0 / slope

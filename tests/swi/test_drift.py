"""Value drift: the update rules, and simulation against the mean-field map and closed forms."""

from dataclasses import replace

import numpy as np
import pytest

from swalab.swi import SimulationConfig
from swalab.swi.drift import (
    BINS,
    DriftRule,
    Institution,
    critical_level,
    lam_histogram,
    payoff_table,
    reinforce,
    round_payoffs,
    run_drift,
    selection_scores,
    two_types,
    update,
)
from swalab.theory import drift as th

TYPES = (0.9, 0.3)
GAME = SimulationConfig(steps=5, candidates="grid")  # paper scorer: switch λ̃ = 0.75


def test_imitation_copies_the_better_earner_and_only_revisers_move():
    lam = np.array([0.9, 0.3] * 50)
    payoff = np.where(lam < 0.5, 10.0, 0.0)  # the selfish earn more
    strong = update(DriftRule(selection=50.0), lam, payoff, np.random.default_rng(0), lam)
    # A prosocial agent that met a selfish one copied it; nobody copies a worse earner.
    assert set(strong[lam < 0.5]) == {0.3} and 0 < np.mean(strong[lam > 0.5] == 0.3) < 1
    frozen = update(DriftRule(rate=0.0), lam, payoff, np.random.default_rng(0), lam)
    assert np.array_equal(frozen, lam)
    blind = update(DriftRule(selection=0.0), lam, payoff, np.random.default_rng(1), lam)
    moved = np.mean(blind != lam)  # s = 0: a coin flip whenever the other type is met
    assert 0.15 < moved < 0.35


def test_conformity_principal_none_and_mutation_follow_their_closed_forms():
    rng = np.random.default_rng(3)
    lam = rng.random(1000)
    payoff = rng.random(1000)
    c = update(DriftRule(kind="conformity", rate=0.3), lam, payoff, rng, lam)
    assert c.mean() == pytest.approx(lam.mean())
    np.testing.assert_allclose(c - c.mean(), 0.7 * (lam - lam.mean()))
    p = update(DriftRule(kind="principal", rate=0.25), lam, payoff, rng, lam)
    np.testing.assert_allclose(p, 0.75 * lam)
    assert np.array_equal(update(DriftRule(kind="none"), lam, payoff, rng, lam), lam)
    types = np.array([0.1, 0.6])
    m = update(DriftRule(kind="none", mutation=1.0), lam, payoff, rng, types)
    assert set(np.unique(m)) == {0.1, 0.6}


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        ("kind", {"kind": "gossip"}, "kind='gossip' is not a drift rule"),
        ("rate", {"rate": 1.5}, "rate=1.5 is out of range"),
        ("mutation", {"mutation": -0.1}, "mutation=-0.1 is out of range"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(field, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DriftRule(**kwargs)


def test_bad_populations_are_refused():
    with pytest.raises(ValueError, match="multiple of the group size 5"):
        run_drift(GAME, np.full(12, 0.9), 2, DriftRule())
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        run_drift(GAME, np.full(10, 1.5), 2, DriftRule())


def test_a_run_is_reproducible_from_its_seed():
    lam0 = two_types(200, TYPES, 0.8)
    a = run_drift(GAME, lam0, 10, DriftRule(), seed=4)
    b = run_drift(GAME, lam0, 10, DriftRule(), seed=4)
    c = run_drift(GAME, lam0, 10, DriftRule(), seed=5)
    assert np.array_equal(a.final_lam, b.final_lam) and np.array_equal(a.mean_lam, b.mean_lam)
    assert not np.array_equal(a.mean_lam, c.mean_lam)


@pytest.mark.parametrize(
    ("config", "rule"),
    [
        (GAME, {"rule": "imitation", "selection": 1.0, "rate": 0.2}),
        (GAME, {"rule": "imitation", "selection": 0.3, "rate": 0.5}),
        (GAME, {"rule": "replicator", "selection": 0.5, "rate": 0.3}),
        (
            SimulationConfig(steps=4, beta=2.5, scorer="consistent", margin=0.0),
            {"rule": "imitation", "selection": 2.0, "rate": 0.2},
        ),
    ],
)
def test_simulated_drift_follows_the_mean_field_map(config, rule):
    """2,000 agents over 4 seeds: the prosocial share tracks the map round by round."""
    table = payoff_table(config, TYPES, seeds=1)
    rounds = 30
    predicted = th.trajectory(0.9, rounds, table, **rule)
    drift_rule = DriftRule(kind=rule["rule"], selection=rule["selection"], rate=rule["rate"])
    runs = [
        run_drift(config, two_types(2000, TYPES, 0.9), rounds, drift_rule, seed=s) for s in range(4)
    ]
    simulated = np.mean([r.prosocial for r in runs], axis=0)
    assert np.abs(simulated - predicted).max() < 0.03
    predicted_collapse = th.collapse_round(predicted, TYPES, runs[0].switch)
    assert predicted_collapse is not None
    for r in runs:
        assert abs(r.collapsed_at() - predicted_collapse) <= 1  # type: ignore[operator]


def test_mutation_holds_the_population_at_the_maps_interior_fixed_point():
    rule = {"rule": "imitation", "selection": 1.0, "rate": 0.3, "mutation": 0.05}
    table = payoff_table(GAME, TYPES, seeds=1)
    points = th.fixed_points(table, **rule)
    (stable,) = [p for p in points if p.stable]
    assert 0 < stable.share < 0.5  # mutation keeps some prosocial agents, not enough
    drift_rule = DriftRule(kind="imitation", selection=1.0, rate=0.3, mutation=0.05)
    runs = [run_drift(GAME, two_types(2000, TYPES, 0.9), 80, drift_rule, seed=s) for s in range(3)]
    late = np.mean([r.prosocial[40:] for r in runs])
    assert late == pytest.approx(stable.share, abs=0.03)


def test_a_principals_pull_collapses_on_the_closed_form_round():
    lam0 = two_types(500, TYPES, 0.9)  # mean 0.84 above λ̃ = 0.75
    for rate in (0.01, 0.05, 0.2):
        run = run_drift(GAME, lam0, 40, DriftRule(kind="principal", rate=rate))
        np.testing.assert_allclose(run.mean_lam, lam0.mean() * (1 - rate) ** np.arange(41))
        assert run.collapsed_at() == th.principal_collapse(lam0.mean(), run.switch, rate)


def test_conformity_keeps_the_mean_so_it_never_collapses_from_above():
    run = run_drift(GAME, two_types(500, TYPES, 0.9), 20, DriftRule(kind="conformity", rate=0.5))
    np.testing.assert_allclose(run.mean_lam, run.mean_lam[0])
    assert run.collapsed_at() is None and run.prosocial[-1] == 1.0  # everyone at the mean


def test_round_payoffs_charge_what_the_institution_says_by_brute_force():
    rng = np.random.default_rng(0)
    e, t, n, capacity = 3, 4, 5, 20.0
    demands = rng.choice([2.0, 4.0, 6.0, 10.0], size=(e, t, n))
    loads = demands.sum(axis=2)
    rewards = rng.random((e, t, n))
    prosocial = rng.random((e, n)) < 0.5
    inst = Institution(price=0.7, fine=1.3, sanction_cost=0.4)
    got = round_payoffs(rewards, demands, loads, prosocial, capacity, inst)
    want = np.zeros((e, n))
    for g in range(e):
        for i in range(n):
            total = 0.0
            for s in range(t):
                pay = rewards[g, s, i]
                if loads[g, s] > capacity:
                    pay -= 0.7 * demands[g, s, i]
                for j in range(n):
                    if j == i:
                        continue
                    if prosocial[g, j] and demands[g, s, i] > capacity / n:
                        pay -= 1.3  # j fines i
                    if prosocial[g, i] and demands[g, s, j] > capacity / n:
                        pay -= 0.4  # i pays to fine j
                total += pay
            want[g, i] = total / t
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(
        round_payoffs(rewards, demands, loads, prosocial, capacity), rewards.mean(axis=1)
    )
    with pytest.raises(ValueError, match="fine=-1"):
        Institution(fine=-1.0)


def test_a_fine_above_the_critical_one_holds_a_prosocial_population():
    """f* closes the gap π_S(N − 1) − π_P(N); above it p = 1 attracts, below it erodes."""
    fine = critical_level(GAME, TYPES, "fine", seeds=1)
    assert fine == pytest.approx(1.675, abs=1e-9)  # the 6.7 gap over 4 sanctioners a step
    rule = DriftRule(selection=1.0, rate=0.2)
    for factor, holds in ((1.2, True), (0.8, False)):
        inst = Institution(fine=factor * fine)
        table = payoff_table(GAME, TYPES, seeds=1, institution=inst)
        assert (th.stability_margin(table) > 0) == holds
        predicted = th.trajectory(0.95, 30, table, rule="imitation", selection=1.0, rate=0.2)
        runs = [
            run_drift(GAME, two_types(2000, TYPES, 0.95), 30, rule, seed=s, institution=inst)
            for s in range(3)
        ]
        simulated = np.mean([r.prosocial for r in runs], axis=0)
        assert np.abs(simulated - predicted).max() < 0.03
        assert (simulated[-1] > 0.9) == holds and (simulated[-1] < 0.2) == (not holds)


def test_a_congestion_price_cannot_hold_everyone_but_holds_a_mix_above_the_switch():
    """The lone free-rider among prosocial agents causes no overload, so no price reaches it;
    where groups overload, the price falls on the selfish and stops erosion part-way."""
    assert critical_level(GAME, TYPES, "price", seeds=1) is None
    inst = Institution(price=2.0)
    table = payoff_table(GAME, TYPES, seeds=1, institution=inst)
    kwargs = {"rule": "imitation", "selection": 1.0, "rate": 0.2}
    (stable,) = [p for p in th.fixed_points(table, **kwargs) if p.stable]
    assert 0.8 < stable.share < 0.9
    runs = [
        run_drift(
            GAME, two_types(2000, TYPES, 0.9), 40, DriftRule(rate=0.2), seed=s, institution=inst
        )
        for s in range(3)
    ]
    late = np.mean([r.prosocial[20:] for r in runs])
    assert late == pytest.approx(stable.share, abs=0.03)
    assert all(r.collapsed_at() is None for r in runs)  # the mean λ stays above λ̃


def test_reputation_changes_whom_imitation_copies_not_what_anyone_is_paid():
    """A public record of demand above C/N: the invader's excess is 10 − 4 = 6 a step, so
    the critical weight is the 6.7 gap over 6; nobody pays, so payoffs are unchanged."""
    weight = critical_level(GAME, TYPES, "reputation", seeds=1)
    assert weight == pytest.approx(6.7 / 6, abs=1e-9)
    lam0 = two_types(2000, TYPES, 0.95)
    rule = DriftRule(selection=1.0, rate=0.2)
    held = run_drift(GAME, lam0, 30, rule, institution=Institution(reputation=1.2 * weight))
    eroded = run_drift(GAME, lam0, 30, rule, institution=Institution(reputation=0.8 * weight))
    assert held.prosocial[-1] > 0.9 and eroded.prosocial[-1] < 0.75  # from 0.95
    for run, factor in ((held, 1.2), (eroded, 0.8)):  # each as its map says
        table = payoff_table(GAME, TYPES, 1, Institution(reputation=factor * weight))
        predicted = th.trajectory(0.95, 30, table, rule="imitation", selection=1.0, rate=0.2)
        assert np.abs(run.prosocial - predicted).max() < 0.05
    plain = run_drift(GAME, lam0, 1, rule)
    marked = run_drift(GAME, lam0, 1, rule, institution=Institution(reputation=5.0))
    assert marked.mean_payoff[0] == pytest.approx(plain.mean_payoff[0])  # the same round paid
    demands = np.array([[[2.0, 10.0]], [[6.0, 3.0]]])  # (E=2, T=1, N=2), C/N = 4
    scores = selection_scores(np.zeros((2, 2)), demands, 8.0, Institution(reputation=0.5))
    np.testing.assert_allclose(scores, [[0.0, -3.0], [-1.0, 0.0]])


def test_the_recorded_distribution_holds_every_agent_in_its_bin():
    lam0 = np.concatenate([two_types(150, TYPES, 0.6), np.full(50, 1.0)])
    res = run_drift(
        GAME, lam0, 6, DriftRule(rate=0.5, mutation=0.1), seed=2, types=np.linspace(0, 1, 7)
    )
    assert res.histogram.shape == (7, BINS)
    assert np.allclose(res.histogram.sum(axis=1), 1.0)
    start = res.histogram[0]
    assert start[int(TYPES[0] * BINS)] == pytest.approx(90 / 200)  # λ = 0.9
    assert start[int(TYPES[1] * BINS)] == pytest.approx(60 / 200)  # λ = 0.3
    assert start[BINS - 1] == pytest.approx(50 / 200)  # λ = 1 counts in the last bin
    assert np.array_equal(res.histogram[-1], lam_histogram(res.final_lam))
    # Every agent sits in its bin: the mean of the bins' edges brackets the mean λ.
    lower = res.histogram @ (np.arange(BINS) / BINS)
    assert np.all(lower <= res.mean_lam + 1e-12) and np.all(res.mean_lam <= lower + 1 / BINS)


def test_reinforcement_moves_only_the_played_types_value_and_chooses_by_logit():
    types = np.array([0.3, 0.9])
    rule = DriftRule(kind="reinforcement", selection=2.0, rate=0.25)
    values = np.array([[1.0, 2.0], [0.0, 0.0]])
    lam = np.array([0.9, 0.3])
    new, _ = reinforce(rule, values, lam, np.array([6.0, -4.0]), np.random.default_rng(0), types)
    assert new.tolist() == [[1.0, 3.0], [-1.0, 0.0]]  # 2 + 0.25·(6 − 2); 0 + 0.25·(−4 − 0)
    many = np.tile([[0.0, 0.5]], (40_000, 1))
    _, nxt = reinforce(
        replace(rule, rate=0.0),
        many,
        np.full(40_000, 0.3),
        np.zeros(40_000),
        np.random.default_rng(1),
        types,
    )
    expected = 1 / (1 + np.exp(-2.0 * 0.5))  # logit choice of 0.9
    assert np.mean(nxt == 0.9) == pytest.approx(expected, abs=0.01)
    with pytest.raises(ValueError, match="not one of types"):
        reinforce(rule, values, np.array([0.5, 0.3]), np.zeros(2), np.random.default_rng(0), types)


@pytest.mark.parametrize(("p0", "end"), [(0.9, "high"), (0.45, "low")])
def test_reinforcement_follows_its_map_to_the_logit_equilibrium_of_its_basin(p0, end):
    """Fine 3 makes reinforcement bistable: from 0.9 it holds, from 0.45 it collapses.

    The simulation follows the two-class mean-field map, and the map comes to rest on the
    logit equilibrium (slowly: a type rarely played is rarely re-valued).
    """
    institution = Institution(fine=3.0)
    table = payoff_table(GAME, TYPES, seeds=10, institution=institution)
    low, mid, high = th.logit_fixed_points(table, selection=1.0)
    assert (p0 > mid.share) == (end == "high")
    rule = DriftRule(kind="reinforcement", selection=1.0, rate=0.3)
    simulated = np.mean(
        [
            run_drift(
                GAME, two_types(1000, TYPES, p0), 100, rule, seed=s, institution=institution
            ).prosocial
            for s in range(2)
        ],
        axis=0,
    )
    predicted = th.reinforcement_trajectory(p0, 100, table, selection=1.0, rate=0.3)
    assert np.abs(simulated - predicted).max() < 0.1
    assert simulated[-1] == pytest.approx(predicted[-1], abs=0.02)
    rest = th.reinforcement_trajectory(p0, 5000, table, selection=1.0, rate=0.3)[-1]
    assert rest == pytest.approx((high if end == "high" else low).share, abs=2e-3)


@pytest.mark.parametrize("talk", ["cheap", "mediator"])
def test_talk_replaces_the_belief_agents_decide_with_as_the_per_agent_rule_says(talk):
    """Step 0 by hand: the SWI rule at C/N, then at the others' announced mean (or C/N)."""
    from swalab.swi.candidates import candidate_set, demand_grid
    from swalab.swi.engine import LockstepBatch, run_lockstep
    from swalab.swi.scorers import LoadContext

    lam = [0.9, 0.9, 0.9, 0.3, 0.6]
    batch = replace(LockstepBatch.from_config(GAME, [lam], [0]), talk=talk)
    res = run_lockstep(batch, record=True)
    policy = GAME.scoring_policy()
    cands = candidate_set(demand_grid(GAME.x_max, GAME.grid_step), GAME.anchors, GAME.x_max)

    def decide(belief, i):
        ctx = LoadContext(others_load=4 * belief, x_max=GAME.x_max, weight=1.0, value=1.0)
        return policy.decide(cands.values, ctx, lam=lam[i]).action

    fair = GAME.capacity / 5
    intended = [decide(fair, i) for i in range(5)]
    heard = [(sum(intended) - x) / 4 for x in intended] if talk == "cheap" else [fair] * 5
    assert res.demands[0, 0].tolist() == [decide(heard[i], i) for i in range(5)]
    assert res.beliefs[0, 0].tolist() == pytest.approx(heard)
    with pytest.raises(ValueError, match="talk='loud' is not known"):
        Institution(talk="loud")
    with pytest.raises(ValueError, match="talk='loud' is not known"):
        run_lockstep(replace(batch, talk="loud"))


def test_talk_changes_play_not_the_incentive_so_imitation_still_erodes():
    """Cheap talk and a mediator leave π_P(N) < π_S(N − 1): the map and the run both erode."""
    for talk in ("cheap", "mediator"):
        institution = Institution(talk=talk)
        table = payoff_table(GAME, TYPES, seeds=4, institution=institution)
        assert th.stability_margin(table) < 0
        res = run_drift(
            GAME, two_types(500, TYPES, 0.9), 30, DriftRule(rate=0.3), institution=institution
        )
        assert res.collapsed_at() is not None


def test_a_long_memory_lets_converts_keep_clean_records_and_weakens_reputation():
    """w = 1.4 > w* holds with a one-round record; remembered over ~20 rounds it does not.

    A prosocial agent that copies a selfish λ keeps its clean record for a while, so it
    looks better than it behaves and is copied in turn.
    """
    lam0 = two_types(1000, TYPES, 0.9)
    runs = {
        memory: run_drift(
            GAME,
            lam0,
            100,
            DriftRule(rate=0.2),
            institution=Institution(reputation=1.4, memory=memory),
        )
        for memory in (1.0, 0.05)
    }
    assert runs[1.0].prosocial[-1] == 1.0 and runs[0.05].prosocial[-1] < 0.05
    with pytest.raises(ValueError, match="memory=0 is out of range"):
        Institution(reputation=1.0, memory=0)


def test_caps_impacts_and_values_follow_each_agent_into_its_group():
    """λ = 0 asks the cap: payoffs and welfare by hand from each round's matching."""
    m, n = 20, GAME.n_agents
    rng = np.random.default_rng(9)
    caps = rng.choice([2.0, 5.0, 10.0], m)
    impacts = rng.choice([0.5, 1.0, 2.0], m)
    worth = rng.choice([1.0, 3.0], m)
    res = run_drift(
        GAME, np.zeros(m), 3, DriftRule(kind="none"), seed=4, x_max=caps, weights=impacts,
        values=worth,
    )  # fmt: skip
    for r in range(3):
        groups = np.random.default_rng([4, r]).permutation(m).reshape(-1, n)  # the matching
        load = (impacts * caps)[groups].sum(axis=1)
        excess = np.maximum(load - GAME.capacity, 0.0)
        reward = (worth * caps)[groups] - GAME.beta / n * excess[:, None]
        welfare = (worth * caps)[groups].sum(axis=1) - GAME.beta * excess
        assert res.mean_payoff[r] == pytest.approx(reward.mean())
        assert res.mean_welfare[r] == pytest.approx(welfare.mean())
        assert res.overload_rate[r] == pytest.approx(np.mean(load > GAME.capacity))
    with pytest.raises(ValueError, match=r"x_max has shape \(3,\)"):
        run_drift(GAME, np.zeros(m), 1, DriftRule(), x_max=np.ones(3))
    with pytest.raises(ValueError, match="weights holds a value ≤ 0"):
        run_drift(GAME, np.zeros(m), 1, DriftRule(), weights=np.zeros(m))

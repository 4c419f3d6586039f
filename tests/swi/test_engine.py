"""The lockstep engine plays the same episodes as SWIPolicy + congestion_v0, bit for bit."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swalab.swi import FixedCandidates, SimulationConfig, _kernels, _rng, run_episode, simulate
from swalab.swi.engine import LockstepBatch, run_lockstep

FIELDS = ("demands", "loads", "welfare", "beliefs", "rewards")


def assert_same_trajectory(episode, result, index):
    for field in FIELDS:
        ours = getattr(result, field)[index]
        theirs = getattr(episode, field)
        assert ours.tobytes() == theirs.tobytes(), field


@st.composite
def heterogeneous_runs(draw):
    n = draw(st.integers(2, 5))
    steps = draw(st.integers(1, 6))
    capacity = draw(st.floats(2, 40))
    x_max = tuple(draw(st.sampled_from([1.0, 2.5, 4.0, 10.0])) for _ in range(n))
    config = SimulationConfig(
        n_agents=n,
        capacity=capacity,
        beta=draw(st.floats(0.2, 8)),
        x_max=x_max,
        weights=tuple(draw(st.floats(0.25, 3)) for _ in range(n)),
        values=tuple(draw(st.floats(0.25, 3)) for _ in range(n)),
        steps=steps,
        scorer=draw(st.sampled_from(["paper", "consistent"])),
        margin=draw(st.floats(0, 0.9)) * capacity,
        gamma=draw(st.sampled_from([0.0, 0.02, 0.3])),
        alpha=draw(st.floats(0.05, 1)),
        initial_belief=draw(st.one_of(st.none(), st.floats(0, 12))),
        anchors=(),
    )
    # λ ∈ {0, 1} and coarse candidate grids with duplicates make exact ties common.
    lam = [draw(st.sampled_from([0.0, 1.0, 0.5, draw(st.floats(0, 1))])) for _ in range(n)]
    table = []
    for _ in range(steps):
        row = []
        for i in range(n):
            size = draw(st.integers(1, 6))
            row.append([draw(st.sampled_from([0.0, 0.5, 1.0])) * x_max[i] for _ in range(size)])
        table.append(row)
    seed = draw(st.integers(0, 2**40))
    return config, lam, table, seed


@given(heterogeneous_runs())
def test_engine_matches_per_agent_path_on_given_candidates(run):
    config, lam, table, seed = run
    episode = run_episode(config, lam, seed, source=FixedCandidates(table))
    width = max(len(c) for row in table for c in row)
    given = np.full((config.steps, 1, config.n_agents, width), np.nan)
    for t, row in enumerate(table):
        for i, cands in enumerate(row):
            given[t, 0, i, : len(cands)] = cands
    batch = LockstepBatch.from_config(config, [lam], [seed])
    batch = LockstepBatch(**{**batch.__dict__, "candidates": "given"})
    result = run_lockstep(batch, record=True, given=given)
    assert_same_trajectory(episode, result, 0)


@pytest.mark.parametrize("candidates", ["grid", "random", "anchors"])
@pytest.mark.parametrize("scorer", ["paper", "consistent"])
def test_engine_generates_the_same_candidates_as_the_per_agent_path(candidates, scorer):
    config = SimulationConfig(
        candidates=candidates,
        scorer=scorer,
        x_max=(10.0, 10.0, 6.0, 10.0, 8.0),
        weights=(1.0, 2.0, 1.0, 0.5, 1.0),
    )
    lams = [0.0, 0.7, [0.0, 0.9, 0.9, 0.5, 1.0], 0.8, 1.0]
    seeds = [0, 7]
    result = run_lockstep(LockstepBatch.from_config(config, lams, seeds), record=True)
    index = 0
    for lam in lams:
        for seed in seeds:
            assert_same_trajectory(run_episode(config, lam, seed), result, index)
            index += 1


def test_compiled_random_stream_matches_python():
    out = np.empty(7, dtype=np.int64)
    for seed, step, agent in [(0, 0, 0), (1, 99, 4), (2**40, 3, 1000)]:
        key = _rng.stream_key(seed, step, agent)
        assert int(_kernels.stream_key(seed, step, agent)) == key
        _kernels.floyd_sample(np.uint64(key), 41, 7, out)
        assert out.tolist() == _rng.floyd_sample(key, 41, 7)


def test_simulate_engines_agree():
    config = SimulationConfig(candidates="random")
    lams = [0.0, 0.7, 0.75, 0.9]
    fast = simulate(config, lams, 4, engine="lockstep")
    slow = simulate(config, lams, 4, engine="loop")
    for a, b in zip(fast, slow, strict=True):
        assert a.overload_rate == pytest.approx(b.overload_rate, abs=1e-12)
        assert a.mean_welfare == pytest.approx(b.mean_welfare, abs=1e-9)
        assert a.steps_to_stable == pytest.approx(b.steps_to_stable, abs=1e-12)
        assert a.fairness == pytest.approx(b.fairness, abs=1e-9)


def test_recording_in_small_chunks_changes_nothing():
    config = SimulationConfig(candidates="random", steps=7)
    batch = LockstepBatch.from_config(config, [0.3, 0.8], range(5))
    whole = run_lockstep(batch, record=True)
    chunked = run_lockstep(batch, record=True, chunk_bytes=1)
    for field in (*FIELDS, "overload_rate", "mean_welfare"):
        assert np.array_equal(getattr(whole, field), getattr(chunked, field))


def test_per_episode_parameters_may_differ():
    config = SimulationConfig(candidates="random")
    betas = [1.6, 4.0]
    batch = LockstepBatch.from_config(config, [0.7], range(3), betas)
    res = run_lockstep(batch)
    for b, block in zip(betas, np.split(res.mean_welfare, 2), strict=True):
        alone = run_lockstep(
            LockstepBatch.from_config(
                SimulationConfig(candidates="random", beta=b), [0.7], range(3)
            )
        )
        assert np.array_equal(block, alone.mean_welfare)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lam": np.full((2, 5), 1.5)}, r"lam\[0,0\]=1.5 is out of range"),
        ({"beta": np.array([1.0, -1.0])}, r"beta\[1\]=-1.0 is out of range"),
        ({"margin": np.asarray(25.0)}, r"margin\[0\]=25.0 is out of range: must be < capacity"),
        ({"alpha": np.asarray(0.0)}, r"alpha\[0\]=0.0 is out of range"),
        ({"scorer": "x"}, r"scorer='x' is not known"),
        ({"x_max": np.ones(3)}, r"x_max has shape \(3,\)"),
        ({"k": 60}, r"k=60 is out of range"),
        ({"candidates": "llm"}, r"candidates='llm' is not known"),
        ({"seed": np.array([0, -3])}, r"seed=-3 is out of range"),
        ({"initial_belief": np.asarray(-1.0)}, r"initial_belief\[0\]=-1.0 is out of range"),
        ({"steps": 0}, r"steps=0 is out of range"),
        ({"belief": "median"}, r"belief='median' is not known"),
        ({"agents": "miser"}, r"agents='miser' is not known"),
        ({"agents": np.asarray(9)}, r"agents holds a code outside 0..5"),
        ({"agents": "fixed"}, r"agents\[0,0\]='fixed' needs a demand"),
        ({"agent_demands": np.asarray(-2.0)}, r"agent_demands holds a negative demand"),
        ({"window": 0}, r"window=0 is out of range"),
        ({"delay": 1.5}, r"delay=1.5 is out of range: must be whole numbers"),
        ({"noise": np.asarray(-0.1)}, r"noise\[0\]=-0.1 is out of range"),
        ({"episode_steps": np.array([20, 25])}, r"episode_steps=25 is out of range"),
    ],
)
def test_bad_batches_are_refused_with_the_field(change, message):
    batch = LockstepBatch.from_config(SimulationConfig(candidates="random"), [0.5], [0, 1])
    with pytest.raises(ValueError, match=message):
        run_lockstep(LockstepBatch(**{**batch.__dict__, **change}))


def test_given_candidates_are_checked():
    config = SimulationConfig(steps=2)
    batch = LockstepBatch.from_config(config, [0.5], [0])
    batch = LockstepBatch(**{**batch.__dict__, "candidates": "given"})
    with pytest.raises(ValueError, match=r"given has shape None"):
        run_lockstep(batch)
    given = np.full((2, 1, 5, 2), 1.0)
    given[1, 0, 3, 1] = 11.0
    with pytest.raises(ValueError, match=r"given\[1,0,3,1\]=11.0 is out of range"):
        run_lockstep(batch, given=given)


def test_simulate_refuses_an_unknown_engine():
    with pytest.raises(ValueError, match=r"engine='gpu' is not known"):
        simulate(SimulationConfig(), [0.5], 1, engine="gpu")


@st.composite
def belief_and_population_runs(draw):
    n = draw(st.integers(2, 6))
    kinds = tuple(
        draw(
            st.sampled_from(["swi", "swi", "greedy", "fixed", "tit_for_tat", "random", "adversary"])
        )
        for _ in range(n)
    )
    demands = tuple(
        draw(st.floats(0, 12)) if k in ("fixed", "tit_for_tat") else np.nan for k in kinds
    )
    config = SimulationConfig(
        n_agents=n,
        capacity=draw(st.floats(4, 40)),
        beta=draw(st.floats(0.5, 6)),
        x_max=draw(st.sampled_from([2.5, 10.0])),
        weights=tuple(draw(st.floats(0.5, 2)) for _ in range(n)),
        steps=draw(st.integers(1, 25)),
        scorer=draw(st.sampled_from(["paper", "consistent"])),
        candidates=draw(st.sampled_from(["grid", "random", "anchors"])),
        k=3,
        grid_step=0.5,
        margin=1.0,
        alpha=draw(st.floats(0.05, 1)),
        belief_kind=draw(st.sampled_from(["ema", "last", "window"])),
        window=draw(st.integers(1, 4)),
        private=draw(st.booleans()),
        delay=draw(st.integers(0, 3)),
        noise=draw(st.sampled_from([0.0, 0.3, 2.0])),
        agents=kinds,
        agent_demands=demands,
        horizon=draw(st.sampled_from(["fixed", "geometric"])),
    )
    lam = [draw(st.sampled_from([0.0, 0.5, 0.9, 1.0])) for _ in range(n)]
    return config, lam, draw(st.lists(st.integers(0, 2**40), min_size=1, max_size=3))


@given(belief_and_population_runs())
def test_engine_matches_per_agent_path_with_beliefs_outsiders_and_horizons(run):
    config, lam, seeds = run
    result = run_lockstep(LockstepBatch.from_config(config, [lam], seeds), record=True)
    for j, seed in enumerate(seeds):
        episode = run_episode(config, lam, seed)
        played = episode.loads.shape[0]
        assert result.steps_played[j] == played == config.realized_steps(seed)
        for field in FIELDS:
            ours = getattr(result, field)[j]
            assert ours[:played].tobytes() == getattr(episode, field).tobytes(), field
            assert np.isnan(ours[played:]).all()


def test_geometric_horizon_has_the_stated_mean_and_is_seeded():
    config = SimulationConfig(horizon="geometric", steps=20)
    horizons = np.array([config.realized_steps(s) for s in range(5000)])
    assert horizons.min() >= 1 and abs(horizons.mean() - 20) < 1.0
    assert abs((horizons == 1).mean() - 1 / 20) < 0.01  # P(T = 1) = p
    assert [config.realized_steps(s) for s in range(5)] == list(horizons[:5])
    result = run_lockstep(LockstepBatch.from_config(config, [0.9], range(50)))
    assert np.array_equal(result.steps_played, horizons[:50])

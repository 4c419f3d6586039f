import numpy as np
import pytest

from swalab.swi import (
    REFERENCE_ANCHORS,
    FixedCandidates,
    GridCandidates,
    RandomGridCandidates,
    candidate_set,
    demand_grid,
)
from swalab.swi._rng import floyd_sample, stream_key


def test_reference_grid_has_41_points():
    grid = demand_grid(10, 0.25)
    assert grid.size == 41 and grid[0] == 0 and grid[-1] == 10


def test_every_anchor_is_kept_even_with_many_proposals():
    proposals = np.linspace(5, 9, 12)  # the reference code would truncate the anchors away
    cs = candidate_set(proposals, REFERENCE_ANCHORS, 10.0)
    assert set(REFERENCE_ANCHORS) <= set(cs.values.tolist())
    assert np.all(np.diff(cs.values) > 0)


def test_out_of_range_proposals_are_dropped_and_counted():
    cs = candidate_set([1.0, 11.0, -1.0, np.nan, 1.0], [0.0], 10.0)
    assert cs.values.tolist() == [0.0, 1.0]
    assert cs.rejected == 3


def test_anchors_are_clipped_to_a_smaller_action_space():
    cs = candidate_set([], REFERENCE_ANCHORS, 3.0)
    assert cs.values.tolist() == [0.0, 2.0, 3.0]


def test_random_draws_are_seeded_and_distinct():
    src = RandomGridCandidates(x_max=10, k=7)
    a = src.propose(seed=0, step=3, n_agents=5)
    b = src.propose(seed=0, step=3, n_agents=5)
    c = src.propose(seed=1, step=3, n_agents=5)
    d = src.propose(seed=0, step=4, n_agents=5)
    assert not all(np.array_equal(x, y) for x, y in zip(a, d, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert all(np.unique(x).size == 7 for x in a)
    grid = set(demand_grid(10, 0.25).tolist())
    assert all(set(x.tolist()) <= grid for x in a)


def test_grid_source_is_the_whole_grid():
    grid = GridCandidates(x_max=10).propose(seed=0, step=0, n_agents=2)
    assert len(grid) == 2 and grid[0].size == 41


def test_k_larger_than_grid_is_refused():
    with pytest.raises(ValueError, match=r"k=50 is out of range"):
        RandomGridCandidates(x_max=10, k=50)


def test_floyd_draws_are_uniform_enough():
    """Each of 41 grid points should be drawn with probability 7/41."""
    counts = np.zeros(41)
    for seed in range(3000):
        for idx in floyd_sample(stream_key(seed, 0, 0), 41, 7):
            counts[idx] += 1
    expected = 3000 * 7 / 41
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 80  # 40 degrees of freedom: p < 0.001 beyond ~73


def test_fixed_candidates_replay_the_table():
    src = FixedCandidates([[[1.0], [2.0]], [[3.0], [4.0]]])
    assert [c.tolist() for c in src.propose(seed=0, step=1, n_agents=2)] == [[3.0], [4.0]]
    with pytest.raises(ValueError, match="no recorded candidates for step 2"):
        src.propose(seed=0, step=2, n_agents=2)


def test_per_agent_caps_give_each_agent_its_own_grid():
    grids = GridCandidates(x_max=(10.0, 2.0)).propose(seed=0, step=0, n_agents=2)
    assert [g.size for g in grids] == [41, 9]
    draws = RandomGridCandidates(x_max=(10.0, 2.0), k=5).propose(seed=0, step=0, n_agents=2)
    assert draws[1].max() <= 2.0
    with pytest.raises(
        ValueError, match=r"x_max has 3 entries: must be one or one per agent \(2\)"
    ):
        GridCandidates(x_max=(1.0, 2.0, 3.0)).propose(seed=0, step=0, n_agents=2)
    with pytest.raises(ValueError, match=r"k=10 is out of range: the grid has only 9 points"):
        RandomGridCandidates(x_max=(10.0, 2.0), k=10)


def test_anchors_only_chooses_among_the_anchors_and_needs_some():
    from swalab.swi import SimulationConfig, run_episode
    from swalab.swi.engine import LockstepBatch

    config = SimulationConfig(candidates="anchors", anchors=(0.0, 3.0, 4.5))
    episode = run_episode(config, 0.0, seed=0)
    assert set(np.unique(episode.demands).tolist()) <= {0.0, 3.0, 4.5}
    assert episode.demands.max() == 4.5  # λ = 0 takes the largest it is offered, not x_max
    with pytest.raises(ValueError, match=r"candidates='anchors' needs at least one anchor"):
        SimulationConfig(candidates="anchors", anchors=())
    batch = LockstepBatch.from_config(SimulationConfig(), [0.5], [0])
    with pytest.raises(ValueError, match=r"candidates='anchors' needs at least one anchor"):
        LockstepBatch(**{**batch.__dict__, "candidates": "anchors", "anchors": ()}).validated()

"""Belief models and their noise/delay wrappers on hand-checked cases."""

import math

import numpy as np
import pytest

from swalab.swi import _rng
from swalab.swi.beliefs import (
    DelayedBelief,
    EMABelief,
    LastBelief,
    NoisyBelief,
    WindowBelief,
    make_belief,
    observation,
)

# Two agents, C = 10 (μ̂₀ = 5); three steps with demands (6, 2), (8, 4), (1, 1).
STEPS = [(np.array([6.0, 2.0]), 8.0), (np.array([8.0, 4.0]), 12.0), (np.array([1.0, 1.0]), 2.0)]


def reads(model, seed=0):
    state = model.init(2, 10.0)
    out = [model.read(state, seed=seed, step=0)]
    for t, (demands, load) in enumerate(STEPS, start=1):
        state = model.update(state, load, demands, np.ones(2))
        out.append(model.read(state, seed=seed, step=t))
    return np.array(out)


def test_ema_blends_the_public_mean():
    got = reads(EMABelief(alpha=0.5))
    assert got[:, 0].tolist() == [5.0, 4.5, 5.25, 3.125]
    assert np.array_equal(got[:, 0], got[:, 1])  # one public board: one shared belief


def test_private_ema_observes_the_others_only():
    got = reads(EMABelief(alpha=0.5, private=True))
    # agent 0 sees 2, 4, 1 of the other; agent 1 sees 6, 8, 1
    assert got[:, 0].tolist() == [5.0, 3.5, 3.75, 2.375]
    assert got[:, 1].tolist() == [5.0, 5.5, 6.75, 3.875]


def test_last_step_forgets_everything_before():
    assert reads(LastBelief())[:, 0].tolist() == [5.0, 4.0, 6.0, 1.0]
    assert reads(make_belief("ema", alpha=1.0))[:, 0].tolist() == [5.0, 4.0, 6.0, 1.0]


def test_window_mean_pools_the_last_observations():
    assert reads(WindowBelief(window=2))[:, 0].tolist() == [5.0, 4.0, 5.0, 3.5]
    assert reads(WindowBelief(window=5, initial=9.0))[:, 0].tolist() == [9.0, 4.0, 5.0, 11 / 3]


def test_delay_reads_the_estimate_of_d_steps_before():
    got = reads(DelayedBelief(base=LastBelief(), delay=2))[:, 0].tolist()
    assert got == [5.0, 5.0, 5.0, 4.0]
    assert reads(DelayedBelief(base=LastBelief(), delay=0))[:, 0].tolist() == [5.0, 4.0, 6.0, 1.0]


def test_noise_has_the_stated_spread_and_never_goes_negative():
    model = NoisyBelief(base=LastBelief(initial=50.0), sigma=2.0)
    draws = np.concatenate([model.read(model.init(2, 10.0), seed=s, step=3) for s in range(4000)])
    assert abs(draws.mean() - 50.0) < 0.1 and abs(draws.std() - 2.0) < 0.1
    low = NoisyBelief(base=LastBelief(initial=0.5), sigma=2.0)
    near_zero = np.concatenate([low.read(low.init(2, 10.0), seed=s) for s in range(200)])
    assert near_zero.min() == 0.0 and (near_zero == 0.0).mean() > 0.3
    # seeded: the same (seed, step) gives the same noise; agents draw independently
    a, b = (
        model.read(model.init(2, 10.0), seed=7, step=1),
        model.read(model.init(2, 10.0), seed=7, step=1),
    )
    assert np.array_equal(a, b) and a[0] != a[1]
    assert np.array_equal(reads(NoisyBelief(base=EMABelief(), sigma=0.0)), reads(EMABelief()))


def test_gaussian_stream_is_standard_normal():
    z = np.array([_rng.gaussian(_rng.stream_key(s, 0, _rng.NOISE_STREAM)) for s in range(20000)])
    assert np.isfinite(z).all()
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03
    # the normal CDF at a few points (20 000 draws: standard error below 0.004)
    for x in (-2.0, -1.0, 0.0, 0.5, 1.5):
        assert abs((z <= x).mean() - 0.5 * (1 + math.erf(x / math.sqrt(2)))) < 0.015


def test_make_belief_wraps_delay_inside_noise_and_names_bad_values():
    model = make_belief("window", window=3, delay=2, noise=0.5)
    assert isinstance(model, NoisyBelief) and isinstance(model.base, DelayedBelief)
    assert isinstance(model.base.base, WindowBelief)
    with pytest.raises(ValueError, match="belief='median' is not known"):
        make_belief("median")
    with pytest.raises(ValueError, match="window=0"):
        make_belief("window", window=0)
    with pytest.raises(ValueError, match="noise=-1"):
        make_belief(noise=-1.0)
    with pytest.raises(ValueError, match="delay=-2"):
        make_belief(delay=-2)
    with pytest.raises(ValueError, match="private beliefs need the step's demands"):
        observation(2, 8.0, None, None, private=True)

"""One parameterised conformance test over every registered environment (Melting Pot).

Each environment (and the text mode of ``context_budget_v0``) goes through PettingZoo's
parallel API and seed tests and swalab's own checks: observations in their spaces, infos
with load/excess/welfare, welfare = Σ rewards, invalid actions refused without advancing,
pure payoffs that ``step()`` reproduces, and the welfare model agreeing with ``step()``.
"""

import pytest

from swalab import envs
from swalab.testing import check_parallel_env

VARIANTS = [(name, {}) for name in envs.names()] + [
    ("context_budget_v0", {"mode": "text"}),
    ("rate_limit_v0", {"lockout_after": 1, "lockout_threshold": 2, "x_max": 20}),
    ("commons_v0", {"initial_stock": 20.0, "growth": 0.3, "steps": 40}),
]


@pytest.mark.parametrize(("name", "params"), VARIANTS, ids=lambda x: str(x))
def test_every_registered_env_passes_conformance(name, params):
    check_parallel_env(lambda: envs.make(name, **params))


def test_every_dilemma_is_registered_and_runnable_by_default():
    assert set(envs.DILEMMAS) <= set(envs.REGISTRY)
    for name in envs.DILEMMAS:
        env = getattr(envs, name).parallel_env()
        env.reset(seed=0)
        assert env.agents and env.dynamics.name == name


def test_unknown_env_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"env='nope' is not registered: choose one of \["):
        envs.make("nope")


def test_unknown_or_bad_dynamics_parameter_is_named():
    with pytest.raises(ValueError, match=r"env_params.capcity: not a parameter of commons_v0"):
        envs.dynamics("commons_v0", capcity=3)
    with pytest.raises(ValueError, match=r"rate=-1 is out of range: must be a number > 0"):
        envs.dynamics("rate_limit_v0", rate=-1)
    with pytest.raises(ValueError, match=r"mode='audio' is not known"):
        envs.dynamics("context_budget_v0", mode="audio")

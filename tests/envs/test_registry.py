"""One parameterised conformance test over every registered environment (Melting Pot)."""

import pytest

from swalab import envs
from swalab.testing import check_parallel_env


@pytest.mark.parametrize("name", envs.names())
def test_every_registered_env_passes_conformance(name):
    check_parallel_env(lambda: envs.make(name))


def test_unknown_env_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"env='nope' is not registered: choose one of \["):
        envs.make("nope")

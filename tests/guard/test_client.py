"""The policy loop the transports and the simulator share: its refusals, caused."""

from dataclasses import dataclass

import pytest

from swalab.guard import Naive
from swalab.guard.client import GuardedClient


@pytest.mark.parametrize("deadline_s", [0.0, -1.0, float("nan")])
def test_a_deadline_that_is_not_positive_is_named(deadline_s):
    with pytest.raises(ValueError, match=r"deadline_s=.* is out of range: must be > 0 seconds"):
        GuardedClient(Naive(), deadline_s=deadline_s)


@dataclass(frozen=True)
class _Silent:
    """Answers nothing when asked whether to send."""

    name: str = "silent"

    def initial(self, seed):
        return seed

    def decide(self, state, obs):
        return None, state


def test_a_policy_that_gives_no_action_is_an_error():
    client = GuardedClient(_Silent())
    client.begin(0.0)
    with pytest.raises(TypeError, match="policy 'silent' gave no action for Ready"):
        client.ready(0.1)

"""The ``rate_limit_v0`` limit server: binds to 127.0.0.1, answers, stops, names bad settings.

The agents that play against it are tested in ``tests/swi/test_live.py``.
"""

import numpy as np
import pytest

from swalab import envs
from swalab.envs.rate_limit_live import call, serve

DYN = envs.dynamics("rate_limit_v0", steps=12)


def test_server_binds_to_localhost_and_stops():
    import urllib.error
    import urllib.request

    with serve(DYN, step_s=0.5) as live:
        assert live.url.startswith("http://127.0.0.1:")
        assert call(live.url, 0) == 200
        request = urllib.request.Request(live.url + "/call", data=b"{}", method="POST")
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(request, timeout=2)


def test_bad_live_settings_are_named():
    with pytest.raises(ValueError, match=r"step_s=0 is out of range"), serve(DYN, step_s=0):
        pass
    leaky = pytest.raises(ValueError, match=r"refill='leaky' is not known")
    with leaky, serve(DYN, refill="leaky"):  # type: ignore[arg-type]
        pass
    assert np.isfinite(DYN.rate)

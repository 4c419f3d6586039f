"""Conformance checks and test doubles that ship with swalab.

Like ``pettingzoo.test``, these live inside the package so a third-party environment or
backend can be checked with one call (``swalab.testing.check_parallel_env(env_fn)``), a
result store against its own step rows (``check_result_store``), and a source tree against
the package's layer order (``check_layers``).
"""

from swalab.testing.env_checks import check_parallel_env
from swalab.testing.layers import check_layers
from swalab.testing.store_checks import check_result_store

__all__ = ["check_layers", "check_parallel_env", "check_result_store"]

"""Conformance checks and test doubles that ship with swalab.

Like ``pettingzoo.test``, these live inside the package so a third-party environment or
backend can be checked with one call (``swalab.testing.check_parallel_env(env_fn)``).
"""

from swalab.testing.env_checks import check_parallel_env
from swalab.testing.store_checks import check_result_store

__all__ = ["check_parallel_env", "check_result_store"]

"""A result store agrees with itself: every stored episode metric, recomputed from its step rows.

The runners compute episode metrics in different places (the numba kernel for model-based
cells, the LLM runner for LLM cells); this check recomputes them from the stored step rows
with :func:`swalab.analysis.episode_metrics`, so a runner that stores a number its own
steps do not support is caught, whichever runner and backend produced it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq

from swalab.metrics import episode_metrics


def check_result_store(root: str | Path, *, rel_tol: float = 1e-9) -> int:
    """Check every finished episode of the store at ``root``; return how many were checked.

    Episodes whose cell stored no step rows are skipped (nothing to recompute from).

    Raises:
        AssertionError: A stored metric differs from its recomputation (the message names
            the cell, seed, metric and both values), or an episode has no step rows while
            others of its cell do.
    """
    checked = 0
    for cell in sorted(Path(root).glob("cells/*/")):
        steps = pq.read_table(cell / "steps.parquet").to_pydict()
        if not steps["cell"]:
            continue
        episodes = pq.read_table(cell / "episodes.parquet").to_pylist()
        capacity = {ep["cell"]: ep["capacity"] for ep in episodes}
        caps = {(ep["cell"], ep["seed"]): ep["x_max_per_agent"] for ep in episodes}
        recomputed = episode_metrics(steps, capacity, caps)
        for ep in episodes:
            mine = recomputed.get((ep["cell"], ep["seed"]))
            if mine is None:
                raise AssertionError(f"cell {ep['cell']} seed {ep['seed']}: no step rows")
            for name, value in mine.items():
                stored = ep[name]
                pairs = (
                    list(zip(value, stored, strict=True))
                    if isinstance(value, list)
                    and isinstance(stored, list)
                    and len(value) == len(stored)
                    else [(value, stored)]
                )
                same = all(
                    (a is None and b is None)
                    or (
                        a is not None
                        and b is not None
                        and not isinstance(a, list)
                        and math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
                    )
                    for a, b in pairs
                )
                if not same:
                    raise AssertionError(
                        f"cell {ep['cell']} seed {ep['seed']}: stored {name} = {stored!r}, "
                        f"its step rows give {value!r}"
                    )
            checked += 1
    return checked

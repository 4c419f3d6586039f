"""A result store agrees with itself: every stored episode metric, recomputed from its step rows.

The runners compute episode metrics in different places (the numba kernel for model-based
cells, the LLM runner for LLM cells); this check recomputes them from the stored step rows
with :func:`swalab.analysis.episode_metrics`, so a runner that stores a number its own
steps do not support is caught, whichever runner and backend produced it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from swalab.analysis.metrics import episode_metrics


def _dilemma_metrics(steps: dict[str, list[Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """What a dilemma episode's step rows determine: overload, welfare, load, fairness."""
    import numpy as np

    from swalab.analysis.metrics import jain_fairness

    by: dict[tuple[str, int], dict[int, dict[int, int]]] = {}
    for r, (cell, seed, step, agent) in enumerate(
        zip(steps["cell"], steps["seed"], steps["step"], steps["agent"], strict=True)
    ):
        by.setdefault((cell, seed), {}).setdefault(step, {})[agent] = r
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for key, per_step in by.items():
        order = [per_step[t] for t in sorted(per_step)]
        rows = [[agents[i] for i in sorted(agents)] for agents in order]
        first = [r[0] for r in rows]
        demands = np.array([[steps["demand"][j] for j in r] for r in rows])
        out[key] = {
            "overload_rate": float(np.mean([steps["overloaded"][j] for j in first])),
            "mean_welfare": float(np.mean([steps["welfare"][j] for j in first])),
            "mean_load": float(np.mean([steps["load"][j] for j in first])),
            "fairness": float(jain_fairness(demands).mean()),
        }
    return out


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
        dilemma = episodes[0]["env"] not in (None, "congestion_v0")
        recomputed = _dilemma_metrics(steps) if dilemma else episode_metrics(steps, capacity, caps)
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
                same = all((a is None and b is None) or (
                    a is not None and b is not None and not isinstance(a, list)
                    and math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
                ) for a, b in pairs)  # fmt: skip
                if not same:
                    raise AssertionError(
                        f"cell {ep['cell']} seed {ep['seed']}: stored {name} = {stored!r}, "
                        f"its step rows give {value!r}"
                    )
            checked += 1
    return checked

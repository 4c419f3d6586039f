"""Revealed λ of every stored sweep under a directory (:mod:`swalab.experiments.revealed`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swalab.experiments.revealed import STEP_COLUMNS, UTILITIES, cell_rows


def reveal_rows(
    root: str | Path,
    *,
    utilities: tuple[str, ...] = UTILITIES,
    resamples: int = 200,
) -> list[dict[str, Any]]:
    """Revealed λ of every finished congestion-game cell under ``root`` (``COLUMNS``).

    Raises:
        FileNotFoundError: ``root`` holds no study.
        ValueError: An unknown utility model.
    """
    import pyarrow.parquet as pq

    from swalab.analysis.results import find_experiments
    from swalab.experiments.store import ResultStore

    unknown = sorted(set(utilities) - set(UTILITIES))
    if unknown:
        raise ValueError(f"utility {unknown[0]!r} is not known: choose scorer or game")
    base = Path(root)
    out: list[dict[str, Any]] = []
    for directory in find_experiments(base):
        store = ResultStore(directory)
        name = "." if directory == base else str(directory.relative_to(base))
        for key in sorted(store.finished()):
            cell = directory / "cells" / key
            if not (cell / "steps.parquet").is_file():
                continue
            meta = json.loads((cell / "cell.json").read_text("utf-8"))
            config = meta["config"]
            if config.get("kind") == "suite":  # its steps are the sweeps it played
                from swalab.experiments.studies.suite import SuiteCell, sweep_config

                config = sweep_config(SuiteCell.model_validate(config))
            steps = pq.read_table(cell / "steps.parquet", columns=list(STEP_COLUMNS))
            episodes = cell / "episodes.parquet"
            out.extend(
                cell_rows(
                    key,
                    config,
                    steps.to_pydict(),
                    pq.read_table(episodes).to_pydict() if episodes.is_file() else {},
                    experiment=name,
                    resamples=resamples,
                    utilities=utilities,
                )
            )
    return out

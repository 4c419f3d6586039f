"""Result directories as curves, summaries with intervals, and step-row metrics, on stores
whose answers are known by construction or recomputable from their own rows."""

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swalab.analysis import episode_metrics, load_results, summarize
from swalab.analysis.results import find_experiments
from swalab.cli import main
from swalab.experiments.store import EPISODE_SCHEMA, STEP_SCHEMA, ResultStore, table
from swalab.testing import check_result_store

BASE = {
    "env": "congestion_v0",
    "n_agents": 5,
    "capacity": 20.0,
    "beta": 1.6,
    "x_max": 10.0,
    "steps": 20,
    "scorer": "paper",
    "candidates": "grid",
    "k": 7,
    "grid_step": 0.25,
    "margin": 2.0,
    "gamma": 0.02,
    "belief": "ema",
    "alpha": 0.2,
    "initial_belief": 4.0,
    "status": "ok",
    "steps_played": 20,
}


def synthetic_store(root: Path, rows: list[dict]) -> Path:
    """A result directory whose episode rows are exactly ``rows`` (one cell per λ/params)."""
    cells: dict[str, list[dict]] = {}
    for r in rows:
        row = BASE | r
        key = f"{row['lam']}-{row['scorer']}-{row['beta']}-{row.get('model')}"
        cells.setdefault(key, []).append(row | {"cell": key})
    store = ResultStore(root)
    store.open("synthetic", sorted(cells), "name: synthetic\n")
    for key, eps in cells.items():
        store.write_cell(
            key, {}, {"steps": table([], STEP_SCHEMA), "episodes": table(eps, EPISODE_SCHEMA)}
        )
    return root


def test_curves_split_by_whatever_varies_and_welfare_gain_is_paired(tmp_path: Path) -> None:
    rows = []
    for scorer in ("paper", "consistent"):
        for lam, w in ((0.0, [1.0, 2.0, 3.0]), (0.5, [11.0, 12.0, 13.0])):
            for seed, welfare in enumerate(w):
                rows.append(
                    {
                        "scorer": scorer,
                        "lam": lam,
                        "seed": seed,
                        "mean_welfare": welfare,
                        "overload_rate": 1.0 - lam,
                    }
                )
    rows.append({"lam": 0.5, "seed": 9, "status": "failed", "error": "boom"})
    results = load_results(synthetic_store(tmp_path, rows))
    assert [c.params["scorer"] for c in results.curves] == ["consistent", "paper"]
    assert results.varying(results.curves[0]) == ["scorer"]
    paper = results.curves[1]
    assert paper.failed == 1
    assert results.label(paper) == "model-based · paper"
    at_half = summarize(paper)[1]
    # ΔW per seed is exactly 10: a paired interval of zero width.
    assert (at_half["welfare_gain"], at_half["welfare_gain_low"]) == (10.0, 10.0)
    assert at_half["mean_welfare"] == pytest.approx(12.0)
    assert at_half["seeds"] == 3 and np.isnan(at_half["pick_agreement"])


def test_welfare_gain_is_missing_without_lambda_zero(tmp_path: Path) -> None:
    rows = [{"lam": 0.5, "seed": s, "mean_welfare": 1.0} for s in range(2)]
    [curve] = load_results(synthetic_store(tmp_path, rows)).curves
    assert np.isnan(summarize(curve)[0]["welfare_gain"])


def test_a_folder_of_experiments_and_a_folder_of_none(tmp_path: Path) -> None:
    synthetic_store(tmp_path / "a", [{"lam": 0.0, "seed": 0}])
    synthetic_store(tmp_path / "b", [{"lam": 0.0, "seed": 0}])
    assert find_experiments(tmp_path) == [tmp_path / "a", tmp_path / "b"]
    results = load_results(tmp_path)
    assert [c.experiment for c in results.curves] == ["a", "b"]
    assert results.label(results.curves[0]) == "a · model-based · paper"
    with pytest.raises(FileNotFoundError, match="not a swalab result directory"):
        find_experiments(tmp_path / "a" / "cells")


def test_episode_metrics_by_hand() -> None:
    # Two agents, three steps, C = 10: loads 12, 8, 10 (only the first is overloaded).
    demands = [(6, 6), (2, 6), (5, 5)]
    steps = {k: [] for k in STEP_SCHEMA.names}
    for t, (a, b) in enumerate(demands):
        for i, x in enumerate((a, b)):
            row = {
                "cell": "c",
                "seed": 0,
                "step": t,
                "agent": i,
                "demand": float(x),
                "load": float(a + b),
                "welfare": float(a + b) - (4.0 if t == 0 else 0.0),
                "overloaded": a + b > 10,
                "fallback": "none" if t else "anchors",
                "proposal_error": "no number" if (t, i) == (0, 0) else None,
                "pick_agrees": [None, True, False][t],
                "pick_error": None,
            }
            for k in steps:
                steps[k].append(row.get(k))
    m = episode_metrics(steps, capacity=10.0)[("c", 0)]
    assert m["overload_rate"] == pytest.approx(1 / 3)
    assert m["mean_welfare"] == pytest.approx((8 + 8 + 10) / 3)
    assert m["mean_load"] == pytest.approx(10.0)
    assert m["utilisation"] == pytest.approx(1.0)
    jain_step2 = (2 + 6) ** 2 / (2 * (4 + 36))  # 0.8
    assert m["fairness"] == pytest.approx((1 + jain_step2 + 1) / 3)
    assert m["steps_to_stable"] == 1.0
    assert m["proposal_failure_rate"] == pytest.approx(1 / 6)
    assert m["fallback_rate"] == pytest.approx(2 / 6)
    assert m["pick_failure_rate"] == 0.0
    assert m["pick_agreement"] == pytest.approx(0.5)


def test_stored_model_based_metrics_equal_their_recomputation(tmp_path: Path) -> None:
    args = [
        "run",
        "reference_model_based",
        "--out",
        str(tmp_path),
        "--set",
        "seeds=2",
        "--set",
        "policy.candidates=random",
        "--set",
        "grid.lam=[0.0, 0.7, 0.8, 0.9]",
    ]
    assert main(args) == 0
    assert check_result_store(tmp_path) == 16


def test_the_store_check_catches_a_stored_number_its_steps_do_not_support(tmp_path: Path) -> None:
    assert (
        main(
            [
                "run",
                "reference_model_based",
                "--out",
                str(tmp_path),
                "--set",
                "seeds=1",
                "--set",
                "grid.lam=[0.8]",
                "--set",
                "policy.scorer=paper",
            ]
        )
        == 0
    )
    [cell] = (tmp_path / "cells").iterdir()
    episodes = pq.read_table(cell / "episodes.parquet")
    bad = episodes.set_column(
        episodes.schema.get_field_index("mean_load"), "mean_load", pa.array([99.0])
    )
    pq.write_table(bad, cell / "episodes.parquet")
    msg = "stored mean_load = 99.0, its step rows give 17.75"
    with pytest.raises(AssertionError, match=re.escape(msg)):
        check_result_store(tmp_path)

"""Model-based sweeps end to end: plan, run, store, query, resume — against independent truth."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from swalab.cli import main
from swalab.experiments import ConfigError, ResultStore, load_config, plan, query, run_experiment
from swalab.experiments.config import ExecutorConfig
from swalab.experiments.plan import make_tasks
from swalab.swi import SimulationConfig, simulate

SWEEP = {
    "name": "mb",
    "game": {"steps": 6},
    "policy": {"candidates": "random"},
    "seeds": 3,
    "grid": {"lam": [0.0, 0.7, 0.8], "policy.scorer": ["paper", "consistent"]},
    "executor": {"cells_per_task": 2, "workers": 1},
}


def _sorted(root: Path, name: str):
    keys = [("cell", "ascending"), ("seed", "ascending")]
    if name == "steps":
        keys += [("step", "ascending"), ("agent", "ascending")]
    files = sorted(root.glob(f"cells/*/{name}.parquet"))
    return pq.read_table(files).sort_by(keys)


def test_cell_hash_ignores_where_and_how_it_runs() -> None:
    a = plan(load_config(SWEEP))
    b = plan(load_config(SWEEP, ["name=other", "out=/x", "executor.kind=ray"]))
    assert [c.key for c in a] == [c.key for c in b]
    c = plan(load_config(SWEEP, ["game.beta=2.0"]))
    assert not {x.key for x in a} & {x.key for x in c}
    assert len({x.key for x in a}) == 6


def test_tasks_group_cells_of_one_engine_batch() -> None:
    cells = plan(load_config(SWEEP))
    tasks = make_tasks(cells, ExecutorConfig(cells_per_task=2))
    assert sorted(len(t.cells) for t in tasks) == [1, 1, 2, 2]  # 3 λ per scorer, chunks of 2
    for t in tasks:
        assert len({c.config.policy.scorer for c in t.cells}) == 1


def test_sweep_matches_the_per_agent_path(tmp_path: Path) -> None:
    summary = run_experiment(load_config(SWEEP), out=tmp_path)
    assert (summary.planned, summary.ran, summary.failed) == (6, 6, [])
    _, rows = query(
        tmp_path,
        "SELECT scorer, lam, avg(overload_rate), avg(mean_welfare), "
        "avg(mean_load), count(*) FROM episodes GROUP BY ALL",
    )
    for scorer, lam, rate, welfare, load, n in rows:
        ref = simulate(
            SimulationConfig(steps=6, candidates="random", scorer=scorer),
            [lam],
            seeds=3,
            engine="loop",
        )[0]
        assert n == 3
        assert (rate, welfare, load) == (ref.overload_rate, ref.mean_welfare, ref.mean_load)


def test_step_rows_obey_the_payoffs(tmp_path: Path) -> None:
    run_experiment(load_config(SWEEP), out=tmp_path)
    steps = _sorted(tmp_path, "steps")
    assert steps.num_rows == 6 * 3 * 6 * 5
    d = steps.to_pydict()
    by_step: dict[tuple, list[float]] = {}
    for i in range(steps.num_rows):
        by_step.setdefault((d["cell"][i], d["seed"][i], d["step"][i]), []).append(d["demand"][i])
        load, cap, beta = d["load"][i], 20.0, 1.6
        excess = max(0.0, load - cap)
        assert d["welfare"][i] == pytest.approx(load - beta * excess)
        assert d["reward"][i] == pytest.approx(d["demand"][i] - beta / 5 * excess)
        assert d["overloaded"][i] == (load > cap)
        cands, util = np.array(d["candidates"][i]), np.array(d["utility"][i])
        assert {0.0, 2.0, 3.0, 4.0, 4.5} <= set(cands)
        best = cands[util == util.max()].min()  # ties go to the smallest action
        assert d["demand"][i] == best == d["argmax_demand"][i]
        lam = d["lam"][i]
        assert util == pytest.approx(
            (1 - lam) * np.array(d["private"][i]) + lam * np.array(d["group"][i])
        )
    for (cell, seed, step), demands in by_step.items():
        rows = [
            i
            for i in range(steps.num_rows)
            if (d["cell"][i], d["seed"][i], d["step"][i]) == (cell, seed, step)
        ]
        assert d["load"][rows[0]] == pytest.approx(sum(demands))


def test_rerun_skips_finished_cells_and_resumes_missing_ones(tmp_path: Path) -> None:
    config = load_config(SWEEP)
    run_experiment(config, out=tmp_path)
    before = _sorted(tmp_path, "episodes")
    again = run_experiment(config, out=tmp_path)
    assert (again.skipped, again.ran) == (6, 0)
    # Lose two cells and leave junk in staging, as a crash would.
    import shutil

    gone = sorted((tmp_path / "cells").iterdir())[:2]
    for g in gone:
        shutil.rmtree(g)
    (tmp_path / ".staging" / "junk.123").mkdir(parents=True)
    third = run_experiment(config, out=tmp_path)
    assert (third.skipped, third.ran) == (4, 2)
    assert not (tmp_path / ".staging" / "junk.123").exists()
    assert _sorted(tmp_path, "episodes").equals(before)  # bit-identical
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert sorted(manifest["planned_cells"]) == sorted(
        p.name for p in (tmp_path / "cells").iterdir()
    )
    assert manifest["swalab_version"] and manifest["machine"]["cpus"]


def test_out_dir_of_another_experiment_is_refused(tmp_path: Path) -> None:
    run_experiment(load_config(SWEEP), out=tmp_path)
    with pytest.raises(ConfigError, match="holds another experiment"):
        run_experiment(load_config(SWEEP, ["game.beta=2"]), out=tmp_path)
    junk = tmp_path / "other"
    junk.mkdir()
    (junk / "x.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and has no manifest"):
        run_experiment(load_config(SWEEP), out=junk)
    assert (junk / "x.txt").read_text() == "mine"


def test_process_pool_gives_the_same_cells(tmp_path: Path) -> None:
    run_experiment(load_config(SWEEP), out=tmp_path / "one")
    run_experiment(load_config(SWEEP, ["executor.workers=2"]), out=tmp_path / "two")
    for name in ("episodes", "steps"):
        assert _sorted(tmp_path / "one", name).equals(_sorted(tmp_path / "two", name))


def test_query_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ResultStore(tmp_path)
    store.open("p", [], "")
    assert main(["query", str(tmp_path), "SELECT count(*) AS n FROM steps", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 0}]  # empty store, full schema
    run_experiment(load_config(SWEEP, ["seeds=1"]), out=tmp_path / "r")
    sql = "SELECT scorer, lam, overload_rate FROM episodes ORDER BY scorer, lam"
    assert main(["query", str(tmp_path / "r"), sql, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["scorer"], r["lam"]) for r in rows][:2] == [("consistent", 0.0), ("consistent", 0.7)]
    assert main(["query", str(tmp_path / "r"), "SELECT nope FROM episodes"]) == 2
    assert "nope" in capsys.readouterr().err


def test_plans_keep_the_cell_hashes_of_stores_written_before_study_kinds() -> None:
    """Hashes measured on stores written by swalab before kinds, retries and engines existed:
    a store from then resumes without recomputing a cell."""
    from swalab.experiments import get_kind, load_config, preset_path
    from swalab.experiments.cells import plan_hash

    for preset, sets, plan_key, first in (
        ("reference_model_based", ["seeds=2"], "38e0e88ad94e8724", "b5638d7e633d6a27"),
        ("rate_limit", ["seeds=1"], "40e0f3f7a27a6f7e", "f89c88ade6c8c919"),
    ):
        config = load_config(preset_path(preset), sets)
        cells = get_kind(config.kind).plan(config, preset)
        assert (plan_hash(cells), cells[0].key) == (plan_key, first), preset


def _progress_of(tmp_path: Path, *, terminal: bool) -> str:
    import io

    from rich.console import Console

    sink = io.StringIO()
    console = Console(file=sink, force_terminal=terminal, width=160)
    config = load_config(SWEEP, ["seeds=2", "grid.lam=[0.0, 1.0]"])
    run_experiment(config, out=tmp_path / f"t{terminal}", show_progress=True, console=console)
    return sink.getvalue()


def test_progress_counts_cells_episodes_and_decisions_on_a_terminal_only(tmp_path: Path) -> None:
    drawn = _progress_of(tmp_path, terminal=True)
    # 2 λ × 2 scorers = 4 cells of 2 episodes; the rate is measured, so only its unit is known.
    assert "4/4" in drawn and "8 episodes" in drawn and "decisions/s" in drawn, drawn
    assert _progress_of(tmp_path, terminal=False) == ""


def test_llm_cells_of_one_model_protocol_and_n_share_a_task() -> None:
    """The sweep-level executor: every congestion cell of a model, protocol and N in one
    task (one call per step for all), whatever its λ, β, horizon or seeds; a dilemma's
    dynamics are one per task."""
    llm = {
        "name": "llm",
        "game": {"steps": 2},
        "policy": {"candidates": "llm"},
        "model": {"backend": "llamacpp"},
        "seeds": 1,
        "grid": {"lam": [0.0, 1.0], "game.beta": [1.2, 1.6], "game.steps": [2, 3]},
    }
    tasks = make_tasks(plan(load_config(llm)), ExecutorConfig())
    assert [len(t.cells) for t in tasks] == [8]
    wider = {**llm, "grid": {**llm["grid"], "game.n_agents": [5, 6], "policy.k": [3, 7]}}
    tasks = make_tasks(plan(load_config(wider)), ExecutorConfig())
    assert [len(t.cells) for t in tasks] == [8] * 4
    dilemma = {
        "name": "d",
        "env": "context_budget_v0",
        "env_params": {"mode": "text"},
        "game": {"n_agents": 3, "steps": 2},
        "policy": {"scorer": "judge", "candidates": "llm", "k": 3, "anchors": []},
        "model": {"backend": "llamacpp"},
        "grid": {"lam": [0.0, 1.0], "game.steps": [2, 3]},
    }
    assert [len(t.cells) for t in make_tasks(plan(load_config(dilemma)), ExecutorConfig())] == [
        2,
        2,
    ]

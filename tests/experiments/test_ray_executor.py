"""The Ray executor on a local Ray instance gives the local executor's results."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from swalab.experiments import load_config, run_experiment

pytest.importorskip("ray")

MODEL_BASED = {
    "name": "ray",
    "game": {"steps": 8},
    "policy": {"candidates": "random"},
    "seeds": 3,
    "grid": {"lam": [0.0, 0.75, 0.9], "game.beta": [1.6, 3.0]},
    "executor": {"cells_per_task": 2},
}


def _table(out: Path, name: str):
    keys = [("cell", "ascending"), ("seed", "ascending")]
    if name == "steps":
        keys += [("step", "ascending"), ("agent", "ascending")]
    return pq.read_table(sorted(out.glob(f"cells/*/{name}.parquet"))).sort_by(keys)


@pytest.mark.slow
def test_ray_and_local_give_identical_cells(tmp_path: Path) -> None:
    local = run_experiment(load_config(MODEL_BASED), out=tmp_path / "local")
    ray_run = run_experiment(
        load_config(MODEL_BASED, ["executor.kind=ray", "executor.workers=2"]),
        out=tmp_path / "ray",
    )
    assert (local.ran, ray_run.ran, ray_run.failed) == (6, 6, [])
    for name in ("episodes", "steps"):  # model-based cells: bit-identical
        assert _table(tmp_path / "local", name).equals(_table(tmp_path / "ray", name))


@pytest.mark.slow
def test_ray_actor_serves_llm_cells(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    cache = tmp_path / "responses.sqlite"
    data = {
        "name": "ray-llm",
        "game": {"steps": 2},
        "policy": {"candidates": "llm"},
        "model": {"backend": "llamacpp", "name": "gemma-3-270m", "cache": str(cache)},
        "seeds": 1,
        "grid": {"lam": [0.5, 0.9]},
    }
    local = run_experiment(load_config(data), out=tmp_path / "local")
    ray_run = run_experiment(load_config(data, ["executor.kind=ray"]), out=tmp_path / "ray")
    assert (local.ran, ray_run.ran, ray_run.failed) == (2, 2, [])
    a, b = _table(tmp_path / "local", "steps"), _table(tmp_path / "ray", "steps")
    same = [
        "cell",
        "seed",
        "step",
        "agent",
        "proposals",
        "candidates",
        "utility",
        "demand",
        "load",
        "welfare",
    ]
    assert a.select(same).equals(b.select(same))  # identical through the response cache
    assert all(b.column("cached").to_pylist())  # the Ray run was served from the cache
    manifest = (tmp_path / "ray" / "manifest.json").read_text()
    assert '"revision"' in manifest and "gemma-3-270m" in manifest

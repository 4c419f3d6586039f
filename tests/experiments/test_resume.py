"""SIGKILL a real sweep process mid-run, rerun it, and count every cell and row exactly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from swalab.experiments import load_config, plan, run_experiment

MODEL_BASED = {
    "name": "kill",
    "game": {"steps": 20},
    "policy": {"candidates": "random"},
    "seeds": 4,
    "grid": {"lam": {"from": 0, "to": 1, "step": 0.02}},
    "executor": {"cells_per_task": 1, "workers": 1},
}


def _committed(out: Path) -> list[Path]:
    cells = out / "cells"
    return sorted(cells.iterdir()) if cells.exists() else []


def _start(config: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "swalab.cli", "run", str(config), "--out", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after(config: Path, out: Path, cells: int, timeout: float = 300) -> None:
    """Start a run and SIGKILL it once ``cells`` cells are committed, while it still runs."""
    proc = _start(config, out)
    deadline = time.monotonic() + timeout
    while len(_committed(out)) < cells:
        assert proc.poll() is None, f"run ended before the kill: {proc.stderr.read()!r}"
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _check_visible_cells_whole(out: Path) -> None:
    for cell in _committed(out):
        assert sorted(p.name for p in cell.iterdir()) == [
            "cell.json",
            "episodes.parquet",
            "steps.parquet",
        ]
        pq.read_table(cell / "steps.parquet")
        pq.read_table(cell / "episodes.parquet")


def _table(out: Path, name: str):
    keys = [("cell", "ascending"), ("seed", "ascending")]
    if name == "steps":
        keys += [("step", "ascending"), ("agent", "ascending")]
    return pq.read_table(sorted(out.glob(f"cells/*/{name}.parquet"))).sort_by(keys)


def _interrupted_then_resumed(tmp_path: Path, data: dict, kills: list[int]) -> Path:
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    for n in kills:
        _kill_after(config, out, n)
        _check_visible_cells_whole(out)
    done = subprocess.run(
        [sys.executable, "-m", "swalab.cli", "run", str(config), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
def test_model_based_sweep_survives_sigkill(tmp_path: Path) -> None:
    out = _interrupted_then_resumed(tmp_path, MODEL_BASED, kills=[2, 20])
    cells = plan(load_config(MODEL_BASED))
    assert sorted(p.name for p in _committed(out)) == sorted(c.key for c in cells)
    assert not any((out / ".staging").iterdir()) if (out / ".staging").exists() else True
    episodes, steps = _table(out, "episodes"), _table(out, "steps")
    assert episodes.num_rows == len(cells) * 4
    assert steps.num_rows == len(cells) * 4 * 20 * 5
    # Bit-identical to a run that was never interrupted.
    clean = tmp_path / "clean"
    run_experiment(load_config(MODEL_BASED), out=clean)
    assert episodes.equals(_table(clean, "episodes"))
    assert steps.equals(_table(clean, "steps"))


LLM = {
    "name": "kill-llm",
    "game": {"steps": 2},
    "policy": {"candidates": "llm"},
    "model": {"backend": "llamacpp", "name": "gemma-3-270m", "cache": False},
    "seeds": 1,
    "grid": {"game.beta": [1.6, 3.0], "lam": [0.5, 0.9]},
}


@pytest.mark.slow
def test_llm_sweep_survives_sigkill(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    out = _interrupted_then_resumed(tmp_path, LLM, kills=[1])
    cells = plan(load_config(LLM))
    assert sorted(p.name for p in _committed(out)) == sorted(c.key for c in cells)
    episodes, steps = _table(out, "episodes"), _table(out, "steps")
    assert episodes.num_rows == 4 and steps.num_rows == 4 * 2 * 5
    assert set(episodes.column("status").to_pylist()) == {"ok"}
    assert min(episodes.column("prompts").to_pylist()) == 2 * 5  # one proposal per agent/step
    # Step rows carry each decision's share of the calls; episodes sum them.
    cols = ("cell", "seed", "tokens_out")
    per_episode: dict[tuple, int] = {}
    for cell, seed, tok in zip(*(steps.column(c).to_pylist() for c in cols), strict=True):
        per_episode[(cell, seed)] = per_episode.get((cell, seed), 0) + tok
    for cell, seed, tok in zip(*(episodes.column(c).to_pylist() for c in cols), strict=True):
        assert per_episode[(cell, seed)] == tok
    assert sum(per_episode.values()) > 0

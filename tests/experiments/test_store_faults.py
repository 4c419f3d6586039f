"""A store is written by one run at a time, and a damaged one is named, never obeyed.

Each test causes the fault for real: a second writer, a killed writer's lock, a corrupt
Parquet file, an empty manifest, an output path that is a file, a failed episode, a full
disk (a tiny tmpfs when this machine lets us mount one).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from swalab.cli import main
from swalab.experiments import ResultStore, load_config, preset_path, run_experiment
from swalab.experiments.store import StoreError

SMALL = ["seeds=1", "grid.lam=[0.0, 0.5, 1.0]"]


def small_sweep(out: Path):
    config = load_config(preset_path("reference_model_based"), SMALL)
    return config, run_experiment(config, out=out)


def test_a_second_writer_is_refused_and_told_who_writes(tmp_path, capsys):
    config = load_config(preset_path("reference_model_based"), SMALL)
    with ResultStore(tmp_path).writing():  # another run holds the store
        with pytest.raises(StoreError, match=rf"pid {os.getpid()} on .* since"):
            run_experiment(config, out=tmp_path)
        code = main(["run", "reference_model_based", "--out", str(tmp_path), "--set", SMALL[0]])
    err = capsys.readouterr().err
    assert code == 2 and "another swalab run is writing here" in err
    assert len(err.strip().splitlines()) == 1
    assert run_experiment(config, out=tmp_path).ran == 6  # the lock is free again


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    holder = textwrap.dedent(f"""
        import time
        from swalab.experiments import ResultStore
        with ResultStore({str(tmp_path)!r}).writing():
            print("locked", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    config = load_config(preset_path("reference_model_based"), SMALL)
    with pytest.raises(StoreError, match=f"pid {proc.pid}"):
        run_experiment(config, out=tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_experiment(config, out=tmp_path).ran == 6


def test_a_corrupt_cell_is_named_by_readers_and_recomputed_by_the_next_run(tmp_path, capsys):
    config, first = small_sweep(tmp_path)
    assert first.ran == 6
    victim = sorted((tmp_path / "cells").iterdir())[0]
    (victim / "episodes.parquet").write_bytes(b"not parquet at all")
    assert main(["query", str(tmp_path), "SELECT count(*) FROM episodes"]) == 2
    err = capsys.readouterr().err
    assert f"{victim / 'episodes.parquet'}: damaged" in err and len(err.splitlines()) == 1
    assert main(["report", str(tmp_path)]) == 2
    assert "episodes.parquet: damaged" in capsys.readouterr().err
    again = run_experiment(config, out=tmp_path)
    assert (again.skipped, again.ran) == (5, 1)
    assert again.repaired[0][0] == victim.name and "episodes.parquet" in again.repaired[0][1]
    kept = list((tmp_path / ".damaged").iterdir())  # nothing finished is lost
    assert len(kept) == 1 and (kept[0] / "episodes.parquet").read_bytes() == b"not parquet at all"
    assert main(["query", str(tmp_path), "SELECT count(*) FROM episodes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"count_star()": 6}]


def test_a_damaged_manifest_and_an_output_that_is_a_file_are_one_line(tmp_path, capsys):
    small_sweep(tmp_path / "s")
    (tmp_path / "s" / "manifest.json").write_text("")
    for args in (
        ["query", str(tmp_path / "s"), "SELECT 1"],
        ["report", str(tmp_path / "s")],
        ["run", "reference_model_based", "--out", str(tmp_path / "s")],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "manifest.json: damaged" in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "file").write_text("x")
    assert main(["run", "reference_model_based", "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_failed_episodes_fail_their_cell_and_the_next_run_retries_it(
    tmp_path, capsys, quick_on_openai
):
    """A dead endpoint: every episode fails; no cell is committed; exit 1; retried later."""
    args = quick_on_openai(tmp_path, "http://127.0.0.1:9/v1", "model.attempts=1")
    pytest.importorskip("openai")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "1 cell(s) failed" in err and "episodes failed" in err and "APIConnectionError" in err
    assert ResultStore(tmp_path).finished() == set()
    failures = ResultStore(tmp_path).failures()
    assert len(failures) == 1 and "APIConnectionError" in next(iter(failures.values()))["error"]
    assert "failed" in (tmp_path / "run.log").read_text()
    assert main(["report", str(tmp_path)]) == 2
    assert "1 cell(s) failed, e.g.: 1 of 1 episodes failed" in capsys.readouterr().err
    assert main(args) == 1  # retried, not skipped as finished
    assert "1 cell(s) failed" in capsys.readouterr().err


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small filesystem of our own to fill or make read-only (skips where none mounts)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_full_disk_fails_the_cells_it_cannot_write(tmp_path, capsys):
    with tmpfs(tmp_path / "disk", "96k") as disk:
        code = main(
            [
                "run",
                "reference_model_based",
                "--out",
                str(disk / "s"),
                "--set",
                "seeds=1",
                "--set",
                "executor.workers=1",
            ]
        )
        err = capsys.readouterr().err
        assert code == 1, err
        assert "No space left on device" in err and "cell(s) failed" in err
        written = ResultStore(disk / "s").finished()
        assert len(written) < 42  # what fitted is kept; the rest is retried by a rerun


def test_a_read_only_store_is_read_and_never_written(tmp_path, capsys):
    run = ["phase", "--lam", "0,1", "--beta", "2", "--seeds", "1", "--steps", "5"]
    with tmpfs(tmp_path / "disk", "4m") as disk:
        store = disk / "s"
        assert main(["--quiet", *run, "--out", str(store)]) == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        capsys.readouterr()
        assert main(["query", str(store), "select count(*) as n from phase"]) == 0
        assert main(["report", str(store)]) == 2
        err = capsys.readouterr().err.strip()
        assert "the report cannot be written there (Read-only file system)" in err
        assert len(err.splitlines()) == 1 and "--out" in err
        assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
        assert (tmp_path / "rep" / "report.html").is_file()
        assert main([*run, "--out", str(store)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith("cannot be written (Read-only file system)") and "\n" not in err

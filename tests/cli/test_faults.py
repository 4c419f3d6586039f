"""The probes of a hostile-but-fair user, each caused for real: every one ends in a clear
one-line error or a correct result, and nothing is written outside the store."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swalab.cli import main
from swalab.experiments import ResultStore


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    return code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store") / "ref"
    assert (
        main(["run", "reference_model_based", "--out", str(root), "--set", "seeds=1", "--json"])
        == 0
    )
    return root


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("COPY (SELECT 1) TO '{tmp}/anywhere.csv'", "COPY is not a read"),
        ("ATTACH '{tmp}/other.duckdb' AS d; CREATE TABLE d.t AS SELECT 1", "ATTACH is not a read"),
        ("CREATE TABLE t AS SELECT 1", "CREATE is not a read"),
        ("INSTALL httpfs", "INSTALL is not a read"),
        ("load httpfs", "LOAD is not a read"),
        ("SELECT * FROM read_text('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM glob('/*')", "file system operations are disabled"),
        ("SELECT * FROM read_parquet('{tmp}/*.parquet')", "file system operations are disabled"),
        ("SET enable_external_access=true", "SET is not a read"),
    ],
)
def test_query_reads_the_store_and_nothing_else(store, tmp_path, capsys, sql, needle):
    code, _, err = run(capsys, "query", str(store), sql.format(tmp=tmp_path))
    assert one_line_error(code, err) and needle in err, err
    assert list(tmp_path.iterdir()) == []
    code, out, _ = run(capsys, "query", str(store), "SELECT count(*) AS n FROM episodes", "--json")
    assert code == 0 and json.loads(out) == [{"n": 42}]


def test_a_run_ends_with_its_headline(capsys, tmp_path):
    code, out, _ = run(
        capsys, "run", "reference_model_based", "--out", str(tmp_path), "--set", "seeds=1"
    )
    assert code == 0 and "Where each system switches" in out and "0.725" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["run", "reference_model_based", "--set", "grid.lam={from: 0, to: 1, step: 1e-9}"],
            "values; at most 1,000,000 per axis",
        ),
        (["phase", "--lam", "0:1:100000", "--beta", "1:5:100000"], "agent decisions"),
        (["lockin", "--initial-belief", "0:10:1000000000"], "count 1,000,000,000 is too large"),
        (
            ["run", "reference_model_based", "--set", "policy.grid_step=1e-9"],
            "candidates per agent and step",
        ),
        (["run", "reference_model_based", "--set", "seeds=1000000"], "step rows"),
        (["simulate", "--steps", "100000000000000000000"], "less than or equal to 1000000000"),
        (
            ["live", "--lam", "0,1", "--steps", "1000000", "--step-seconds", "60"],
            "hours of live traffic",
        ),
    ],
)
def test_work_is_bounded_before_it_starts(capsys, args, needle):
    start = time.perf_counter()
    code, _, err = run(capsys, *args)
    assert one_line_error(code, err) and needle in err, err
    assert time.perf_counter() - start < 30


def test_a_config_is_plain_data(tmp_path, capsys):
    files = {
        "bomb.yaml": "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c]\n",
        "dup.yaml": "name: a\nseeds: 2\nseeds: 3\n",
        "empty_lam.yaml": "lam: []\n",
    }
    needles = {
        "bomb.yaml": "alias *a refused",
        "dup.yaml": "line 3: duplicate key 'seeds'",
        "empty_lam.yaml": "lam=[]: List should have at least 1 item",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        code, _, err = run(capsys, "run", str(tmp_path / name), "--out", str(tmp_path / "o"))
        assert one_line_error(code, err) and needles[name] in err, err
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    code, _, err = run(capsys, "run", str(tmp_path / "latin1.yaml"))
    assert one_line_error(code, err) and "latin1.yaml: not UTF-8 text" in err
    code, _, err = run(capsys, "run", "quick", "--set", "game=[1")
    assert one_line_error(code, err) and "expected ',' or ']'" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("swalab ")


NUMERIC = {
    "threshold": ["--agents", "--beta", "--capacity", "--x-max", "--margin", "--gamma", "--alpha"],
    "equilibrium --lam 0.5": ["--agents", "--beta", "--capacity", "--x-max"],
    "simulate --lam 0.5 --seeds 1 --steps 2": [
        "--agents",
        "--capacity",
        "--beta",
        "--x-max",
        "--k",
        "--grid-step",
        "--margin",
        "--gamma",
        "--alpha",
        "--initial-belief",
        "--seeds",
    ],
    "phase --lam 0.5 --beta 2 --seeds 1 --steps 2": ["--seeds", "--capacity", "--margin"],
    "surface --lam-low 0.5 --seeds 1 --steps 2": ["--agents", "--lam-high", "--capacity"],
    "stability --alpha 0.2 --agents 5 --seeds 1 --steps 2": ["--lam", "--capacity-per-agent"],
    "lockin --initial-belief 1 --lam 0.5 --seeds 1 --steps 2": ["--agents", "--gamma"],
    "drift --population 10 --rounds 2 --seeds 1 --steps 2": ["--population", "--rate", "--beta"],
}
EXTREMES = ["1e308", "-1e308", "inf", "nan", "1e-320", "99999999999999999999", "-7"]


@pytest.mark.parametrize("command", list(NUMERIC))
def test_numbers_at_the_edge_are_refused_or_handled(command, capsys):
    for flag in NUMERIC[command]:
        for value in EXTREMES:
            code, _, err = run(capsys, *command.split(), flag, value)
            assert code in (0, 2) and "Traceback" not in err, (command, flag, value, err)
            if code == 2:
                assert len(err.strip().splitlines()) == 1, (command, flag, value, err)


@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
)
def test_closed_forms_take_any_number(beta, capacity, agents):
    code = main(
        [
            "threshold",
            "--beta",
            repr(beta),
            "--capacity",
            repr(capacity),
            "--agents",
            str(agents),
            "--json",
        ]
    )
    assert code in (0, 2)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "preset", "cells"),
    [
        (signal.SIGINT, 130, "phase_paper", 41),
        # Step tables of 1,000 rows a cell: results large enough that a worker is often
        # killed halfway through sending one (which once left the pool waiting forever).
        (signal.SIGTERM, 143, "severity_model_based", 252),
        (signal.SIGINT, 130, "severity_model_based", 252),
    ],
)
def test_an_interrupted_run_stops_within_seconds_and_resumes(tmp_path, signum, code, preset, cells):
    out = tmp_path / "study"
    args = [
        sys.executable,
        "-m",
        "swalab.cli",
        "run",
        preset,
        "--out",
        str(out),
        "--set",
        "executor.workers=2",
        "--set",
        "executor.cells_per_task=1",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ResultStore(out).finished() and time.time() < deadline:
        time.sleep(0.2)
    workers = _children(proc.pid)
    assert workers, "the run should have started its worker processes"
    sent = time.perf_counter()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert time.perf_counter() - sent < 15
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    assert f"interrupted ({signal.Signals(signum).name})" in lines[0]
    assert "rerun the same command to resume" in lines[0]
    time.sleep(1)
    assert not [p for p in workers if _alive(p)], "worker processes outlived the run"
    finished = ResultStore(out).finished()
    again = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["finished_before"] == len(finished) and summary["ran"] == cells - len(finished)


def test_documented_overrides_work_and_answers_that_do_not_parse_warn(
    tmp_path, capsys, quick_on_openai
):
    """The presets' headers document ``--set model.options.base_url=…``; a server that
    answers prose makes every proposal fail to parse: the run says so and what to do."""
    pytest.importorskip("openai")
    from swalab.testing.servers import completion, fixed_reply

    with fixed_reply(completion("lorem ipsum")) as url:
        code, _, err = run(capsys, *quick_on_openai(tmp_path, url))
    assert code == 0, err
    assert "100% of the proposals of openai/x did not parse" in err
    assert "model.options.structured" in err
    report = main(["report", str(tmp_path)])
    assert report == 0 and "did not parse" in (tmp_path / "report.html").read_text()
    assert os.path.exists(tmp_path / "report.html")


@pytest.mark.slow
def test_ctrl_c_while_a_request_hangs_stops_at_once(tmp_path, quick_on_openai):
    """A server that accepts and never answers; the run's request timeout is 10 minutes."""
    pytest.importorskip("openai")
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts (the kernel does) and never answers
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    args = [sys.executable, "-m", "swalab.cli", *quick_on_openai(tmp_path / "o", url)]
    args += ["--set", "model.options.timeout=600"]
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(6)  # the first step's requests are in flight
        assert proc.poll() is None
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert time.perf_counter() - sent < 10, err
    finally:
        listener.close()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted (SIGINT): 0 of 1 cells finished" in err


@pytest.mark.slow
def test_sigterm_outside_a_run_is_one_line_and_143(tmp_path):
    """While a command analyses and draws (here: a report), SIGTERM ends it the same way."""
    store = tmp_path / "s"
    args = [sys.executable, "-m", "swalab.cli"]
    sweep = ["run", "reference_model_based", "--set", "seeds=5", "--out", str(store)]
    subprocess.run([*args, "--quiet", *sweep], check=True, capture_output=True)
    for _ in range(5):  # on a loaded machine the report may finish before we look: again
        shutil.rmtree(store / "figures", ignore_errors=True)
        proc = subprocess.Popen(
            [*args, "report", str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 60
        while not (store / "figures").exists() and time.time() < deadline:  # drawing began
            time.sleep(0.02)
        proc.send_signal(signal.SIGSTOP)  # frozen mid-drawing, unless it already finished
        time.sleep(0.1)
        if proc.poll() is None:
            break
        proc.communicate(timeout=60)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip() == "swalab: interrupted (SIGTERM)", err


def test_a_failed_llm_simulation_says_why_and_exits_1(capsys):
    """Every episode fails against a dead endpoint: the cause is printed, not a table crash."""
    pytest.importorskip("openai")
    code, _, err = run(
        capsys,
        *("simulate", "--backend", "openai", "--model", "x", "--lam", "0.5", "--seeds", "1"),
        *("--steps", "1", "--base-url", "http://127.0.0.1:9/v1"),
    )
    assert code == 1 and "Traceback" not in err and "TypeError" not in err, err
    assert "APIConnectionError" in err and "rerun the same command to retry them" in err

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swalab.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_threshold_json(capsys):
    code, out, _ = run(capsys, "threshold", "--agents", "5", "--beta", "1.6", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["lambda_star"] == pytest.approx(0.85)
    assert data["lambda_tilde"] == pytest.approx(0.75)


def test_threshold_json_reports_no_switch_as_null(capsys):
    _, out, _ = run(capsys, "threshold", "--beta", "0.5", "--json")
    assert json.loads(out)["lambda_tilde"] is None


def test_equilibrium_json_per_agent_lambda(capsys):
    code, out, _ = run(
        capsys,
        "equilibrium",
        "--agents",
        "5",
        "--beta",
        "1.6",
        "--lam",
        "0.9,0.9,0.9,0.9,0",
        "--json",
    )
    data = json.loads(out)
    assert code == 0
    assert data["demands"] == pytest.approx([2.5, 2.5, 2.5, 2.5, 10.0])
    assert data["load"] == pytest.approx(20.0)
    assert data["overloaded"] is False
    assert data["welfare"] == pytest.approx(20.0)


def test_equilibrium_selfish_table(capsys):
    code, out, _ = run(capsys, "equilibrium", "--lam", "0")
    assert code == 0 and "welfare" in out and "True" in out


def test_simulate_json_keys_and_delta(capsys):
    code, out, _ = run(capsys, "simulate", "--lam", "0,0.8", "--seeds", "2", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [r["lam"] for r in rows] == [0.0, 0.8]
    for r in rows:
        assert {"lam", "overload_rate", "mean_welfare", "delta_welfare"} <= set(r)
    assert rows[0]["delta_welfare"] == 0.0
    assert rows[1]["overload_rate"] == 0.0


def test_simulate_table_names_both_thresholds(capsys):
    code, out, _ = run(capsys, "simulate", "--lam", "0.8", "--seeds", "1")
    assert code == 0 and "λ*=0.85" in out and "λ̃=0.75" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["threshold", "--agents", "1"], "--agents=1 is out of range"),
        (["threshold", "--beta", "abc"], "--beta"),
        (["simulate", "--lam", "0.5,x"], "--lam: 'x' is not a number"),
        (["simulate", "--lam", "0.5,2"], "--lam[1]=2.0 is out of range"),
        (["simulate", "--scorer", "foo"], "--scorer=\"foo\": Input should be 'paper'"),
        (["simulate", "--candidates", "foo"], "--candidates=\"foo\": Input should be 'grid'"),
        (["simulate", "--anchors", ""], "--anchors"),
        (["equilibrium", "--lam", "0.1,0.2"], "one per agent (5)"),
        (["equilibrium"], "--lam"),
        (["nope"], "nope"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(capsys, args, needle):
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swalab: error:")
    assert needle in lines[0]
    assert "Traceback" not in err


def test_installed_script_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "swalab.cli", "threshold", "--capacity", "-3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "swalab: error: --capacity=-3.0 is out of range: must be a finite number > 0"
    )


def test_bench_refuses_to_report_when_loop_and_engine_disagree(monkeypatch):
    """The benchmark checks that both paths did the same work; break one and it must fail."""
    import swalab.experiments.studies.bench as bench

    real = bench.run_episode

    def corrupted(config, lam, seed, source=None):
        episode = real(config, lam, seed, source)
        episode.demands[0, 0] += 1.0
        return episode

    monkeypatch.setattr(bench, "run_episode", corrupted)
    with pytest.raises(AssertionError, match="disagree"):
        bench.engine_benchmark(quick=True)


def test_bench_engine_quick_json_smoke(capsys):
    code, out, _ = run(capsys, "bench", "engine", "--quick", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"engine_decisions_per_s", "loop_decisions_per_s", "ratio"} <= set(data)
    assert data["engine_decisions_per_s"] > 0 and data["ratio"] > 0
    assert [r["agents"] for r in data["rows"]] == [100, 1000]
    assert data["drift_agents"] == 1000 and data["drift_rounds"] == 20  # beside the engine
    assert data["drift_decisions_per_s"] > 0 and data["drift_seconds"] > 0


def test_simulate_loop_engine_matches(capsys):
    args = ("simulate", "--lam", "0.7,0.8", "--seeds", "2", "--candidates", "random", "--json")
    _, fast, _ = run(capsys, *args)
    _, slow, _ = run(capsys, *args, "--engine", "loop")
    for a, b in zip(json.loads(fast), json.loads(slow), strict=True):
        assert a["overload_rate"] == pytest.approx(b["overload_rate"])
        assert a["mean_welfare"] == pytest.approx(b["mean_welfare"])


def test_threshold_and_equilibrium_report_the_surface_terms(capsys):
    assert main(["threshold", "--lam-per-agent", "0.9,0.9,0.9,0,0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_agent_thresholds"] == pytest.approx([0.85] * 5)
    assert out["sub_threshold_agents"] == [3, 4]
    assert (out["sub_threshold_load"], out["escapes_overload"]) == (20.0, True)
    args = [
        "equilibrium",
        "--lam-per-agent",
        "0.9,0.9,0.9,0.9,0.5",
        "--weights",
        "1,1,1,1,2.5",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    # λ*_5 = (5 − 1.6·2.5)/4 = 0.25 ≤ 0.5: nobody is below their threshold.
    assert out["per_agent_thresholds"][4] == pytest.approx(0.25)
    assert out["escapes_overload"] is True and out["overloaded"] is False
    assert main(["threshold", "--weights", "1,1", "--json"]) == 2
    assert main(["threshold", "--lam-per-agent", "0.9,1.5"]) == 2
    assert "--lam-per-agent" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_guard_json_has_every_policy_and_agreeing_counters(capsys, tmp_path):
    pytest.importorskip("httpx", reason="needs the guard extra")
    args = ("bench", "guard", "--clients", "5", "--behaviour", "lockout", "--duration", "1")
    args += ("--seeds", "1", "--mixed", "0.4", "--out", str(tmp_path / "g"), "--json")
    code, out, _ = run(capsys, *args)
    assert code == 0
    data = json.loads(out)
    names = [r["policy"] for r in data["results"]]
    assert names == [
        "naive",
        "backoff_full",
        "backoff_equal",
        "backoff_decorrelated",
        "token_bucket",
        "sre_adaptive",
        "swa_lam0",
        "swa_lam1",
        "swa_shared_lam0",
        "swa_shared_lam1",
    ]
    for r in data["results"]:
        assert {"policy", "clients", "goodput_share", "reject_share", "lockout_windows"} <= set(r)
        assert {"p99_s", "fairness", "goodput_share_ci"} <= set(r)
        assert r["clients"] == 5 and r["behaviour"] == "lockout" and r["counters_agree"]
        assert r["seeds"] == 1 and 0 <= r["reject_share"] <= 1
        assert r["client_peak_rss_mib"] > 0 and r["server_peak_rss_mib"] > 0
    assert [(m["policy"], m["guarded"]) for m in data["mixed"]] == [
        ("swa_lam0", 0.4),
        ("swa_lam1", 0.4),
    ]
    assert {"guarded_rejected_per_client", "naive_rejected_per_client"} <= set(data["mixed"][0])
    assert Path(data["report"]).is_file()
    # the same command again resumes the stored runs: nothing is measured anew
    code, again, _ = run(capsys, *args)
    assert code == 0 and json.loads(again)["results"] == data["results"]


def test_bench_guard_on_the_simulated_clock(capsys, tmp_path):
    args = ("bench", "guard", "--clients", "20", "--policy", "naive,swa_shared", "--lam", "1")
    args += ("--behaviour", "lockout", "--seeds", "2", "--duration", "2", "--clock", "simulated")
    code, out, _ = run(capsys, *args, "--out", str(tmp_path / "s"), "--json")
    assert code == 0
    data = json.loads(out)
    assert [(r["policy"], r["seeds"]) for r in data["results"]] == [
        ("naive", 2),
        ("swa_shared_lam1", 2),
    ]
    naive, shared = data["results"]
    assert naive["locked_runs"] == 2 and shared["locked_runs"] == 0
    assert all(r["counters_agree"] for r in data["results"])


def test_bench_guard_names_a_bad_behaviour(capsys):
    code, _, err = run(capsys, "bench", "guard", "--behaviour", "loud", "--json")
    assert code != 0 and "loud" in err and "behaviour" in err


def test_bench_guard_without_its_extra_names_it(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "httpx" else real(name, *a)
    )
    code, _, err = run(capsys, "bench", "guard", "--clients", "2", "--json")
    assert code != 0 and "kind 'guard' needs httpx: pip install 'swalab[guard]'" in err


def test_bench_llm_passes_backend_options_and_keeps_old_hashes(capsys, monkeypatch):
    import swalab.experiments.studies.bench as bench

    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        row = {"agents": 5, "swalab_decisions_per_s": 2.0, "reference_decisions_per_s": 1.0}
        return {"model": "m", **row, "ratio": 2.0, "rows": [row], "machine": {}}

    monkeypatch.setattr(bench, "llm_scale_benchmark", fake)
    args = ("bench", "llm", "--backend", "transformers", "--agents", "5", "--json")
    code, out, err = run(capsys, *args, "--option", "dtype=bfloat16", "--option", "batch_size=64")
    assert code == 0, err
    assert seen["dtype"] == "bfloat16" and seen["batch_size"] == 64
    assert json.loads(out)["ratio"] == 2.0
    # A bench without options hashes as it did before backend options existed.
    plain = bench.BenchConfig(benchmark="llm", backend="transformers")
    tuned = bench.BenchConfig(benchmark="llm", backend="transformers", options={"dtype": "x"})
    keys = [bench.Bench().plan(c, "test")[0].key for c in (plain, tuned)]
    data = {"kind": "bench", **bench.payload(plain, bench.NOT_HASHED)}
    del data["options"]
    assert keys[0] == bench.digest(data) and keys[1] != keys[0]


@pytest.mark.parametrize("bad", ["dtype", "=bfloat16", "dtype=[1, 2]"])
def test_bench_llm_names_a_bad_option(capsys, bad):
    code, _, err = run(capsys, "bench", "llm", "--agents", "5", "--option", bad, "--json")
    assert code == 2 and "--option" in err and bad.split("=")[0] in err

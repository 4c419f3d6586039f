"""Every study command runs through the library's run path: a store with a manifest, cells
that resume, a report that renders it, and errors named by the flag the user typed."""

import json
from pathlib import Path

import pytest

from swalab.cli import main
from swalab.experiments import load_config, query, run_experiment


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_phase_runs_as_a_stored_study_and_resumes(capsys, tmp_path):
    args = (
        "phase",
        "--lam",
        "0:1:5",
        "--beta",
        "1.6,3",
        "--seeds",
        "2",
        "--steps",
        "10",
        "--out",
        "ph",
        "--json",
    )
    code, out, err = run(capsys, *args)
    data = json.loads(out)
    assert code == 0, err
    assert data["cells"] == 10 and {s["beta"] for s in data["switches"]} == {1.6, 3.0}
    assert [s["predicted"] for s in data["switches"]] == pytest.approx([0.75, 18 / 38])
    manifest = json.loads((tmp_path / "ph" / "manifest.json").read_text())
    assert manifest["kind"] == "phase" and len(manifest["planned_cells"]) == 2
    assert query("ph", "SELECT count(*) FROM phase")[1] == [(10,)]
    assert Path(data["report"]).is_file()
    assert {p.suffix for p in (tmp_path / "ph" / "figures").iterdir()} == {".png", ".svg"}
    # The same study again: nothing recomputed; one cell lost: only it recomputed.
    config = load_config(tmp_path / "ph" / "experiment.yaml")
    assert run_experiment(config, out="ph").ran == 0
    lost = next((tmp_path / "ph" / "cells").iterdir())
    for f in lost.iterdir():
        f.unlink()
    lost.rmdir()
    again = run_experiment(config, out="ph")
    assert (again.skipped, again.ran) == (1, 1)


def test_default_output_is_keyed_by_the_plan(capsys, tmp_path):
    base = ("phase", "--lam", "0,1", "--beta", "2", "--seeds", "1", "--steps", "5", "--json")
    run(capsys, *base)
    run(capsys, *base[:-1], "--scorer", "consistent", "--json")
    assert len(list((tmp_path / "results" / "phase").iterdir())) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--lam", "0:1"], "start:stop:count"),
        (["--lam", "0:1:x"], "count 'x' is not an integer"),
        (["--beta", "1:5:0"], "count 0 must be >= 1"),
        (["--agents", "2.5"], "--agents: 2.5 is not an integer"),
        (["--agents", "1"], "--agents[0]=1: Input should be greater than or equal to 2"),
        (["--lam", "0,2"], "--lam[1]=2.0 is out of range"),
        (["--scorer", "foo"], "--scorer=\"foo\": Input should be 'paper'"),
    ],
)
def test_phase_refuses_bad_flags_by_name(capsys, args, needle):
    code, _, err = run(capsys, "phase", *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_surface_cli_reports_both_boundaries(tmp_path, capsys):
    code, out, err = run(
        capsys,
        "surface",
        "--lam-low",
        "0,0.5,0.9",
        "--seeds",
        "1",
        "--steps",
        "30",
        "--out",
        "s",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["cells"] == 33
    assert data["escape_up_to_k"] == {"game_theory": 4, "swi_fixed_point": 2}
    assert (tmp_path / "s" / "figures" / "surface.png").stat().st_size > 0
    code, _, err = run(capsys, "surface", "--lam-high", "0.5")
    assert code == 2 and "--lam-high=0.5 is below the scorer's switch" in err


def test_stability_and_lockin_agree_with_their_closed_forms(tmp_path, capsys):
    code, out, _ = run(
        capsys,
        "stability",
        "--alpha",
        "0.05,0.15,0.3,0.45",
        "--agents",
        "4,8,12",
        "--seeds",
        "2",
        "--out",
        "s",
        "--json",
    )
    s = json.loads(out)
    assert code == 0 and s["agreement"] >= 0.9 and s["unstable_cells"] >= 3
    assert (tmp_path / "s" / "figures" / "stability.png").stat().st_size > 0
    code, out, _ = run(
        capsys,
        "lockin",
        "--initial-belief",
        "0,4,10.5",
        "--lam",
        "0.5,0.9,1",
        "--out",
        "l",
        "--json",
    )
    lock = json.loads(out)
    assert code == 0 and lock["agreement"] == 1.0
    assert lock["lockin_belief"] == pytest.approx(9.135, abs=1e-3)
    code, _, err = run(capsys, "stability", "--alpha", "0,0.1")
    assert code == 2 and "--alpha[0]=0.0 is out of range" in err


def test_live_command_reports_model_and_server_side_by_side(capsys):
    code, out, err = run(
        capsys, "live", "--lam", "0", "--steps", "6", "--step-seconds", "1.0", "--json"
    )
    assert code == 0, err
    (row,) = json.loads(out)["episodes"]
    assert row["late_calls"] == 0 and row["locked_measured"] == row["locked_model"] > 0
    assert row["ok_measured"] == row["ok_model"]
    assert row["rejected_measured"] == row["rejected_model"]
    code, _, err = run(capsys, "live", "--retry", "9")
    assert code == 2 and "retry=9 is out of range" in err


def test_report_renders_a_folder_of_every_map_kind(tmp_path, capsys):
    for args in (
        ("phase", "--lam", "0,0.5,1", "--beta", "2,3", "--seeds", "1", "--steps", "5"),
        ("stability", "--alpha", "0.1,0.3", "--agents", "4,8", "--seeds", "1", "--steps", "10"),
        ("lockin", "--initial-belief", "0,10", "--lam", "0.5,1", "--seeds", "1"),
        (
            "surface",
            "--agents",
            "4",
            "--capacity",
            "16",
            "--lam-low",
            "0,1",
            "--seeds",
            "1",
            "--steps",
            "10",
        ),
    ):
        assert main([*args, "--out", f"all/{args[0]}", "--json"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "report", "all", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert sorted(s["kind"] for s in data["studies"]) == ["lockin", "phase", "stability", "surface"]
    page = (tmp_path / "all" / "report.html").read_text()
    for title in (
        "Phase diagram — phase",
        "Belief stability — stability",
        "Lock-in — lockin",
        "Critical surface — surface",
    ):
        assert title in page
    assert page.count("data:image/png;base64,") == 4


def test_drift_erodes_a_prosocial_population_as_its_map_predicts(capsys, tmp_path):
    args = ("drift", "--population", "1000", "--rounds", "25", "--seeds", "3", "--out", "d")
    code, out, _ = run(capsys, *args, "--json")
    d = json.loads(out)
    assert code == 0 and d["rounds"] == 25 and len(d["mean_lam"]) == 26
    assert len(d["overload_rate"]) == 25 and d["mean_lam"][0] == pytest.approx(0.84)
    # Imitation copies the selfish, who out-earn the prosocial: the mean falls below λ̃.
    assert d["switch"] == 0.75 and d["collapsed_at"] is not None
    assert abs(d["collapsed_at"] - d["predicted_collapsed_at"]) <= 1
    assert d["overload_rate"][-1] > d["overload_rate"][0]
    assert (tmp_path / "d" / "figures" / "drift.png").stat().st_size > 0
    again = run_experiment(load_config(tmp_path / "d" / "experiment.yaml"), out=tmp_path / "d")
    assert again.ran == 0 and again.skipped == 1  # resumes
    code, out, _ = run(capsys, *args[:-2], "--rule", "none,principal", "--rate", "0.1", "--json")
    cells = {c["rule"]: c for c in json.loads(out)["cells"]}
    assert cells["none"]["collapsed_at"] is None and cells["principal"]["collapsed_at"] == 2
    code, _, err = run(capsys, "drift", "--population", "1001")
    assert code == 2 and "--population=1001" in err and "multiple of game.n_agents=5" in err
    code, _, err = run(capsys, "drift", "--shares", "0.5,0.2")
    assert code == 2 and "shares" in err and "sum to 1" in err


def test_drift_pairs_an_institution_with_its_control_on_the_same_seeds(capsys):
    args = ("drift", "--population", "500", "--rounds", "20", "--seeds", "4")
    code, out, _ = run(capsys, *args, "--fine", "0,2", "--shares", "0.95,0.05", "--json")
    cells = {c["fine"]: c for c in json.loads(out)["cells"]}
    assert code == 0 and set(cells) == {0.0, 2.0} and "paired" not in cells[0.0]
    diff, low, high = cells[2.0]["paired"]["final_mean_lam_diff"]
    assert diff > 0.2 and 0 < low <= diff <= high  # the fine holds λ where imitation erodes
    assert cells[2.0]["collapsed_at"] is None and cells[0.0]["collapsed_at"] is not None
    over_diff, _, over_high = cells[2.0]["paired"]["overload_rate_diff"]
    assert over_diff < 0 and over_high < 0


def test_drift_sweeps_beta_as_an_axis_with_each_cells_thresholds(capsys, tmp_path):
    from swalab import theory
    from swalab.experiments.query import query

    args = ("drift", "--population", "200", "--rounds", "3", "--seeds", "2", "--rule", "none")
    code, out, _ = run(capsys, *args, "--beta", "1.2,3", "--fine", "0,1", "--out", "b", "--json")
    cells = json.loads(out)["cells"]
    assert code == 0 and sorted((c["beta"], c["fine"]) for c in cells) == [
        (1.2, 0.0),
        (1.2, 1.0),
        (3.0, 0.0),
        (3.0, 1.0),
    ]
    assert all("paired" in c for c in cells if c["fine"])  # each β paired with its own control
    _, rows = query(tmp_path / "b", "SELECT DISTINCT beta, lam_star, lam_tilde, switch FROM drift")
    assert len(rows) == 2
    for beta, lam_star, lam_tilde, switch in rows:
        kw = {"n_agents": 5, "capacity": 20.0, "beta": beta, "x_max": 10.0}
        assert lam_star == pytest.approx(theory.predicted_switch("consistent", **kw))
        assert lam_tilde == pytest.approx(theory.predicted_switch("paper", **kw)) == switch
    _, hist = query(tmp_path / "b", "SELECT lam_hist FROM drift LIMIT 1")
    assert len(hist[0][0]) == 20 and sum(hist[0][0]) == pytest.approx(1.0)
    code, _, err = run(capsys, *args, "--beta", "0,2")
    assert code == 2 and "--beta" in err and "must be > 0" in err
    code, out, _ = run(capsys, *args, "--talk", "none,cheap,mediator", "--json")
    cells = {c["talk"]: c for c in json.loads(out)["cells"]}
    assert code == 0 and set(cells) == {"none", "cheap", "mediator"}
    assert "paired" in cells["cheap"] and "paired" not in cells["none"]
    code, _, err = run(capsys, *args, "--talk", "loud")
    assert code == 2 and "--talk" in err and "loud" in err


def test_a_drifting_population_draws_caps_and_values_per_agent(tmp_path):
    base = {"kind": "drift", "agents": 100, "rounds": 4, "seeds": 2, "rule": ["imitation"]}
    game = {
        "x_max": {"dist": "uniform", "low": 4, "high": 10},
        "values": {"dist": "choice", "values": [1, 2]},
    }
    summary = run_experiment(load_config(base | {"game": game}), out=tmp_path / "h")
    assert summary.failed == [] and summary.ran == 1
    _, rows = query(tmp_path / "h", "SELECT seed, mean_payoff, predicted_prosocial FROM drift")
    assert all(p != p for _, _, p in rows)  # no two-type map for a heterogeneous population
    payoffs = {seed: [] for seed in (0, 1)}
    for seed, payoff, _ in rows:
        payoffs[seed].append(payoff)
    assert payoffs[0] != payoffs[1]  # each seed draws its own population
    with pytest.raises(Exception, match=r"game\.x_max=\[.*a list gives the seats of one group"):
        from swalab.experiments.kinds import plan

        plan(load_config(base | {"game": {"x_max": [5, 5, 5, 5, 5]}}), "test")

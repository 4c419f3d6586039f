"""The swa-bench suite: refinement against dense sweeps and theory, keys, resume, scorecards."""

import json
import re

import numpy as np
import pytest

from swalab import theory
from swalab.experiments import ConfigError, load_config, run_experiment
from swalab.experiments.kinds import get_kind, plan
from swalab.experiments.plan import plan as plan_sweep
from swalab.experiments.studies.suite import SUITE_VERSION, refine
from swalab.transition import estimate_transition

BASELINES_ONLY = {"kind": "suite", "name": "t", "models": [], "seeds": 3}


def cards(out):
    from swalab.experiments.query import query

    cols, rows = query(out, "SELECT * FROM scorecard")
    return [dict(zip(cols, r, strict=True)) for r in rows]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    summary = run_experiment(load_config(BASELINES_ONLY), out=out)
    assert not summary.failed and summary.ran == 19
    return out


def test_refine_splits_the_bracketing_gap_in_four():
    lams = [0.0, 0.5, 1.0]
    rates = [1.0, 1.0, 0.0]
    assert refine(lams, rates, 0.0125) == [0.625, 0.75, 0.875]
    assert refine([0.0, 0.5, 0.525], [1.0, 1.0, 0.0], 0.0125) == []  # bracketed to ± 0.0125
    assert refine([0.0, 1.0], [0.0, 0.0], 0.0125) == []  # no switch on the grid
    assert refine([0.0, 1.0], [1.0, 1.0], 0.0125) == []


def test_the_best_response_switches_at_theorem_1s_threshold(baselines):
    for card in (c for c in cards(baselines) if c["mode"] == "best-response"):
        star = theory.lambda_star(5, card["beta"])
        assert card["status"] == "located"
        assert card["ci_low"] <= star <= card["ci_high"], card
        assert card["ci_high"] - card["ci_low"] <= 2 * 0.0125 + 1e-9


def test_a_refined_switch_agrees_with_a_dense_sweep(baselines):
    """The SWI rule on the grid, refined from 8 λ, against 201 λ of the same game and seeds."""
    for beta in (1.6, 2.5):
        (card,) = [
            c
            for c in cards(baselines)
            if c["mode"] == "swi-grid" and c["test"] == "switch" and c["beta"] == beta
        ]
        dense = load_config(
            {
                "name": "dense",
                "game": {"steps": 8, "beta": beta},
                "policy": {"k": 7, "margin": 2, "gamma": 0.02},
                "seeds": 3,
                "grid": {"lam": {"from": 0, "to": 1, "step": 0.005}},
                "record_decisions": False,
            }
        )
        from swalab.experiments.cells import Task
        from swalab.experiments.execute import run_engine_task

        results = run_engine_task(Task("engine", tuple(plan_sweep(dense))))
        lam, rate = [], []
        for r in results:
            ep = r.tables["episodes"].to_pydict()
            lam += ep["lam"]
            rate += ep["overload_rate"]
        truth = estimate_transition(lam, rate, n_boot=0)
        assert card["ci_low"] <= truth.lambda_c <= card["ci_high"], (card, truth.lambda_c)
        assert card["points"] <= 11  # 8 coarse + 3 refined, against 201 dense


def test_dilemma_switches_agree_with_their_closed_forms(baselines):
    dilemmas = [c for c in cards(baselines) if c["test"] == "dilemma"]
    assert {(c["mode"], c["game"]) for c in dilemmas} == {
        (m, g) for m in ("selfish", "swi-grid") for g in ("rate_limit_v0", "context_budget_v0")
    }
    for c in dilemmas:
        if c["mode"] == "selfish":
            assert c["status"] == "overloaded on the whole grid"
            continue
        # The SWI rule on the dilemma's own model switches in the bracket just below its
        # closed form: (N − 1 − c)/(N − 1) = 0.875 for the rate limit, λ* = 0.625 for the
        # context budget (docs/dilemmas.md measures 0.853 and 0.613 on a 0.025 grid).
        assert c["status"] == "located" and c["ci_high"] - c["ci_low"] <= 0.025 + 1e-9
        assert c["ci_low"] < c["lambda_star"] <= c["ci_high"] + 1e-9, c


def test_scripted_baselines_bound_the_table(baselines):
    by = {(c["mode"], c["test"], c["beta"]): c for c in cards(baselines)}
    assert by[("selfish", "switch", 1.6)]["status"] == "overloaded on the whole grid"
    assert by[("selfish", "switch", 1.6)]["overload_at_1"] == 1.0
    assert by[("fair-share", "switch", 2.5)]["status"] == "stable on the whole grid"
    # Each selfish agent takes x_max = 10: one of five is absorbed at λ = 1, two are not.
    assert by[("swi-grid", "outsiders", 1.6)]["outsiders_absorbed"] == 0.2
    for c in cards(baselines):
        assert c["suite_version"] == SUITE_VERSION and c["identity"] == "" and c["templates"] == ""


def test_a_rerun_resumes_and_a_change_makes_new_cells(baselines):
    again = run_experiment(load_config(BASELINES_ONLY), out=baselines)
    assert again.ran == 0 and again.skipped == 19
    base = {c.key for c in plan(load_config(BASELINES_ONLY), "t")}
    other = {c.key for c in plan(load_config({**BASELINES_ONLY, "resolution": 0.025}), "t")}
    assert base.isdisjoint(other)


def test_model_cells_are_keyed_by_weights_and_templates(monkeypatch):
    from swalab.experiments.studies import suite

    config = {
        "kind": "suite",
        "name": "t",
        "baselines": [],
        "modes": ["prompted"],
        "betas": [1.6],
        "outsiders": [],
        "dilemmas": [],
        "models": [{"backend": "openai", "name": "m", "options": {"base_url": "http://x/v1"}}],
    }
    first = plan(load_config(config), "t")
    assert [c.config.identity for c in first] == ["m@http://x/v1"]
    monkeypatch.setattr(suite, "templates_hash", lambda model: "changed")
    assert plan(load_config(config), "t")[0].key != first[0].key


def test_two_models_also_play_mixed_populations_split_between_them():
    from swalab.experiments.studies.suite import _sweep

    server = {"backend": "openai", "options": {"base_url": "http://x/v1"}}
    config = {
        "kind": "suite",
        "name": "t",
        "baselines": [],
        "modes": ["swi", "prompted"],
        "betas": [1.6, 2.5],
        "outsiders": [],
        "dilemmas": [],
        "models": [{**server, "name": "a"}, {**server, "name": "b"}],
    }
    cells = plan(load_config(config), "t")
    mixed = [c for c in cells if c.config.test == "mixed"]
    assert len(cells) == 2 * 2 * 2 + 2 and len(mixed) == 2  # one mixed cell per mode
    for cell in mixed:
        c = cell.config
        assert c.agent == "a+b" and c.game.beta == 1.6
        assert c.identity == "a@http://x/v1+b@http://x/v1"
        sweep = _sweep(c, [0.5])
        assert [m.name for m in sweep.model_roster()] == ["a", "b"]
        assert sweep.model_seats() == [0, 0, 0, 1, 1]  # 5 agents split 3 + 2
        assert plan_sweep(sweep)  # a valid sweep
    assert get_kind("suite").work(load_config(config)).cells == len(cells)  # the estimate
    tasks = get_kind("suite").tasks(cells, load_config(config).executor)
    assert len({t.model_key for t in tasks}) == 3  # a, b, and the pair (each loaded once)
    alone = plan(load_config({**config, "mixed": []}), "t")
    assert not [c for c in alone if c.config.test == "mixed"]
    one = plan(load_config({**config, "mixed": ["prompted"]}), "t")
    assert [c.config.mode for c in one if c.config.test == "mixed"] == ["prompted"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lam": [0.5, 1.5]}, "lam=[0.5, 1.5]: every value must lie in [0, 1]"),
        ({"outsiders": [1.0]}, "outsiders=[1.0]: shares must lie in [0, 1)"),
        ({"betas": [0.0]}, "betas=[0.0]: every β must be > 0"),
        ({"baselines": []}, "models/baselines: the suite needs at least one agent"),
        ({"baselines": ["selfless"]}, "baselines"),
        ({"models": [{"backend": "llamacpp", "name": "no-such.gguf"}]}, "no-such.gguf"),
    ],
)
def test_bad_suites_are_refused_naming_the_field(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan(load_config({**BASELINES_ONLY, **change}), "t")


def test_the_leaderboard_merges_two_stores_once_each(baselines, tmp_path):
    from swalab.analysis.leaderboard import scorecards, write_leaderboard

    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(baselines, copy)
    merged = scorecards([baselines, copy])
    assert len(merged) == len(cards(baselines)) == 19
    page = write_leaderboard([baselines, copy], tmp_path / "board.html")
    html = page.read_text()
    assert html.count("<tr>") == 1 + 19 and "data:image/png;base64," in html
    assert "<script" in html and "http" not in html.split("<script")[1]  # no network


def test_reveal_reads_a_suite_store(baselines, capsys):
    from swalab.cli import main

    assert main(["reveal", str(baselines), "--json", "--utility", "scorer"]) == 0
    rows = json.loads(capsys.readouterr().out)
    swi = [r for r in rows if r["agent"] == "swi" and r["lam"] is not None]
    assert swi and all(r["ci_low"] - 1e-9 <= r["lam"] <= r["ci_high"] + 1e-9 for r in swi)
    assert np.isfinite([r["revealed"] for r in swi]).all()


@pytest.mark.slow
def test_the_quick_suite_scores_a_model_behind_a_llama_cpp_server(tmp_path, capsys):
    """Bring your own model: the instruct model served by llama.cpp on 127.0.0.1, as a URL."""
    from swalab.cli import main
    from swalab.llm.presets import EMBEDDED_INSTRUCT, embedded_path
    from swalab.testing.servers import llama_server

    out = tmp_path / "suite"
    with llama_server(embedded_path(EMBEDDED_INSTRUCT), alias="smol") as server:
        # The quick suite, shortened for CI (the server answers one prompt at a time):
        # T = 2 at λ = 0 and 1, no refinement round, the rate limit for 2 steps.
        args = ["bench", "suite", "--quick", "--model", f"{server.base_url}#smol"]
        short = ["--set", "game.steps=2", "--set", "lam=[0, 1]", "--set", "rounds=0"]
        short += ["--set", "dilemma_steps=2"]
        assert main([*args, *short, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["leaderboard"] == str(out / "leaderboard.html")
    served = [c for c in result["scorecards"] if c["model"] == "smol"]
    assert {(c["mode"], c["test"]) for c in served} == {
        (m, t) for m in ("swi", "swi-llm", "prompted") for t in ("switch", "outsiders")
    } | {("swi", "dilemma"), ("prompted", "dilemma")}  # --quick: no table picking in dilemmas
    # The server's grammar was found and enforced: no answer failed to parse.
    assert all(c["parse_failure_rate"] == 0 for c in served)
    # The ledger: every decision paid tokens; the page shows what they bought.
    assert all(c["tokens_per_decision"] > 0 for c in served)
    assert all(c["shared_tokens_per_decision"] is not None for c in served)
    html = (out / "leaderboard.html").read_text()
    assert "What cooperation costs in tokens" in html
    (identity,) = json.loads((out / "manifest.json").read_text())["models"].values()
    assert json.loads(identity["settings"])["structured"] == "llamacpp"  # detected


def test_a_leaderboard_needs_a_suite_with_scorecards(tmp_path, baselines):
    from swalab.analysis.leaderboard import write_leaderboard

    sweep = tmp_path / "sweep"
    assert run_experiment(load_config({"name": "s", "seeds": 1}), out=sweep).ran
    with pytest.raises(FileNotFoundError, match="holds no suite"):
        write_leaderboard([sweep], tmp_path / "board.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not a swalab result directory"):
        write_leaderboard([empty], tmp_path / "board.html")


def test_reveal_says_when_a_store_has_no_congestion_decisions(tmp_path, capsys):
    from swalab.cli import main

    store = tmp_path / "commons"
    config = {"name": "c", "env": "commons_v0", "game": {"steps": 3}, "seeds": 1}
    config |= {"policy": {"scorer": "consistent", "anchors": []}}
    assert run_experiment(load_config(config), out=store).ran
    assert main(["reveal", str(store)]) == 2
    assert "no congestion-game decisions" in capsys.readouterr().err

"""The suite's cost ledger: tokens per decision, paid and shared, beside the welfare bought."""

import pytest

from swalab.analysis.leaderboard import cost_rows, plot_cost


def curve(agent, mode, lam, *, paid, out, shared, welfare, game="congestion β=1.6"):
    return {
        "agent": agent,
        "mode": mode,
        "test": "switch",
        "game": game,
        "lam": lam,
        "tokens_per_decision": paid,
        "output_tokens_per_decision": out,
        "shared_tokens_per_decision": shared,
        "mean_welfare": welfare,
    }


CURVES = [
    curve("gemma", "swi", 1.0, paid=40, out=20, shared=300, welfare=3.0),
    curve("gemma", "swi", 0.0, paid=60, out=30, shared=100, welfare=-1.0),
    curve("gemma", "prompted", 0.0, paid=10, out=2, shared=50, welfare=0.5),
    {  # a baseline: no model, no tokens; a curve stored before the ledger has no split
        "agent": "swi-rule",
        "mode": "best-response",
        "test": "switch",
        "game": "congestion β=1.6",
        "lam": 0.5,
        "tokens_per_decision": None,
        "mean_welfare": 2.0,
    },
    {**curve("gemma", "swi", 0.5, paid=1, out=1, shared=1, welfare=9), "test": "outsiders"},
]


def test_cost_rows_average_each_models_decisions_over_its_lambda_points():
    rows = {(r["model"], r["mode"]): r for r in cost_rows(CURVES)}
    assert set(rows) == {("gemma", "swi"), ("gemma", "prompted"), ("swi-rule", "best-response")}
    swi = rows["gemma", "swi"]  # the outsiders test is not a welfare curve: left out
    assert swi["prompt_paid_per_decision"] == pytest.approx((40 + 60) / 2 - (20 + 30) / 2)
    assert swi["output_per_decision"] == pytest.approx(25)
    assert swi["shared_per_decision"] == pytest.approx(200)
    assert swi["mean_welfare"] == pytest.approx(1.0)
    assert [(p["lam"], p["tokens"], p["welfare"]) for p in swi["points"]] == [
        (0.0, 60, -1.0),
        (1.0, 40, 3.0),
    ]
    base = rows["swi-rule", "best-response"]
    assert base["prompt_paid_per_decision"] is None and base["shared_per_decision"] is None
    assert base["points"] == [{"lam": 0.5, "tokens": 0.0, "welfare": 2.0}]


def test_one_cost_figure_per_game(tmp_path):
    two_games = [*CURVES, curve("gemma", "swi", 1.0, paid=5, out=1, shared=0, welfare=1, game="g2")]
    figures = plot_cost(two_games, tmp_path)
    assert [title for title, _ in figures] == [
        "What cooperation costs in tokens, congestion β=1.6",
        "What cooperation costs in tokens, g2",
    ]
    assert all(png.is_file() and png.with_suffix(".svg").is_file() for _, png in figures)

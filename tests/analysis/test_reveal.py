"""Revealed λ of stored sweeps: SWI agents with a known λ are located, over many configurations."""

import json

import pytest

from swalab import theory
from swalab.analysis.reveal import reveal_rows
from swalab.experiments import load_config, run_experiment
from swalab.experiments.revealed import calibration


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """Model-based SWI agents over scorers, severities, margins, candidates and beliefs."""
    out = tmp_path_factory.mktemp("many")
    config = load_config(
        {
            "name": "many",
            "game": {"steps": 6},
            "seeds": 2,
            "population": [{"kind": "greedy"}, {"kind": "swi", "count": 4}],
            "grid": {
                "lam": [0.0, 0.4, 0.7, 0.8, 0.9, 1.0],
                "policy.scorer": ["paper", "consistent"],
                "game.beta": [1.2, 2.5],
                "policy.margin": [0.0, 2.0],
                "policy.candidates": ["grid", "random"],
                "policy.belief.kind": ["ema", "last"],
            },
        }
    )
    summary = run_experiment(config, out=out)
    assert not summary.failed
    return out


def test_the_configured_lambda_lies_inside_what_is_revealed(many):
    rows = reveal_rows(many, utilities=("scorer",))
    swi = [r for r in rows if r["agent"] == "swi"]
    assert len(swi) == 6 * 2 * 2 * 2 * 2 * 2  # one per cell
    for r in swi:
        assert r["method"] == "interval" and r["best_share"] == 1.0, r
        assert r["ci_low"] - 1e-9 <= r["lam"] <= r["ci_high"] + 1e-9, r
    # The data pins λ down: most intervals are far narrower than [0, 1].
    widths = sorted(r["ci_high"] - r["ci_low"] for r in swi)
    assert widths[len(widths) // 2] < 0.5


def test_outsiders_have_no_scorer_but_a_game_lambda(many):
    rows = reveal_rows(many, utilities=("scorer", "game"))
    greedy = [r for r in rows if r["agent"] == "greedy"]
    assert greedy and all(r["utility"] == "game" and r["lam"] is None for r in greedy)
    # Always taking x_max is an argmax of the game's SWA utility exactly for λ ≤ λ*(β) =
    # (N − β)/(N − 1) (Theorem 1): the identified interval is [0, λ*] or inside it.
    for r in greedy:
        assert r["method"] == "interval" and r["ci_low"] == 0.0, r
        assert r["ci_high"] <= theory.lambda_star(5, r["beta"]) + 1e-6, r
    assert any(
        r["ci_high"] == pytest.approx(theory.lambda_star(5, r["beta"]), abs=1e-6) for r in greedy
    )


def test_calibration_of_exact_swi_agents_is_positive(many):
    rows = reveal_rows(many, utilities=("scorer",))
    slopes = [c for c in calibration(rows) if c["agent"] == "swi"]
    assert slopes and all(c["slope"] > 0.5 for c in slopes)


def test_cli_reveal_json_rows(many, capsys):
    from swalab.cli import main

    assert main(["reveal", str(many), "--json", "--utility", "scorer"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {"cell", "lam", "revealed", "ci_low", "ci_high"} <= set(rows[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--utility", "mood"], "--utility='mood' is not known"), ([], "not a swalab result")],
)
def test_cli_reveal_refuses_bad_input(tmp_path, capsys, args, message):
    from swalab.cli import main

    assert main(["reveal", str(tmp_path), *args]) != 0
    assert message in capsys.readouterr().err

"""Resource dilemmas through configs, sweeps, the store, resume and the report."""

from pathlib import Path

import pytest

from swalab.experiments import ConfigError, load_config, plan, query, run_experiment
from swalab.experiments.presets import preset_path
from swalab.testing import check_result_store


@pytest.mark.parametrize("preset", ["rate_limit", "context_budget", "commons"])
def test_each_dilemma_preset_runs_small_checks_and_reports(preset: str, tmp_path: Path) -> None:
    from swalab.analysis.report import write_report

    overrides = ["seeds=2", "grid.lam=[0.0, 1.0]", "game.steps=40"]
    summary = run_experiment(load_config(preset_path(preset), overrides), out=tmp_path)
    assert summary.failed == [] and summary.ran >= 2
    assert check_result_store(tmp_path) >= 4
    _, rows = query(
        tmp_path,
        "SELECT lam, avg(overload_rate), avg(mean_welfare) FROM episodes GROUP BY lam ORDER BY lam",
    )
    (lam0, over0, w0), (lam1, over1, w1) = rows[0], rows[-1]
    assert (lam0, lam1) == (0.0, 1.0) and over1 < over0 and w1 > w0  # SWA helps in every one
    report = write_report(tmp_path)
    names = [p.name for p in report.figures]
    own = {
        "rate_limit": "dilemma_lockout_rate.png",
        "context_budget": "dilemma_critical_loss.png",
        "commons": "dilemma_survival_time.png",
    }[preset]
    assert own in names and "fig1_overload.png" in names
    again = run_experiment(load_config(preset_path(preset), overrides), out=tmp_path)
    assert again.ran == 0  # resumes: nothing recomputed


def test_env_params_can_be_swept_and_are_stored(tmp_path: Path) -> None:
    config = load_config(preset_path("commons"), ["seeds=1", "game.steps=30", "grid.lam=[0.9]"])
    cells = plan(config)
    assert sorted(c.config.env_params["lookahead"] for c in cells) == [3, 5]
    run_experiment(config, out=tmp_path)
    _, rows = query(tmp_path, "SELECT env_params, switch_point FROM episodes ORDER BY 2")
    assert '"lookahead": 5' in rows[0][0] and rows[0][1] == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["env_params.rate=-2"], r"env_params.*rate=-2 is out of range: must be a number > 0"),
        (["env_params.rte=2"], r"env_params.rte: not a parameter of rate_limit_v0"),
        (["game.capacity=30"], r"game.capacity: applies to congestion_v0 only"),
        (["policy.scorer=paper"], r"policy.scorer='paper' is the congestion game's"),
        (["policy.scorer=judge"], r"policy.scorer='judge' grades messages"),
        (["policy.belief.kind=last"], r"policy.belief.kind: rate_limit_v0 agents use the EMA"),
        (["population=[{kind: adversary, count: 5}]"], r"kind='adversary' is not known in"),
    ],
)
def test_dilemma_config_errors_name_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(load_config(preset_path("rate_limit"), ["grid.lam=[0.5]", *overrides]))


def test_congestion_refuses_dilemma_only_settings() -> None:
    with pytest.raises(ConfigError, match=r"kind 'retry' retries rejected calls"):
        plan(load_config({"population": [{"kind": "retry", "count": 5}]}))
    with pytest.raises(ConfigError, match=r"env_params: congestion_v0 takes its parameters"):
        plan(load_config({"env_params": {"rate": 3}}))
    with pytest.raises(ConfigError, match=r"mode='text': messages come from a model"):
        plan(
            load_config(
                {
                    "env": "context_budget_v0",
                    "env_params": {"mode": "text"},
                    "policy": {"scorer": "consistent"},
                }
            )
        )

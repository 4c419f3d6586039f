"""Populations, per-agent distributions, belief models and horizons through configs and runs."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from swalab.analysis import write_report
from swalab.experiments import ConfigError, adapt, load_config, plan, query, run_experiment
from swalab.experiments.population import realize
from swalab.swi import SimulationConfig, run_episode
from swalab.testing import check_result_store

MIXED = {
    "name": "mixed",
    "game": {"steps": 12, "horizon": "geometric"},
    "policy": {
        "scorer": "consistent",
        "candidates": "random",
        "belief": {"kind": "window", "window": 3, "noise": 0.5, "delay": 1},
    },
    "population": [
        {"kind": "greedy"},
        {"kind": "tit_for_tat", "demand": 3},
        {"kind": "swi", "count": 3},
    ],
    "seeds": 4,
    "grid": {"lam": [0.0, 0.9]},
    "executor": {"workers": 1},
}


def test_a_mixed_population_run_matches_the_per_agent_path(tmp_path: Path) -> None:
    run_experiment(load_config(MIXED), out=tmp_path)
    assert check_result_store(tmp_path) == 8  # who-pays metrics recomputed from the steps too
    eps = pq.read_table(sorted(tmp_path.glob("cells/*/episodes.parquet"))).to_pylist()
    config = SimulationConfig(
        steps=12,
        horizon="geometric",
        scorer="consistent",
        candidates="random",
        belief_kind="window",
        window=3,
        noise=0.5,
        delay=1,
        agents=("greedy", "tit_for_tat", "swi", "swi", "swi"),
        agent_demands=(np.nan, 3.0, np.nan, np.nan, np.nan),
    )
    for ep in eps:
        ref = run_episode(config, ep["lam"], ep["seed"])
        assert ep["steps_played"] == ref.loads.size == config.realized_steps(ep["seed"])
        assert ep["mean_load"] == pytest.approx(ref.loads.mean(), abs=1e-12)
        assert ep["population"] == "greedy×1 + tit_for_tat(3)×1 + swi×3"
        assert ep["demand_per_agent"][0] == 10.0  # the greedy agent
    _, kinds = query(tmp_path, "SELECT DISTINCT agent, kind FROM steps ORDER BY agent")
    assert [k for _, k in kinds] == ["greedy", "tit_for_tat", "swi", "swi", "swi"]


def test_prosocial_agents_carry_the_cut_a_greedy_outsider_leaves(tmp_path: Path) -> None:
    config = load_config(
        {
            "name": "who",
            "game": {"steps": 30},
            "policy": {"scorer": "consistent", "candidates": "grid"},
            "population": [{"kind": "greedy"}, {"kind": "swi", "count": 4}],
            "seeds": 2,
            "grid": {"lam": [0.5, 0.95]},
        }
    )
    run_experiment(config, out=tmp_path)
    _, rows = query(
        tmp_path,
        "SELECT lam, avg(prosocial_cut_share), avg(reward_gap), "
        "avg(overload_rate) FROM episodes GROUP BY lam ORDER BY lam",
    )
    (_low, share_low, gap_low, over_low), (_high, share, gap, over) = rows
    assert share_low is None and gap_low is None and over_low == 1.0  # nobody is prosocial
    assert share == 1.0  # the greedy agent gives up nothing: the SWI agents cut it all
    assert gap > 5 and over < 0.1  # … and it earns far more than they do, in a stable system


def test_distributions_are_drawn_per_seed_and_reproducibly() -> None:
    config = load_config(
        {
            "game": {
                "n_agents": 6,
                "x_max": {"dist": "uniform", "low": 6, "high": 14},
                "values": {"dist": "choice", "values": [1, 2], "p": [0.25, 0.75]},
            },
            "lam": {"dist": "normal", "mean": 0.9, "sd": 0.3},
        }
    )
    a, b, again = realize(config, 0), realize(config, 1), realize(config, 0)
    assert a == again and a["x_max"] != b["x_max"]
    assert all(6 <= x <= 14 for x in a["x_max"]) and set(a["values"]) <= {1.0, 2.0}
    lams = np.concatenate([realize(config, s)["lam"] for s in range(300)])
    assert lams.min() >= 0 and lams.max() <= 1  # truncated to [0, 1] by redrawing
    values = np.concatenate([realize(config, s)["values"] for s in range(300)])
    assert abs((values == 2).mean() - 0.75) < 0.05
    cell = plan(config)[0]
    assert adapt.simulation(cell.config, 3).x_max == tuple(realize(config, 3)["x_max"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"population": [{"kind": "greedy"}]},
            "population: counts sum to 1 agents, but game.n_agents=5",
        ),
        ({"population": [{"kind": "fixed", "count": 5}]}, "kind 'fixed' needs a demand"),
        ({"population": [{"kind": "greedy", "demand": 2, "count": 5}]}, "takes no demand"),
        ({"lam": {"dist": "uniform", "low": 0.5, "high": 1.5}}, "lam: uniform reaches 1.5"),
        ({"lam": {"dist": "uniform", "low": 0.5}}, "needs high"),
        ({"lam": {"dist": "normal", "mean": 5, "sd": 0.01}}, "lam: normal draws fall outside"),
        (
            {"game": {"weights": {"dist": "choice", "values": [1, 2], "p": [0.5]}}},
            "p needs one probability per value",
        ),
        ({"policy": {"belief": {"kind": "median"}}}, "policy.belief.kind"),
        ({"policy": {"belief": {"delay": -1}}}, "policy.belief.delay=-1"),
        ({"game": {"horizon": "poisson"}}, "game.horizon"),
    ],
)
def test_bad_populations_and_beliefs_are_refused_with_the_field(change, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(load_config(change))


def test_noise_and_delay_sweeps_give_a_transition_figure(tmp_path: Path) -> None:
    for name, field, values in (
        ("noise", "policy.belief.noise", [0, 4]),
        ("delay", "policy.belief.delay", [0, 3]),
    ):
        cfg = load_config(
            {
                "name": name,
                "game": {"steps": 12},
                "seeds": 4,
                "policy": {"candidates": "random"},
                "record_decisions": False,
                "grid": {"lam": [0.0, 0.5, 0.7, 0.8, 0.9, 1.0], field: values},
            }
        )
        run_experiment(cfg, out=tmp_path / name)
    report = write_report(tmp_path)
    names = {p.name for p in report.figures}
    assert {"transition_vs_belief_noise.png", "transition_vs_belief_delay.png"} <= names
    by_label = {(r["experiment"], r["label"]): r for r in report.transitions}
    clean = by_label[("noise", "noise · model-based · paper · belief_noise=0")]
    noisy = by_label[("noise", "noise · model-based · paper · belief_noise=4")]
    assert clean["lambda_c"] < noisy["lambda_c"]  # strong noise pushes the switch up


def test_a_store_from_before_these_fields_resumes_and_reads(tmp_path: Path) -> None:
    """Cells of configs that use none of the new fields keep their names, and tables
    written without the new columns still load (their values read as null)."""
    import pyarrow as pa

    from swalab.analysis import load_results
    from swalab.experiments.plan import cell_payload

    config = load_config(
        {"name": "old", "game": {"steps": 5}, "seeds": 2, "grid": {"lam": [0.0, 0.9]}}
    )
    payload = cell_payload(plan(config)[0].config)
    assert "population" not in payload and "horizon" not in payload["game"]
    assert set(payload["policy"]["belief"]) == {"kind", "alpha", "initial"}
    run_experiment(config, out=tmp_path)
    for path in tmp_path.glob("cells/*/episodes.parquet"):  # as an older swalab wrote them
        t = pq.read_table(path)
        keep = [n for n in t.column_names if n not in ("population", "reward_gap", "horizon")]
        pq.write_table(pa.Table.from_arrays([t.column(n) for n in keep], names=keep), path)
    assert run_experiment(config, out=tmp_path).skipped == 2
    curves = load_results(tmp_path).curves
    assert len(curves) == 1 and curves[0].params["population"] is None
    assert all(np.isnan(x).all() for x in curves[0].values["reward_gap"])
    assert write_report(tmp_path).transitions[0]["lambda_c"] is not None

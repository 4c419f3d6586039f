"""``swalab report``: known answers on synthetic stores, the acceptance sweep, and every
way a user can point it at the wrong thing."""

import json
from pathlib import Path

import numpy as np
import pytest

from swalab.analysis import write_report
from swalab.cli import main

from .test_results import synthetic_store

LAMS = np.round(np.arange(0, 1.0001, 0.05), 2)


def _step_rows(
    switch: float | None,
    *,
    scorer: str = "paper",
    beta: float = 1.6,
    model: str | None = None,
    seeds: int = 3,
) -> list[dict]:
    rows = []
    for lam in LAMS:
        rate = 1.0 if switch is None or lam < switch else 0.0
        for seed in range(seeds):
            rows.append(
                {
                    "lam": float(lam),
                    "seed": seed,
                    "scorer": scorer,
                    "beta": beta,
                    "model": model,
                    "backend": "scripted" if model else None,
                    "overload_rate": rate,
                    "mean_welfare": 20 - 18 * rate,
                    "mean_load": 50 - 30 * rate,
                }
            )
    return rows


def test_synthetic_steps_are_located_and_a_flat_curve_is_not(tmp_path: Path, capsys) -> None:
    rows = _step_rows(0.6, model="m1") + _step_rows(None, model="m2")
    rows += _step_rows(0.35, beta=3.0, model="m1")
    synthetic_store(tmp_path / "res", rows)
    assert main(["report", str(tmp_path / "res"), "--out", str(tmp_path / "rep"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["report"] == str(tmp_path / "rep" / "report.html")
    by = {(r["model"], r["beta"]): r for r in out["transitions"]}
    located = by[("m1", 1.6)]
    assert abs(located["lambda_c"] - 0.6) <= 0.05 and located["status"] == "located"
    assert (located["grid_low"], located["grid_high"]) == (0.55, 0.6)
    assert located["lambda_tilde"] == pytest.approx(0.75)
    assert located["lambda_star"] == pytest.approx(0.85)
    assert located["gap"] == pytest.approx(located["lambda_c"] - 0.75)
    assert abs(by[("m1", 3.0)]["lambda_c"] - 0.35) <= 0.05
    flat = by[("m2", 1.6)]
    assert flat["lambda_c"] is None and flat["ci_low"] is None and flat["ci_high"] is None
    assert flat["status"] == "overloaded on the whole grid"
    names = {Path(f).name for f in out["figures"]}
    for stem in ("fig1_overload", "fig2_welfare_gain", "fig3_overload_beta", "fig4_welfare_beta"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert not any(n.startswith("load_") for n in names)  # no step rows: no time series
    page = (tmp_path / "rep" / "report.html").read_text()
    assert 'id="thresholds"' in page and "no transition located" in page
    assert page.count("data:image/png;base64,") == 4
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert data["transitions"] == out["transitions"]
    assert not any(Path(tmp_path / "res").glob("report.*"))  # --out elsewhere: input untouched


@pytest.mark.slow
def test_reference_sweep_switches_at_lambda_tilde_and_lambda_star(tmp_path: Path, capsys) -> None:
    """Acceptance: the reference model-based sweep, λ_c within one grid step (0.05)."""
    assert main(["run", "reference_model_based", "--out", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path), "--json"]) == 0
    rows = {r["scorer"]: r for r in json.loads(capsys.readouterr().out)["transitions"]}
    assert abs(rows["paper"]["lambda_c"] - 0.75) <= 0.05
    assert abs(rows["consistent"]["lambda_c"] - 0.85) <= 0.05
    for r in rows.values():
        assert r["ci_low"] <= r["lambda_c"] <= r["ci_high"]
        assert r["grid_low"] < r["lambda_c"] <= r["grid_high"]
        assert r["seeds"] == 20 and r["lam_points"] == 21
    assert (tmp_path / "figures" / "load_timeseries.png").exists()
    # Reproducible to the digit: same data, same seeds of the bootstrap.
    again = write_report(tmp_path, tmp_path / "again")
    assert again.transitions == json.loads((tmp_path / "report.json").read_text())["transitions"]


def test_user_mistakes_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a swalab result directory" in capsys.readouterr().err
    synthetic_store(tmp_path / "res", _step_rows(0.5, model="m1"))
    assert main(["report", str(tmp_path / "res"), "--model", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--model: 'nope' is not in these results" in err and "m1" in err
    assert len(err.strip().splitlines()) == 1


def test_a_store_with_no_finished_cell_says_so(tmp_path: Path, capsys) -> None:
    args = ["run", "reference_model_based", "--out", str(tmp_path), "--set", "seeds=1"]
    assert main(args) == 0
    for cell in (tmp_path / "cells").iterdir():  # as if the run had been killed at once
        for f in cell.iterdir():
            f.unlink()
        cell.rmdir()
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished episode yet" in capsys.readouterr().err


def test_a_partial_store_is_reported_as_partial(tmp_path: Path) -> None:
    args = ["run", "reference_model_based", "--out", str(tmp_path), "--set", "seeds=1"]
    assert main(args) == 0
    cells = sorted((tmp_path / "cells").iterdir())
    for cell in cells[:10]:
        for f in cell.iterdir():
            f.unlink()
        cell.rmdir()
    rep = write_report(tmp_path)
    assert "32 of 42 cells finished" in rep.html.read_text()

"""``swalab replicate paper``: the presets run end to end; the report says where they switch."""

import json
from pathlib import Path

import pytest

from swalab.cli import main
from swalab.experiments import get_kind, load_config, preset_names, preset_path
from swalab.testing import check_result_store


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_a_valid_plan(name: str) -> None:
    config = load_config(preset_path(name))
    model = getattr(config, "model", None)
    if model is not None and model.backend != "llamacpp":
        # Plan with the embedded model: the paper's backends need a GPU or a server.
        config = load_config(preset_path(name), ["model.backend=scripted", "model.name=x"])
    cells = get_kind(config.kind).plan(config, name)
    assert cells and len({c.key for c in cells}) == len(cells)


def test_full_replication_needs_a_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replicate", "paper"]) == 2
    assert "--backend" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_replication(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("llama_cpp")
    args = [
        "replicate",
        "paper",
        "--quick",
        "--out",
        str(tmp_path),
        "--json",
        "--set",
        "seeds=1",
        "--set",
        "game.steps=2",
        "--set",
        "grid.lam=[0.5, 0.9]",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["runs"]) == {"quick", "reference_model_based", "severity_model_based"}
    assert result["runs"]["quick"]["planned_cells"] == 4  # 2 λ × the 2 embedded models
    assert result["runs"]["reference_model_based"]["planned_cells"] == 42
    assert result["report"] == str(tmp_path / "report.html")
    assert (tmp_path / "report.html").stat().st_size > 0
    rows = result["transitions"]
    reference = {r["scorer"]: r for r in rows if r["experiment"] == "reference_model_based"}
    assert abs(reference["paper"]["lambda_c"] - 0.75) <= 0.05  # λ̃
    assert abs(reference["consistent"]["lambda_c"] - 0.85) <= 0.05  # λ*
    assert reference["paper"]["lambda_tilde"] == pytest.approx(0.75)
    for model in ("gemma-3-270m", "smollm2-135m-instruct"):  # one curve per embedded model
        llm = [r for r in rows if r["model"] == model]
        assert len(llm) == 1 and llm[0]["lam_points"] == 2, rows
    assert len([r for r in rows if r["experiment"] == "severity_model_based"]) == 12

    # Every stored episode metric (LLM and model-based) agrees with its step rows.
    assert check_result_store(tmp_path / "quick") == 4
    assert check_result_store(tmp_path / "reference_model_based") == 840

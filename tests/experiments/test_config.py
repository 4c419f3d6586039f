"""Every class of config mistake: one line naming the field, exit code 2, nothing written."""

from pathlib import Path

import pytest
import yaml

from swalab.cli import main
from swalab.experiments import ConfigError, load_config, plan
from swalab.experiments.config import parse_override

BASE = {"name": "t", "game": {"steps": 3}, "seeds": 2, "grid": {"lam": [0.0, 0.9]}}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _with(**changes: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return data


CASES = [
    # (config, extra CLI args, text the one-line error must contain)
    (_with(gmae={"beta": 2}), [], "gmae: unknown key"),
    (_with(game__bta=2), [], "game.bta: unknown key"),
    (_with(game__steps="many"), [], 'game.steps="many": Input should be a valid integer'),
    (
        _with(game__beta=-1.0),
        [],
        "game.beta=-1.0: Input should be greater than or equal to 0.000000001",
    ),
    (_with(lam=1.5), [], "lam=1.5"),
    (_with(policy__scorer="best"), [], 'policy.scorer="best"'),
    (_with(policy__belief__alpha=0), [], "policy.belief.alpha=0"),
    (_with(seeds=[0, -3]), [], "seeds[1]=-3"),
    (
        _with(model={"backend": "gpt"}, policy={"candidates": "llm"}),
        [],
        'model.backend="gpt": is not a known backend',
    ),
    (
        _with(
            model={"backend": "llamacpp", "name": "qwen2.5-7b-instruct"},
            policy={"candidates": "llm"},
        ),
        [],
        "has no embedded GGUF",
    ),
    (
        _with(model={"backend": "llamacpp", "name": "/no/such.gguf"}, policy={"candidates": "llm"}),
        [],
        "model.name='/no/such.gguf'",
    ),
    (
        _with(
            model={"backend": "openai", "name": "m", "options": {"api_key": "sk-1"}},
            policy={"candidates": "llm"},
        ),
        [],
        "looks like a secret",
    ),
    (
        _with(model={"backend": "openai"}, policy={"candidates": "llm"}),
        [],
        "model.name: backend 'openai' needs a model name",
    ),
    (_with(policy={"candidates": "llm"}), [], "needs a model section"),
    (_with(grid={"lam": [0.1, 2.0]}), [], 'cell {"lam": 2.0}: lam=2.0'),
    (_with(grid={"game.capacity": [20, 1]}), [], "margin"),
    (_with(grid={"lam": [0.5, 0.5]}), [], "same cell twice"),
    (_with(grid={"game.betta": [1, 2]}), [], "grid.game.betta: not a field"),
    (_with(grid={"seeds": [1, 2]}), [], "grid.seeds: not a field"),
    (_with(grid={"lam": {"from": 0, "to": 1}}), [], "needs exactly the keys from, to, step"),
    (_with(policy__k=60, policy__candidates="random"), [], "k=60 is out of range"),
    (BASE, ["--set", "game.beta=-2"], "--set game.beta=-2: game.beta=-2"),
    (BASE, ["--set", "game.nope=1"], "'game.nope' is not a config field"),
    (BASE, ["--set", "novalue"], "write dotted.key=value"),
    (BASE, ["--executor", "slurm"], 'executor.kind="slurm"'),
]


@pytest.mark.parametrize(("data", "args", "expected"), CASES)
def test_config_mistakes_fail_fast_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict, args: list, expected: str
) -> None:
    path = _write(tmp_path, data)
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("swalab: error: ")
    assert expected in err, err
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("backend", ["llamacpp", "transformers"])
def test_a_model_without_a_name_is_the_embedded_default(backend: str) -> None:
    """Both local backends load the embedded Gemma when no name is given; so does the plan."""
    pytest.importorskip({"llamacpp": "llama_cpp", "transformers": "transformers"}[backend])
    data = _with(model={"backend": backend}, policy={"candidates": "llm"})
    cells = plan(load_config(data))
    assert len(cells) == 2 and all(c.config.model.name is None for c in cells)


def test_missing_file_names_the_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no_such_preset"]) == 2
    err = capsys.readouterr().err
    assert "no_such_preset" in err and "reference_model_based" in err


def test_yaml_is_data_only(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_override_values_are_yaml_and_replace_grid_entries() -> None:
    assert parse_override("lam=[0.5, 1]") == ("lam", [0.5, 1])
    cfg = load_config(BASE, ["lam=0.3", "grid.game.beta=[1.6, 3.0]"])
    assert "lam" not in cfg.grid and cfg.lam == 0.3
    assert [c.config.game.beta for c in plan(cfg)] == [1.6, 3.0]


def test_ranges_expand_inclusively() -> None:
    cfg = load_config(_with(grid={"lam": {"from": 0, "to": 1, "step": 0.05}}))
    lams = [c.config.lam for c in plan(cfg)]
    assert len(lams) == 21 and lams[0] == 0.0 and lams[-1] == 1.0 and lams[15] == 0.75

"""SWI agents on the embedded Gemma 3 270M with a greedy outsider, through a config (slow)."""

from pathlib import Path

import pytest

from swalab.experiments import load_config, query, run_experiment
from swalab.experiments.presets import preset_path
from swalab.testing import check_result_store

pytestmark = pytest.mark.slow


def test_llm_agents_with_a_greedy_outsider_and_drawn_caps(tmp_path: Path) -> None:
    overrides = ["seeds=1", "game.steps=4", "game.x_max={dist: uniform, low: 8, high: 12}"]
    summary = run_experiment(load_config(preset_path("mixed_llm"), overrides), out=tmp_path)
    assert summary.failed == [] and summary.ran == 2
    assert check_result_store(tmp_path) == 2  # who-pays metrics included
    _, rows = query(
        tmp_path, "SELECT kind, count(*), count(proposals) FROM steps GROUP BY kind ORDER BY kind"
    )
    (g_kind, g_rows, g_asked), (s_kind, s_rows, s_asked) = rows
    assert (g_kind, g_asked) == ("greedy", 0)  # the outsider costs no model call
    assert s_kind == "swi" and s_asked == s_rows == 4 * g_rows  # one proposal per SWI agent
    _, eps = query(
        tmp_path,
        "SELECT x_max_per_agent, demand_per_agent, steps_played, prompts, population FROM episodes",
    )
    for caps, demands, played, prompts, population in eps:
        assert all(8 <= c <= 12 for c in caps) and demands[0] == caps[0]  # greedy: its own cap
        assert all(d <= c for d, c in zip(demands, caps, strict=True))
        assert prompts == 4 * played and population == "greedy×1 + swi×4"


def _first_step_proposals(out: Path) -> dict[tuple[float, int], list[float] | None]:
    _, rows = query(out, "SELECT lam, agent, proposals FROM steps WHERE step = 0")
    return {(lam, agent): None if p is None else list(p) for lam, agent, p in rows}


@pytest.mark.parametrize("mode", ["swi", "prompted"])
def test_agents_of_one_episode_are_answered_by_their_own_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Gemma answers agents 1–2 and SmolLM2 agents 3–4 of the same episodes.

    At the first step a prompt depends only on the agent, λ and seed, so each agent's
    answers must equal those it gets in a population of its own model alone.
    """
    monkeypatch.setenv("SWALAB_CACHE_DIR", str(tmp_path / "cache"))
    gemma = {"backend": "llamacpp", "name": "gemma-3-270m", "max_tokens": 60}
    smol = {"backend": "llamacpp", "name": "smollm2-135m-instruct", "max_tokens": 60}
    base = {
        "name": "m",
        "game": {"n_agents": 4, "capacity": 16, "steps": 1},  # the first step is compared
        "policy": {"candidates": "llm", "k": 3, "mode": mode},
        "seeds": 1,
        "grid": {"lam": [0.0, 1.0]},
    }
    mixed = {
        **base,
        "model": gemma,
        "population": [{"kind": "swi", "count": 2}, {"kind": "swi", "count": 2, "model": smol}],
    }
    runs = {}
    for name, config in (
        ("mixed", mixed),
        ("gemma", {**base, "model": gemma}),
        ("smol", {**base, "model": smol}),
    ):
        out = tmp_path / name
        summary = run_experiment(load_config(config), out=out)
        assert summary.failed == [] and summary.ran == 2
        runs[name] = _first_step_proposals(out)
    for (lam, agent), proposals in runs["mixed"].items():
        alone = runs["gemma" if agent < 2 else "smol"][(lam, agent)]
        assert proposals == alone, (lam, agent)
    assert check_result_store(tmp_path / "mixed") == 2
    manifest = (tmp_path / "mixed" / "manifest.json").read_text()
    assert "gemma-3-270m" in manifest and "smollm2-135m-instruct" in manifest  # both recorded
    _, eps = query(tmp_path / "mixed", "SELECT population, prompts, tokens_out FROM episodes")
    for population, prompts, _ in eps:
        assert population == "swi×2 + swi[smollm2-135m-instruct]×2"
        assert prompts == 4  # one per agent
    # Tokens count once per distinct completion: the swi proposal prompt does not state λ,
    # so λ = 1 shares λ = 0's first-step answers.
    assert sum(tokens_out for *_, tokens_out in eps) > 0
    from swalab.analysis.reveal import reveal_rows

    revealed = reveal_rows(tmp_path / "mixed")
    assert {(r["model"], r["decisions"]) for r in revealed if r["lam"] == 1.0} == {
        ("gemma-3-270m", 2),  # revealed λ per model: its 2 agents' decisions
        ("smollm2-135m-instruct", 2),
    }

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

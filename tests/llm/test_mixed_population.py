"""SWI agents on the embedded Gemma 3 270M with a greedy outsider, through a config (slow)."""

from pathlib import Path

import pytest

from swalab.experiments import load_config, query, run_experiment
from swalab.experiments.presets import preset_path
from swalab.testing import check_result_store

pytestmark = pytest.mark.slow


def test_llm_agents_with_a_greedy_outsider(tmp_path: Path) -> None:
    config = load_config(preset_path("mixed_llm"), ["seeds=1", "game.steps=4"])
    summary = run_experiment(config, out=tmp_path)
    assert summary.failed == [] and summary.ran == 2
    assert check_result_store(tmp_path) == 2
    _, rows = query(tmp_path, "SELECT kind, count(*), count(proposals), min(demand), "
                    "max(demand) FROM steps GROUP BY kind ORDER BY kind")  # fmt: skip
    (g_kind, g_rows, g_asked, g_min, g_max), (s_kind, s_rows, s_asked, *_rest) = rows
    assert (g_kind, g_asked, g_min, g_max) == ("greedy", 0, 10.0, 10.0)  # no model call
    assert s_kind == "swi" and s_asked == s_rows == 4 * g_rows  # one proposal per SWI agent
    _, eps = query(tmp_path, "SELECT lam, steps_played, prompts, population FROM episodes")
    for _lam, played, prompts, population in eps:
        assert prompts == 4 * played and population == "greedy×1 + swi×4"

"""Every resource dilemma with LLM agents on the embedded Gemma 3 270M, and the judge (slow)."""

import math
from pathlib import Path

import pytest

from swalab.experiments import load_config, query, run_experiment
from swalab.experiments.presets import preset_path
from swalab.testing import check_result_store

pytest.importorskip("llama_cpp", reason="needs the llamacpp extra")
pytestmark = pytest.mark.slow

SMALL = [
    "seeds=1",
    "game.steps=3",
    "grid.lam=[0.0, 1.0]",
    "policy.candidates=llm",
    "policy.k=3",
    "model={backend: llamacpp}",
]


@pytest.mark.parametrize("preset", ["rate_limit", "context_budget", "commons"])
def test_llm_proposals_in_each_numeric_dilemma(preset: str, tmp_path: Path) -> None:
    overrides = [*SMALL, "grid.population=[null]"] if preset == "rate_limit" else SMALL
    if preset == "context_budget":
        overrides = [*overrides, "grid.game.n_agents=[5]"]
    if preset == "commons":
        overrides = [*overrides, "grid.env_params.lookahead=[3]"]
    summary = run_experiment(load_config(preset_path(preset), overrides), out=tmp_path)
    assert summary.failed == [] and summary.ran == 2
    assert check_result_store(tmp_path) == 2
    _, rows = query(
        tmp_path, "SELECT count(*), count(proposals), min(demand), max(demand) FROM steps"
    )
    ((n_rows, asked, low, high),) = rows
    assert n_rows == asked == 2 * 3 * 5  # one batched proposal per agent and step
    _, eps = query(tmp_path, "SELECT prompts, tokens_out, x_max FROM episodes")
    for prompts, tokens_out, x_max in eps:
        assert prompts == 15 and tokens_out > 0 and 0 <= low <= high <= x_max


@pytest.mark.parametrize(
    ("mode", "model"),
    [("policy.selector=llm", "gemma-3-270m"), ("policy.mode=prompted", "smollm2-135m-instruct")],
)
def test_the_other_agent_modes_in_a_dilemma(tmp_path: Path, mode: str, model: str) -> None:
    """The model picks a row of the rate limit's score table, or answers the amount itself."""
    overrides = [
        *SMALL,
        "grid.population=[null]",
        mode,
        f"model={{backend: llamacpp, name: {model}}}",
    ]
    summary = run_experiment(load_config(preset_path("rate_limit"), overrides), out=tmp_path)
    assert summary.failed == [] and summary.ran == 2
    assert check_result_store(tmp_path) == 2
    _, rows = query(
        tmp_path,
        "SELECT demand, proposals, fallback, candidates, llm_pick, pick_error, argmax_demand, "
        "latency_s FROM steps",
    )
    assert len(rows) == 2 * 3 * 5
    for demand, proposals, fallback, candidates, pick, pick_error, argmax, latency in rows:
        assert latency > 0
        if mode.endswith("prompted"):  # the answer is the amount: no scorer, no table
            assert candidates is None and argmax is None
            assert demand == proposals[0] if fallback == "none" else proposals is None
        elif pick is not None:  # the picked row was played
            assert demand == candidates[pick - 1] and pick_error is None
        else:  # an unusable pick keeps the argmax, and says why
            assert demand == argmax and pick_error
    _, eps = query(tmp_path, "SELECT pick_agreement, latency_s, tokens_out FROM episodes")
    for agreement, latency, tokens_out in eps:
        assert latency > 0 and tokens_out > 0
        assert agreement is None or not mode.endswith("prompted")  # prompted: nothing to pick


def test_text_mode_with_the_llm_judge(tmp_path: Path) -> None:
    from swalab.llm.backends.llamacpp import LlamaCppModel

    overrides = ["seeds=1", "game.steps=2", "grid.lam=[0.0, 1.0]"]
    summary = run_experiment(load_config(preset_path("dilemmas_llm"), overrides), out=tmp_path)
    assert summary.failed == [] and summary.ran == 2
    assert check_result_store(tmp_path) == 2
    _, rows = query(tmp_path, 'SELECT demand, text, candidates, judge, "group" FROM steps')
    model = LlamaCppModel()
    try:
        for demand, text, candidates, judge, group in rows:
            # The message posted is the one chosen, its length counted by the model's tokenizer.
            assert demand == len(model.tokenize(text, bos=False)) and demand in candidates
            assert 0.0 in candidates and len(judge) == len(candidates) == len(group)
            assert all(math.isnan(s) or 0.0 <= s <= 1.0 for s in judge)
    finally:
        model.close()
    _, eps = query(tmp_path, "SELECT judge_agreement, scorer FROM episodes")
    assert all(scorer == "judge" for _, scorer in eps)  # ρ itself may be NaN (constant grades)


def test_judge_scores_a_batch_in_one_call() -> None:
    from swalab.llm.backends.llamacpp import LlamaCppModel
    from swalab.llm.base import Completion
    from swalab.llm.judge import LLMJudge

    model = LlamaCppModel()
    calls: list[int] = []

    class Counting:
        identity = model.identity

        def generate(self, prompts, **kw) -> list[Completion]:  # type: ignore[no-untyped-def]
            calls.append(len(prompts))
            return model.generate(prompts, **kw)

    try:
        out = LLMJudge(model=Counting()).score(  # type: ignore[arg-type]
            ["A shared window of 100 tokens holds 20 tokens of instructions."] * 3,
            ["Agent 1 posts 5 tokens.", "Agent 1 posts 60 tokens.", "Agent 1 posts 95 tokens."],
        )
    finally:
        model.close()
    assert calls == [3] and len(out.scores) == 3 and out.tokens_out > 0
    for score, error in zip(out.scores, out.errors, strict=True):
        assert (error is None and 0.0 <= score <= 1.0) or (error is not None and math.isnan(score))

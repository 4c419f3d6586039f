"""The protocol and lockstep runner on scripted answers with hand-checked outcomes."""

import numpy as np
import pytest

from swalab.llm import CountingModel, ProtocolConfig, ScriptedModel, run_llm_episodes
from swalab.llm.protocol import Board, proposal_prompt
from swalab.swi.config import SimulationConfig

CONFIG = SimulationConfig(steps=3)


def always(text):
    return ScriptedModel(answer=lambda prompt, seed: text)


def test_greedy_proposals_are_chosen_by_the_swi_rule():
    # Candidates are the anchors plus 10 and 4. Below λ̃ = 0.75 everyone takes 10.
    model = CountingModel(always("[10, 4, 4, 4, 4, 4, 4]"))
    low, high = run_llm_episodes(CONFIG, model, [0.5, 0.9], [0])
    assert [r["demand"] for r in low.rows] == [10.0] * 15
    assert low.summary(20.0)["overload_rate"] == 1.0
    first = high.rows[0]
    assert first["candidates"] == [0.0, 2.0, 3.0, 4.0, 4.5, 10.0]
    # Belief 4 → others 16, C_eff 18: demand 2 reaches C_eff exactly.
    assert first["demand"] == 2.0
    assert high.status == low.status == "ok"
    assert len(model.calls) == 3  # one batched call per step for both episodes


def test_rows_record_everything_and_accounting_adds_up():
    model = CountingModel(always("[1, 2, 3, 4, 5, 6, 7]"))
    (ep,) = run_llm_episodes(CONFIG, model, [0.8], [1])
    assert len(ep.rows) == 15 and len(ep.loads) == 3
    row = ep.rows[0]
    for key in (
        "proposals",
        "candidates",
        "demand",
        "belief",
        "load",
        "welfare",
        "reward",
        "overloaded",
        "fallback",
        "proposal_error",
    ):
        assert key in row
    assert row["proposals"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert ep.accounting["prompts"] == 15
    assert ep.accounting["tokens_out"] == sum(c.tokens_out for c in model.calls)


@pytest.mark.parametrize(
    ("fallback", "candidates"),
    [("anchors", [0.0, 2.0, 3.0, 4.0, 4.5]), ("grid", [i * 0.25 for i in range(41)])],
)
def test_unparseable_answers_take_the_fallback_and_are_recorded(fallback, candidates):
    proto = ProtocolConfig(fallback=fallback, constrained=False)
    (ep,) = run_llm_episodes(CONFIG, always("I would like ten please"), [0.3], [0], proto)
    assert ep.status == "ok"
    assert all(r["proposals"] is None and r["fallback"] == fallback for r in ep.rows)
    assert "no JSON list" in ep.rows[0]["proposal_error"]
    assert ep.rows[0]["candidates"] == candidates
    s = ep.summary(20.0)
    assert s["proposal_failure_rate"] == 1.0 and s["fallback_rate"] == 1.0


def test_out_of_range_answers_are_failures_not_clipped():
    (ep,) = run_llm_episodes(
        CONFIG, always("[15, 3, 3, 3, 3, 3, 3]"), [0.3], [0], ProtocolConfig(constrained=False)
    )
    assert "out of range" in ep.rows[0]["proposal_error"]
    assert 15.0 not in ep.rows[0]["candidates"]


def test_fallback_fail_ends_the_episode():
    (ep,) = run_llm_episodes(CONFIG, always("nothing"), [0.3], [0], ProtocolConfig(fallback="fail"))
    assert ep.status == "failed" and "fallback is 'fail'" in ep.error
    assert ep.rows == [] and ep.loads == []


def test_a_backend_failure_ends_only_its_episode():
    def answer(prompt, seed):
        # The second round of episode λ=0.5 (its board shows loads of 50) has no answer.
        return None if "total 50" in prompt else "[10, 10, 10, 10, 10, 10, 10]"

    low, high = run_llm_episodes(CONFIG, ScriptedModel(answer=answer), [0.5, 0.9], [0])
    assert low.status == "failed" and "backend gave no answer" in low.error
    assert "step 1" in low.error and len(low.loads) == 1
    assert high.status == "ok" and len(high.loads) == 3


def test_llm_selector_uses_the_pick_and_records_agreement():
    def answer(prompt, seed):
        return "1" if "Best row:" in prompt[-20:] else "[10, 4, 4, 4, 4, 4, 4]"

    proto = ProtocolConfig(selector="llm")
    (ep,) = run_llm_episodes(CONFIG, CountingModel(ScriptedModel(answer=answer)), [0.5], [0], proto)
    # Row 1 is the smallest candidate (0); the argmax at λ=0.5 is 10.
    assert all(r["llm_pick"] == 1 and r["demand"] == 0.0 for r in ep.rows)
    assert all(r["argmax_demand"] == 10.0 and r["pick_agrees"] is False for r in ep.rows)
    assert ep.summary(20.0)["pick_agreement"] == 0.0


def test_unusable_pick_falls_back_to_argmax():
    def answer(prompt, seed):
        return "the best one" if "Best row:" in prompt[-20:] else "[10, 4, 4, 4, 4, 4, 4]"

    proto = ProtocolConfig(selector="llm", constrained=False)
    (ep,) = run_llm_episodes(CONFIG, ScriptedModel(answer=answer), [0.5], [0], proto)
    assert all(r["pick_error"] and r["demand"] == 10.0 for r in ep.rows)
    assert ep.summary(20.0)["pick_failure_rate"] == 1.0


def test_identical_prompts_in_a_call_are_generated_once():
    model = CountingModel(always("[10, 10, 10, 10, 10, 10, 10]"))
    first, *others = run_llm_episodes(CONFIG, model, [0.1, 0.2, 0.3], [0])
    # All three λ play x_max alike, so every board is shared: 5 distinct prompts per step.
    assert [c.prompts for c in model.calls] == [5, 5, 5]
    # The ledger: the first episode paid for each prompt; the copies paid nothing and
    # record the whole prompt as shared (the scripted model counts words as tokens).
    assert all(r["tokens_in"] > 0 and r["tokens_shared"] == 0 for r in first.rows)
    for ep in others:
        for mine, paid in zip(ep.rows, first.rows, strict=True):
            assert (mine["tokens_in"], mine["tokens_out"]) == (0, 0)
            assert mine["tokens_shared"] == paid["tokens_in"]
        assert ep.accounting["tokens_shared"] == first.accounting["tokens_in"]
        assert ep.accounting["tokens_in"] == 0


def test_prompt_shows_the_public_board():
    board = Board(
        step=2,
        steps=20,
        n_agents=5,
        capacity=20,
        beta=1.6,
        last_demands=np.array([10, 10, 9, 8, 7.5]),
    )
    text = proposal_prompt(
        ProtocolConfig().proposal_template, board, agent=1, belief=6.3, x_max=10, k=7, lam=0.5
    )
    assert text.endswith(
        "Round 3 of 20. Requests last round: 10, 10, 9, 8, 7.5 (total 44.5, "
        "over capacity).\nTypical request of the other agents: 6.3.\n"
        "Agent 2 candidate requests:"
    )
    assert "loses 0.32 points per unit" in text


def test_bad_protocol_settings_name_the_field():
    with pytest.raises(ValueError, match="selector='best' is not known"):
        ProtocolConfig(selector="best")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['mood'\]"):
        ProtocolConfig(proposal_template="Agent {agent} feels {mood}:")
    with pytest.raises(ValueError, match="lam"):
        run_llm_episodes(CONFIG, always("[1]"), [1.5], [0])


def test_a_large_board_is_summarised_not_listed():
    from swalab.llm.protocol import LISTED_AGENTS, Board

    demands = np.arange(LISTED_AGENTS + 5, dtype=float) % 11
    board = Board(
        step=1, steps=3, n_agents=demands.size, capacity=50.0, beta=1.6, last_demands=demands
    )
    line = board.history()
    mean = round(float(demands.mean()), 2)
    assert line == (
        f"Requests last round: 25 agents, mean {mean:g}, from 0 to 10 "
        f"(total {demands.sum():g}, over capacity)."
    )
    small = Board(step=1, steps=3, n_agents=3, capacity=50.0, beta=1.6, last_demands=demands[:3])
    assert small.history() == "Requests last round: 0, 1, 2 (total 3, within capacity)."


def test_the_scale_benchmark_asks_the_reference_on_a_sample_above_it():
    from swalab.llm.scale import llm_scale_benchmark

    def answer(prompt: str, seed: int) -> str:
        return '{"row": 1}' if "highest U" in prompt else "[1, 2, 3, 4, 5, 6, 7]"

    result = llm_scale_benchmark(
        agents=[4, 12], steps=2, backend="scripted", reference_sample=5, answer=answer
    )
    small, large = result["rows"]
    assert small["reference_agents_asked"] == 4 and large["reference_agents_asked"] == 5
    assert result["agents"] == 12 and result["ratio"] == large["ratio"]
    for row in (small, large):
        assert row["swalab_parse_failure_rate"] == 0.0 and not row["swalab_episode_failed"]
        assert 0 < row["prompt_tokens_evaluated"] <= row["prompt_tokens_naive"]
        assert row["peak_rss_mib"] > 0 and row["swalab_decisions_per_s"] > 0


def _by_prompt(prompt, seed):
    """Answers that depend on what the agent read and its seed, never on the batch."""
    h = sum(map(ord, prompt)) + 7 * seed
    return "[" + ", ".join(str((h >> j) % 11) for j in range(7)) + "]"


def _no_time(rows):
    return [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]


def test_episodes_of_different_games_share_each_steps_call():
    """The sweep-level executor: cells differing in capacity, β, horizon and outsiders
    play in one call per step, each exactly as it plays alone."""
    from swalab.llm.runner import run_llm_pairs

    games = [
        SimulationConfig(steps=3),
        SimulationConfig(steps=2, capacity=12.0, beta=2.5),
        SimulationConfig(steps=3, agents=("swi", "greedy", "swi", "swi", "random")),
    ]
    pairs = [(0.3, 1), (0.9, 2), (0.6, 3)]
    together = CountingModel(ScriptedModel(answer=_by_prompt))
    shared = run_llm_pairs(games[0], together, pairs, games=games)
    assert len(together.calls) == 3  # one call per step for all three cells
    for game, pair, ep in zip(games, pairs, shared, strict=True):
        (alone,) = run_llm_pairs(game, ScriptedModel(answer=_by_prompt), [pair])
        assert _no_time(ep.rows) == _no_time(alone.rows) and ep.welfare == alone.welfare
    assert len(shared[1].loads) == 2 and shared[1].rows[0]["load"] <= 5 * 10
    assert any(r["kind"] != "swi" for r in shared[2].rows)  # its outsiders played


def test_episodes_of_one_call_must_seat_the_same_number_of_agents():
    from swalab.llm.runner import run_llm_pairs

    with pytest.raises(ValueError, match=r"games\[1\].n_agents=4: must equal config's 5"):
        run_llm_pairs(
            CONFIG,
            ScriptedModel(answer=_by_prompt),
            [(0.5, 0), (0.5, 1)],
            games=[CONFIG, SimulationConfig(n_agents=4, capacity=16.0)],
        )


def test_the_scale_benchmark_plays_a_sweeps_cells_in_one_call_per_step(monkeypatch):
    from swalab.llm import scale
    from swalab.llm.accounting import CountingModel

    calls = []

    class Counted(CountingModel):
        def complete(self, request):
            calls.append(len(request))
            return super().complete(request)

    monkeypatch.setattr("swalab.llm.accounting.CountingModel", Counted)
    result = scale.llm_scale_benchmark(
        agents=[4], steps=2, cells=3, backend="scripted", answer=_by_prompt
    )
    assert result["cells"] == 3 and not result["swalab_episode_failed"]
    # three cells of 4 agents, each of its own β: one call of 12 prompts per step
    assert calls == [12, 12]
    assert result["prompt_tokens_naive"] == (
        result["prompt_tokens_evaluated"] + result["prompt_tokens_shared"]
    )

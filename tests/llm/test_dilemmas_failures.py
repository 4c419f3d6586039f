"""Failure paths of LLM agents in the dilemmas, caused with a scripted model."""

import pytest

from swalab import envs
from swalab.llm.dilemmas import BACKEND_FAILURE, run_llm_dilemma
from swalab.llm.scripted import ScriptedModel


def test_unparseable_and_failed_proposals_fall_back_to_the_grid_and_are_recorded():
    def answer(prompt: str, seed: int) -> str | None:
        return None if "agent 1 " in prompt else "I would send a few calls"

    dyn = envs.dynamics("rate_limit_v0", n_agents=2, steps=2, x_max=4)
    run = run_llm_dilemma(dyn, ScriptedModel(answer=answer), [0.5], [0], k=2)
    for row in run.rows[0]:
        assert row["proposals"] is None and row["fallback"] == "grid"
        assert row["proposal_error"]  # backend failure (agent 1) or parse error (agent 2)
        assert row["candidates"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # only the backend's silence marks the row, so the study stores the episode as failed
    assert [bool(r.get(BACKEND_FAILURE)) for r in run.rows[0]] == [True, False] * 2


def test_a_dilemma_episode_whose_backend_gave_no_answer_is_stored_failed(tmp_path, capsys):
    """Found at N = 1000: prompts that outgrew the context were played as grid draws and
    the cell stored as done. Now the episode fails with the backend's message and its cell
    is run again by the next run (here the backend is a dead endpoint)."""
    import json

    from swalab.cli import main
    from swalab.experiments import ResultStore

    pytest.importorskip("openai")
    config = {
        "name": "silent",
        "env": "rate_limit_v0",
        "game": {"n_agents": 2, "steps": 2},
        "policy": {"scorer": "consistent", "candidates": "llm", "anchors": []},
        "model": {
            "backend": "openai",
            "name": "x",
            "options": {"base_url": "http://127.0.0.1:9/v1"},
            "cache": False,
            "attempts": 1,
        },
        "seeds": 1,
        "grid": {"lam": [0.5]},
    }
    path = tmp_path / "silent.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 1
    assert "1 cell(s) failed" in capsys.readouterr().err
    store = ResultStore(out)
    assert store.finished() == set()
    (failure,) = store.failures().values()
    assert "step 0, agent 1: backend gave no answer: APIConnectionError" in failure["error"]


def test_text_mode_drops_failed_and_overlong_messages_and_says_why():
    def answer(prompt: str, seed: int) -> str | None:
        if "agent 1." in prompt:
            return None  # the backend gave no answer
        return "word " * 30  # 30 tokens by the word count, over x_max = 10

    dyn = envs.dynamics(
        "context_budget_v0", n_agents=2, steps=1, budget=40, critical=10, x_max=10, mode="text"
    )
    run = run_llm_dilemma(dyn, ScriptedModel(answer=answer), [0.5], [0], k=2, text=True)
    first, second = run.rows[0]
    assert first["proposal_error"].startswith("backend:")
    assert "30 tokens > x_max" in second["proposal_error"]
    for row in (first, second):  # posting nothing is the one candidate left
        assert row["candidates"] == [0.0] and row["text"] == "" and row["demand"] == 0.0
    assert run.tokenizer == "words"  # a scripted model has no tokenizer: said, not hidden


def test_text_mode_and_judge_need_messages():
    dyn = envs.dynamics("commons_v0", steps=1)
    with pytest.raises(ValueError, match=r"text mode and the judge need messages: commons_v0"):
        run_llm_dilemma(dyn, ScriptedModel(answers=["[1]"]), [0.5], [0], text=True)


def test_text_env_refuses_non_messages_and_overlong_messages_without_stepping():
    env = envs.make("context_budget_v0", mode="text", x_max=5)
    env.reset(seed=0)
    good = dict.fromkeys(env.agents, "hi there")
    with pytest.raises(ValueError, match=r"is not a message \(text mode\)"):
        env.step({**good, "agent_0": 3})
    with pytest.raises(ValueError, match=r"has 7 tokens: must have at most 5"):
        env.step({**good, "agent_0": "one two three four five six seven"})
    _, _, _, _, infos = env.step(good)
    assert infos["agent_0"]["step"] == 1 and infos["agent_0"]["load"] == 2.0 * len(good)


def test_prompted_agents_play_their_answer_and_a_failed_answer_draws_from_the_grid():
    answers = {"agent 1 ": "3", "agent 2 ": "no idea"}

    def answer(prompt: str, seed: int) -> str | None:
        assert "Answer with one number from 0 to 4" in prompt
        assert "Your goal: make 0.5 × own points + 0.5 × the group's score" in prompt
        return next(a for key, a in answers.items() if key in prompt)

    dyn = envs.dynamics("rate_limit_v0", n_agents=2, steps=3, x_max=4)
    model = ScriptedModel(answer=answer)
    run = run_llm_dilemma(dyn, model, [0.5], [0], mode="prompted")
    first, second = run.rows[0][:2]
    assert first["demand"] == 3.0 and first["proposals"] == [3.0] and first["fallback"] == "none"
    assert "candidates" not in first and "utility" not in first  # no scorer
    assert second["proposals"] is None and second["fallback"] == "grid"
    assert second["proposal_error"] and second["demand"] in (0.0, 1.0, 2.0, 3.0, 4.0)
    draws = [r["demand"] for r in run.rows[0][1::2]]
    again = run_llm_dilemma(dyn, model, [0.5], [0], mode="prompted")
    assert [r["demand"] for r in again.rows[0][1::2]] == draws  # the draw is seeded
    assert run.accounting["latency_s"] > 0 and first["latency_s"] > 0


def test_llm_selector_plays_the_picked_row_and_records_bad_picks():
    def answer(prompt: str, seed: int) -> str | None:
        if "Best row:" in prompt:  # the shipped choose template's question
            return "1" if "(w = 1.00)" in prompt else "row ninety"
        return "[4, 2]"

    dyn = envs.dynamics("rate_limit_v0", n_agents=2, steps=2, x_max=4)
    run = run_llm_dilemma(dyn, ScriptedModel(answer=answer), [[1.0, 0.0]], [0], k=2, selector="llm")
    first, second = run.rows[0][:2]
    assert first["candidates"] == [2.0, 4.0] and first["llm_pick"] == 1
    assert first["demand"] == 2.0
    assert first["pick_agrees"] == (first["utility"][0] == max(first["utility"]))
    assert second["llm_pick"] is None and "row ninety" in second["pick_error"]
    assert second["demand"] == second["argmax_demand"]  # an unusable pick keeps the argmax
    assert run.accounting["prompts"] == 8  # a proposal and a pick per agent and step


def test_dilemma_modes_refuse_what_they_cannot_play():
    dyn = envs.dynamics("context_budget_v0", n_agents=2, steps=1, mode="text")
    model = ScriptedModel(answers=["1"])
    with pytest.raises(ValueError, match=r"answer numbers: not in text mode"):
        run_llm_dilemma(dyn, model, [0.5], [0], text=True, mode="prompted")
    numeric = envs.dynamics("rate_limit_v0", n_agents=2, steps=1)
    with pytest.raises(ValueError, match=r"prompted agents have none"):
        run_llm_dilemma(numeric, model, [0.5], [0], mode="prompted", selector="llm")
    with pytest.raises(ValueError, match=r"mode='chatty', selector='code': choose mode swi"):
        run_llm_dilemma(numeric, model, [0.5], [0], mode="chatty")

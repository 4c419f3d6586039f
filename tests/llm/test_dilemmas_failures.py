"""Failure paths of LLM agents in the dilemmas, caused with a scripted model."""

import pytest

from swalab import envs
from swalab.llm.dilemmas import run_llm_dilemma
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

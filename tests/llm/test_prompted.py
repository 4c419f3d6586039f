"""The prompted mode: the model is told λ in words and answers its demand, with no scorer."""

import re

import numpy as np
import pytest

from swalab.experiments import ConfigError, load_config, plan
from swalab.llm import CountingModel, ProtocolConfig, ScriptedModel, run_llm_episodes
from swalab.llm.constraints import Demand
from swalab.llm.protocol import Board, default_template, prompted_prompt, stance
from swalab.swi.config import SimulationConfig

CONFIG = SimulationConfig(steps=3)
PROMPTED = ProtocolConfig(mode="prompted")


@pytest.mark.parametrize(
    ("lam", "words"),
    [
        (
            0.0,
            "1 × own points + 0 × the group's score as high as possible (social weight 0: only own",
        ),
        (
            0.3,
            "0.7 × own points + 0.3 × the group's score as high as possible "
            "(social weight 0.3: own points count more",
        ),
        (0.5, "(social weight 0.5: own points and the group's score count equally)"),
        (
            0.85,
            "0.15 × own points + 0.85 × the group's score as high as possible "
            "(social weight 0.85: the group's score counts more",
        ),
        (1.0, "(social weight 1: only the group's score counts)"),
    ],
)
def test_the_social_weight_is_stated_in_words(lam, words):
    assert words in stance(lam)


@pytest.mark.parametrize("chat", [False, True])
def test_prompted_prompt_shows_the_board_and_the_stance(chat):
    board = Board(
        step=1,
        steps=20,
        n_agents=5,
        capacity=20,
        beta=1.6,
        last_demands=np.array([10, 10, 9, 8, 7.5]),
    )
    text = prompted_prompt(
        default_template("prompted", chat=chat), board, agent=1, belief=6.3, x_max=10, lam=0.75
    )
    assert (
        "Round 2 of 20. Requests last round: 10, 10, 9, 8, 7.5 (total 44.5, over capacity)" in text
    )
    assert "Typical request of the other agents: 6.3." in text
    assert "loses 0.32 points per unit" in text and stance(0.75) in text
    assert ("You are agent 2" if chat else "Agent 2 requests this round:") in text
    assert "{" not in text


def test_the_answer_is_the_demand_and_there_is_no_scorer():
    def answer(prompt, seed):
        return "7.5" if "social weight 0:" in prompt else "2"

    formats = []

    class Recording(ScriptedModel):
        def complete(self, request):
            formats.extend(request.formats)
            return super().complete(request)

    model = CountingModel(Recording(answer=answer))
    low, high = run_llm_episodes(CONFIG, model, [0.0, 0.9], [0], PROMPTED)
    assert [r["demand"] for r in low.rows] == [7.5] * 15
    assert [r["demand"] for r in high.rows] == [2.0] * 15
    row = high.rows[0]
    assert row["proposals"] == [2.0] and row["fallback"] == "none"
    assert row["candidates"] is None and row["utility"] is None and row["argmax_demand"] is None
    # One call per step for both episodes, each agent asked for one number.
    assert len(model.calls) == 3
    assert formats and all(f == Demand(x_max=10, resolution=0.25) for f in formats)
    assert low.summary(20.0)["overload_rate"] == 1.0  # 5 × 7.5 = 37.5 > 20
    assert high.summary(20.0)["overload_rate"] == 0.0


@pytest.mark.parametrize("fallback", ["anchors", "grid"])
def test_an_unusable_answer_draws_from_the_fallback_pool_and_says_so(fallback):
    proto = ProtocolConfig(mode="prompted", fallback=fallback, constrained=False)
    (ep,) = run_llm_episodes(CONFIG, ScriptedModel(answer=lambda p, s: "a lot"), [0.5], [3], proto)
    pool = CONFIG.anchors if fallback == "anchors" else [i * 0.25 for i in range(41)]
    assert all(r["fallback"] == fallback and r["proposals"] is None for r in ep.rows)
    assert all(r["demand"] in pool and "no number" in r["proposal_error"] for r in ep.rows)
    assert ep.summary(20.0)["fallback_rate"] == 1.0
    # Seeded: the same episode draws the same demands.
    (again,) = run_llm_episodes(
        CONFIG, ScriptedModel(answer=lambda p, s: "a lot"), [0.5], [3], proto
    )
    assert [r["demand"] for r in again.rows] == [r["demand"] for r in ep.rows]
    assert len({r["demand"] for r in ep.rows}) > 1


def test_fallback_fail_ends_a_prompted_episode():
    proto = ProtocolConfig(mode="prompted", fallback="fail", constrained=False)
    (ep,) = run_llm_episodes(CONFIG, ScriptedModel(answer=lambda p, s: "11"), [0.5], [0], proto)
    assert ep.status == "failed" and "out of range" in ep.error


def test_prompted_has_no_table_to_pick_from():
    with pytest.raises(ValueError, match="mode='prompted' has none"):
        ProtocolConfig(mode="prompted", selector="llm")
    with pytest.raises(ValueError, match="mode='asked' is not known"):
        ProtocolConfig(mode="asked")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["policy.mode=prompted"], "policy.mode='prompted': the model answers each demand"),
        (
            [
                "policy.mode=prompted",
                "policy.candidates=llm",
                "model.backend=llamacpp",
                "policy.selector=llm",
            ],
            "policy.selector='llm' picks a row",
        ),
        (
            ["policy.mode=prompted", "env=commons_v0", "policy.scorer=consistent"],
            "policy.mode/selector: the prompted mode and the LLM selector ask a model",
        ),
        (
            [
                "policy.mode=prompted",
                "env=context_budget_v0",
                "env_params={mode: text}",
                "policy.scorer=consistent",
                "policy.candidates=llm",
                "model.backend=llamacpp",
            ],
            "env_params.mode='text' plays messages scored in code",
        ),
        (["policy.mode=told"], "policy.mode"),
    ],
)
def test_configs_that_cannot_be_prompted_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan(load_config({"name": "x"}, overrides))


def test_the_mode_is_part_of_the_cell_only_when_prompted():
    base = load_config(
        {"name": "x", "policy": {"candidates": "llm"}, "model": {"backend": "llamacpp"}}
    )
    swi = plan(base)[0]
    assert swi.key == plan(load_config(base.model_dump(exclude={"policy": {"mode"}})))[0].key
    prompted = plan(load_config(base.model_dump(), ["policy.mode=prompted"]))[0]
    assert prompted.key != swi.key


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gemma-3-270m", "smollm2-135m-instruct"])
def test_embedded_models_answer_a_prompted_demand_in_the_grammar(model, tmp_path):
    from swalab.experiments import run_experiment
    from swalab.experiments.query import query

    config = load_config(
        {
            "name": "prompted",
            "game": {"steps": 2},
            "policy": {"candidates": "llm", "mode": "prompted"},
            "model": {"backend": "llamacpp", "name": model, "cache": False},
            "seeds": 1,
            "grid": {"lam": [0.0, 1.0]},
        }
    )
    summary = run_experiment(config, out=tmp_path, show_progress=False)
    assert summary.failed == []
    _, rows = query(tmp_path, "SELECT demand, proposals, proposal_error FROM steps")
    assert len(rows) == 2 * 2 * 5
    assert all(err is None and props == [demand] for demand, props, err in rows)
    assert all(0 <= d <= 10 and (d * 4).is_integer() for d, _, _ in rows)

"""LLM agents whose stance drifts: rewrites between steps, judged and revealed λ, failures."""

import json
import re

import numpy as np
import pytest

from swalab.llm import ProtocolConfig, ScriptedModel
from swalab.llm.constraints import ParseError, Sentence
from swalab.llm.judge import LLMJudge
from swalab.llm.runner import run_llm_pairs
from swalab.llm.stance import CALIBRATION, Reflection, run_stance_drift
from swalab.swi.config import SimulationConfig

CONFIG = SimulationConfig(steps=6)


def _game(answers_for_reflection, demand="10", grade=None):
    """A scripted model: demands, rewrites (by call order) and judge grades by the text."""
    seen: list[str] = []
    rewrites = iter(answers_for_reflection)

    def answer(prompt: str, seed: int) -> str:
        seen.append(prompt)
        if "new goal:" in prompt:
            return next(rewrites)
        if prompt.startswith("Agents in a game share"):
            goal = re.search(r"Goal: (.*)\n", prompt).group(1)
            score = grade(goal) if grade else (0.9 if "group" in goal else 0.1)
            return json.dumps({"score": score})
        return demand

    return ScriptedModel(answer=answer), seen


def test_sentence_reads_one_bounded_line():
    fmt = Sentence(max_chars=20)
    assert fmt.parse('  "share the server fairly"\nmore') == "share the server"
    assert fmt.parse("\n\nkeep demand low") == "keep demand low"
    assert re.fullmatch(fmt.regex(), " Keep it under 5.")
    assert not re.fullmatch(fmt.regex(), "a" * 21)
    assert "{0,19}" in fmt.gbnf()
    with pytest.raises(ParseError, match="no text"):
        fmt.parse("\n  \n")
    with pytest.raises(ValueError, match="max_chars"):
        Sentence(max_chars=3)


def test_stances_are_rewritten_every_k_steps_and_played_in_the_next_prompts():
    n = CONFIG.n_agents
    rewrites = [f"agent plan {j} for the group" for j in range(n)] + [
        f"agent plan {j} mine only" for j in range(n)
    ]
    model, seen = _game(rewrites)
    run = run_stance_drift(
        CONFIG, model, [0.9], [0], reflection=Reflection(every=2), judge=LLMJudge(model=model)
    )
    (epochs,) = run.epochs
    assert [e.start for e in epochs] == [0, 2, 4]  # no reflection after the last step
    assert epochs[1].stances == rewrites[:n] and epochs[2].stances == rewrites[n:]
    assert epochs[1].grades == [0.9] * n and epochs[2].grades == [0.1] * n
    demand_prompts = [p for p in seen if p.rstrip().endswith("requests this round:")]
    assert len(demand_prompts) == 6 * n
    # Step 2's prompts carry the first rewrite, step 4's the second; step 0's λ in words.
    assert "social weight 0.9" in demand_prompts[0]
    assert "agent plan 3 for the group" in demand_prompts[2 * n + 3]
    assert "agent plan 1 mine only" in demand_prompts[4 * n + 1]
    rows = run.epoch_rows(CONFIG)
    assert [r["judged_lam"] for r in rows] == pytest.approx([0.9, 0.9, 0.1])  # λ in words: "group"
    assert all(r["steps"] == 2 and r["reflect_failures"] == 0 for r in rows)
    # The reflection prompt reports the epoch's own and neighbours' requests and points.
    reflect = next(p for p in seen if "new goal:" in p)
    assert "requested 10 units" in reflect and "over capacity in 2 of those 2 rounds" in reflect


def test_selfish_demands_reveal_a_low_lambda_whatever_the_stance_says():
    """Always x_max: the revealed interval is where x_max is a best response (brute force)."""
    model, _ = _game(["share everything with the group"] * 10, demand="10")
    run = run_stance_drift(CONFIG, model, [1.0], [0], reflection=Reflection(every=3))
    grid = np.arange(0, 10.25, 0.25)
    lams = np.linspace(0, 1, 4001)
    for row, epoch in zip(run.epoch_rows(CONFIG), run.epochs[0], strict=True):
        assert row["revealed_method"] == "interval"
        assert row["mean_demand"] == 10.0 and row["overload_rate"] == 1.0
        best = np.ones(lams.size, dtype=bool)  # λ at which 10 maximises every decision
        for r in (r for r in run.episodes[0].rows if epoch.start <= r["step"] < epoch.start + 3):
            load = grid + 4 * r["belief"]
            excess = np.maximum(load - CONFIG.capacity, 0)
            own = grid - CONFIG.beta / 5 * excess
            group = (load - CONFIG.beta * excess) / 5
            u = (1 - lams[:, None]) * own + lams[:, None] * group
            best &= u[:, -1] >= u.max(axis=1) - 1e-9
        assert row["revealed_low"] == 0.0
        assert row["revealed_high"] == pytest.approx(lams[best].max(), abs=1e-3)
        assert row["revealed_high"] < 1.0  # the stance says λ = 1; the demands do not


def test_an_unusable_rewrite_keeps_the_old_stance_and_says_why():
    n = CONFIG.n_agents
    model, _ = _game(["   "] + ["fine plan"] * (2 * n))
    run = run_stance_drift(CONFIG, model, [0.5], [0], reflection=Reflection(every=3))
    first, second = run.epochs[0][:2]
    assert second.stances[0] == first.stances[0]  # kept
    assert "no text" in second.reflect_errors[0]
    assert second.stances[1:] == ["fine plan"] * (n - 1)
    assert run.epoch_rows(CONFIG)[1]["reflect_failures"] == 1


def test_an_unusable_grade_is_nan_never_a_guess():
    model, _ = _game(["a plan"] * 10, grade=lambda goal: 2.0 if goal == "a plan" else 0.5)
    run = run_stance_drift(CONFIG, model, [0.5], [0], reflection=Reflection(every=3))
    rows = run.epoch_rows(CONFIG)
    assert rows[0]["judged_lam"] == 0.5 and rows[1]["judged_lam"] is None
    assert rows[1]["grade_failures"] == CONFIG.n_agents
    assert np.isnan(run.epochs[0][1].grades).all()
    assert [c["lam"] for c in run.calibration] == list(CALIBRATION)


def test_stances_need_the_prompted_mode_and_a_fixed_horizon():
    model, _ = _game(["x"])
    with pytest.raises(ValueError, match="stances: a stance text is read by prompted agents"):
        run_llm_pairs(CONFIG, model, [(0.5, 0)], ProtocolConfig(), stances=object())
    with pytest.raises(ValueError, match="horizon='geometric'"):
        run_stance_drift(SimulationConfig(steps=6, horizon="geometric"), model, [0.5], [0])
    with pytest.raises(ValueError, match="every"):
        Reflection(every=0)
    with pytest.raises(ValueError, match="unknown field"):
        Reflection(template="{secret}")


@pytest.mark.slow
def test_the_embedded_model_rewrites_its_stance_in_the_grammar(tmp_path):
    """The whole kind on Gemma, with cheap talk: bounded one-line stances, graded, stored."""
    from typer.testing import CliRunner

    from swalab.cli import app

    args = ["stance", "--steps", "4", "--every", "2", "--seeds", "1", "--agents", "3", "--talk"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{") :])
    (cell,) = out["cells"]
    assert cell["epoch_start"] == [0, 2] and cell["lam0"] == 0.9
    assert cell["lam_star"] == pytest.approx(0.7) and cell["lam_tilde"] == pytest.approx(0.75)
    assert cell["reflect_failures"] == 0 and cell["tokens"] > 0
    assert all(g is not None and g >= 0 for g in cell["promise_gap"])  # agents announced
    rewritten = [s for s in out["stances"] if s["epoch"] == 1]
    assert len(rewritten) == 3
    assert all(0 < len(s["stance"]) <= 160 and "\n" not in s["stance"] for s in rewritten)
    assert len(out["judge_calibration"]) == len(CALIBRATION)
    assert (tmp_path / "figures" / "stance.png").is_file()


def test_a_stance_study_plans_a_cell_per_starting_lambda_in_one_model_task():
    from swalab.experiments import ConfigError, load_config
    from swalab.experiments.config import ExecutorConfig
    from swalab.experiments.kinds import get_kind, plan

    config = load_config({"kind": "stance", "lam": [0.9, 0.2], "game": {"steps": 4}})
    cells = plan(config, "test")
    assert [c.assignment for c in cells] == [{"lam": 0.9}, {"lam": 0.2}]
    (task,) = get_kind("stance").tasks(cells, ExecutorConfig())
    assert task.kind == "llm" and len(task.cells) == 2
    with pytest.raises(ConfigError, match=r"policy\.mode='swi'"):
        load_config({"kind": "stance", "policy": {"candidates": "llm", "mode": "swi"}})
    with pytest.raises(ConfigError, match=r"lam=\[1.5\]"):
        load_config({"kind": "stance", "lam": [1.5]})


def test_cheap_talk_reads_everyones_announcement_before_the_answer_that_is_played():
    seen: list[tuple[str, int]] = []

    def answer(prompt: str, seed: int) -> str:
        seen.append((prompt, seed))
        if "new goal:" in prompt:
            return "keep it small"
        if prompt.startswith("Agents in a game share"):
            return '{"score": 0.5}'
        return "2" if "Announced for this round" in prompt else "10"

    proto = ProtocolConfig(mode="prompted", talk=True)
    run = run_stance_drift(
        CONFIG, ScriptedModel(answer=answer), [0.9], [0], protocol=proto,
        reflection=Reflection(every=3),
    )  # fmt: skip
    (ep,) = run.episodes
    assert all(r["demand"] == 2.0 and r["announced"] == 10.0 for r in ep.rows)
    played = [(p, s) for p, s in seen if "Announced for this round" in p]
    said = [(p, s) for p, s in seen if p.rstrip().endswith("this round:") and (p, s) not in played]
    assert len(played) == len(said) == 6 * CONFIG.n_agents
    assert "Announced for this round: 10, 10, 10, 10, 10 (total 50, over capacity)." in played[0][0]
    assert {s for _, s in said}.isdisjoint({s for _, s in played})  # their own seeds
    # Each row pays for both of its agent's calls.
    assert ep.rows[0]["tokens_in"] == len(said[0][0].split()) + len(played[0][0].split())
    assert all(r["promise_gap"] == 8.0 for r in run.epoch_rows(CONFIG))
    with pytest.raises(ValueError, match="talk=True: agents announce in words only"):
        ProtocolConfig(talk=True)


def test_an_announcement_that_does_not_parse_is_a_recorded_fallback():
    def answer(prompt: str, seed: int) -> str:
        if "new goal:" in prompt:
            return "keep it small"
        if prompt.startswith("Agents in a game share"):
            return '{"score": 0.5}'
        if "Announced for this round" in prompt:
            return "2"
        return "lots" if "Agent 1's goal" in prompt else "10"

    proto = ProtocolConfig(mode="prompted", talk=True, constrained=False)
    run = run_stance_drift(
        CONFIG, ScriptedModel(answer=answer), [0.9], [0], protocol=proto,
        reflection=Reflection(every=3),
    )  # fmt: skip
    rows = run.episodes[0].rows
    first = [r for r in rows if r["agent"] == 0]
    assert all(
        r["announce_fallback"] == "anchors" and "no number" in r["announce_error"] for r in first
    )
    assert all(r["announce_fallback"] == "none" for r in rows if r["agent"] != 0)
    assert all(r["fallback"] == "none" for r in rows)  # the played answers all parsed
    assert [e["announce_failures"] for e in run.epoch_rows(CONFIG)] == [3, 3]

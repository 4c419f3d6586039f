"""The LLM judge: its output format, failure paths and the agreement measure."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swalab.llm.constraints import ParseError, UnitScore
from swalab.llm.judge import RUBRIC, LLMJudge, judge_prompt, rank_agreement
from swalab.llm.scripted import ScriptedModel


def test_unit_score_format_parses_exactly_its_own_language():
    fmt = UnitScore(resolution=0.25)
    assert sorted(float(s) for s in fmt.allowed) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert fmt.parse(' {"score": 0.75}') == 0.75
    assert fmt.json_schema()["properties"]["score"]["enum"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert '"0.75"' in fmt.gbnf()
    import re

    assert re.fullmatch(fmt.regex(), ' {"score": 0.5}') and not re.fullmatch(fmt.regex(), "0.5")
    bad_answers = [
        ("0.5", "no JSON object"),
        ('{"score": 2}', "out of range"),
        ('{"grade": 1}', "no numeric score"),
        ('{"score": }', "not valid JSON"),
    ]
    for bad, why in bad_answers:
        with pytest.raises(ParseError, match=why):
            fmt.parse(bad)


def test_judge_prompts_carry_the_perspective_taking_rubric_and_failures_stay_nan():
    seen: list[str] = []

    def answer(prompt: str, seed: int) -> str | None:
        seen.append(prompt)
        if "\nalpha\n" in prompt:
            return '{"score": 0.8}'
        if "\nbravo\n" in prompt:
            return "I think it is fine"  # unparseable: recorded, never guessed
        return None  # backend failure

    judge = LLMJudge(model=ScriptedModel(answer=answer), constrained=False)
    out = judge.score(["s"] * 3, ["alpha", "bravo", "charlie"])
    assert out.scores[0] == 0.8 and math.isnan(out.scores[1]) and math.isnan(out.scores[2])
    assert out.errors[0] is None and "no JSON object" in out.errors[1] and out.errors[2]
    assert all(RUBRIC in p and "what shared resources does it consume?" in p for p in seen)
    assert judge_prompt("sit", "act").endswith("Answer:")
    with pytest.raises(ValueError, match="give one situation per action"):
        judge.score(["s"], ["A", "B"])


@given(st.lists(st.integers(-100, 100), min_size=3, max_size=30, unique=True))
def test_rank_agreement_is_one_for_monotone_maps_and_minus_one_reversed(xs):
    x = np.array(xs, dtype=np.float64)
    assert rank_agreement(np.exp(x / 50), x) == pytest.approx(1.0)
    assert rank_agreement(-x, x) == pytest.approx(-1.0)


def test_rank_agreement_drops_nan_and_is_nan_when_undefined():
    assert math.isnan(rank_agreement([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(rank_agreement([1.0, float("nan")], [1.0, 2.0]))
    assert rank_agreement([1.0, float("nan"), 2.0, 3.0], [1.0, 9.0, 2.0, 3.0]) == pytest.approx(1.0)

import pytest

from swalab.llm import CachedModel, CountingModel, NumberList, ResponseCache, ScriptedModel
from swalab.llm.base import BACKEND_ERROR, PARSE_ERROR, constraints_for, seeds_for
from swalab.llm.registry import BACKENDS, BackendSpec, MissingExtraError, load_model


def echo_seed(prompt, seed):
    return f"[{seed % 11}, {len(prompt) % 11}]"


def test_scripted_model_parses_with_the_format():
    m = ScriptedModel(answers=["[1, 2]", "[1]", None])
    out = m.generate(["a", "b", "c"], constraint=NumberList(k=2, x_max=10))
    assert out[0].value == [1.0, 2.0] and out[0].ok
    assert out[1].error_kind == PARSE_ERROR and "expected 2" in out[1].error
    assert out[2].error_kind == BACKEND_ERROR and out[2].text == ""


def test_cache_serves_a_rerun_without_calls(tmp_path):
    fmt = NumberList(k=2, x_max=10)
    prompts = ["p1", "p22", "p1"]
    first_counter = CountingModel(ScriptedModel(answer=echo_seed))
    first = CachedModel(first_counter, tmp_path / "c.sqlite").generate(
        prompts, constraint=fmt, temperature=0.7, seed=[3, 4, 5]
    )
    assert len(first_counter.calls) == 1 and first_counter.calls[0].prompts == 3
    counter = CountingModel(ScriptedModel(answer=echo_seed))
    again = CachedModel(counter, tmp_path / "c.sqlite")
    second = again.generate(prompts, constraint=fmt, temperature=0.7, seed=[3, 4, 5])
    assert counter.calls == []
    assert [c.value for c in second] == [c.value for c in first]
    assert all(c.cached for c in second) and again.hits == 3
    # A different seed, format or temperature is a different question.
    again.generate(["p1"], constraint=fmt, temperature=0.7, seed=9)
    again.generate(["p1"], constraint=NumberList(k=2, x_max=5), temperature=0.7, seed=3)
    assert len(counter.calls) == 2


def test_greedy_answers_are_shared_across_seeds(tmp_path):
    counter = CountingModel(ScriptedModel(answer=lambda p, s: "[1, 2]"))
    m = CachedModel(counter, tmp_path / "c.sqlite")
    m.generate(["p"], temperature=0.0, seed=1)
    m.generate(["p"], temperature=0.0, seed=2)
    assert len(counter.calls) == 1


def test_backend_failures_are_not_cached(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    m = CachedModel(ScriptedModel(answers=[None, "[1, 2]"]), cache)
    assert m.generate(["p"])[0].error_kind == BACKEND_ERROR
    assert len(cache) == 0
    assert m.generate(["p"])[0].text == "[1, 2]"
    assert len(cache) == 1


def test_accounting_totals():
    counter = CountingModel(ScriptedModel(answers=["[1, 2]", "bad", None]))
    counter.generate(["one two", "three", "four"], constraint=NumberList(k=2, x_max=10))
    totals = counter.totals()
    assert totals["calls"] == 1 and totals["prompts"] == 3
    assert totals["tokens_in"] == 3 and totals["tokens_out"] == 3  # the failure paid nothing
    assert totals["parse_failures"] == 1 and totals["backend_failures"] == 1


def test_per_prompt_arguments_are_checked():
    with pytest.raises(ValueError, match="seed has 2 entries"):
        seeds_for([1, 2], 3)
    with pytest.raises(ValueError, match="constraint has 1 entries"):
        constraints_for([None], 2)
    with pytest.raises(TypeError, match="not one string"):
        ScriptedModel(answers=["x"]).generate("abc")
    with pytest.raises(ValueError, match="temperature=-1"):
        ScriptedModel(answers=["x"]).generate(["a"], temperature=-1)


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"backend='gpt' is not known: choose one of \["):
        load_model("gpt")


def test_missing_extra_names_the_extra(monkeypatch):
    spec = BackendSpec(name="fake", target="x:y", extra="fake", requires=("no_such_mod_xyz",),
                       summary="")  # fmt: skip
    monkeypatch.setitem(BACKENDS, "fake", spec)
    with pytest.raises(MissingExtraError, match=r"pip install 'swalab\[fake\]'"):
        load_model("fake")


def test_every_registered_backend_points_at_a_real_module():
    import importlib.util

    for spec in BACKENDS.values():
        module, _, attr = spec.target.partition(":")
        assert importlib.util.find_spec(module) is not None, spec.name
        assert attr

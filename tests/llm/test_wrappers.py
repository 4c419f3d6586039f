from dataclasses import replace

import pytest

from swalab.llm import CachedModel, CountingModel, NumberList, ResponseCache, ScriptedModel
from swalab.llm.base import (
    BACKEND_ERROR,
    PARSE_ERROR,
    GenerationParams,
    constraints_for,
    seeds_for,
)
from swalab.llm.registry import BACKENDS, BackendSpec, MissingExtraError, load_model
from swalab.llm.retry import RetryingModel


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


def test_the_cache_keeps_shared_tokens_and_reads_a_cache_from_before_them(tmp_path):
    import sqlite3

    from swalab.llm.base import Completion, GenerationParams, Request
    from swalab.llm.cache import cache_key

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the table as swalab wrote it before the ledger
        conn.execute(
            "CREATE TABLE completions (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, latency_s REAL NOT NULL)"
        )
        ident = ScriptedModel(answer=echo_seed).identity
        old = cache_key(ident, "p_old", None, params=GenerationParams(), seed=0)
        conn.execute("INSERT INTO completions VALUES (?, 'kept', 5, 2, 0.5)", (old,))

    class Sharing(ScriptedModel):
        def complete(self, request: Request) -> list[Completion]:
            return [replace(c, tokens_shared=7) for c in super().complete(request)]

    cached = CachedModel(Sharing(answer=echo_seed), ResponseCache(path))
    fresh, before = cached.generate(["p_new", "p_old"])
    assert fresh.tokens_shared == 7 and not fresh.cached
    assert before.cached and before.text == "kept" and before.tokens_in == 5
    assert before.tokens_shared == 0  # not recorded then: unknown, never invented
    again = CachedModel(ScriptedModel(answer=echo_seed), ResponseCache(path))
    replayed = again.generate(["p_new"])[0]
    assert replayed.cached and replayed.tokens_shared == 7


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
    spec = BackendSpec(
        name="fake", target="x:y", extra="fake", requires=("no_such_mod_xyz",), summary=""
    )
    monkeypatch.setitem(BACKENDS, "fake", spec)
    with pytest.raises(MissingExtraError, match=r"pip install 'swalab\[fake\]'"):
        load_model("fake")


def test_every_registered_backend_points_at_a_real_module():
    import importlib.util

    for spec in BACKENDS.values():
        module, _, attr = spec.target.partition(":")
        assert importlib.util.find_spec(module) is not None, spec.name
        assert attr


class Flaky:
    """Answers fail (retryable) for the first ``fail_times`` asks of each listed prompt."""

    def __init__(self, flaky: set[str], fail_times: int) -> None:
        self.flaky, self.fail_times, self.asked = flaky, fail_times, {}

    def __call__(self, prompt, seed):
        self.asked[prompt] = self.asked.get(prompt, 0) + 1
        if prompt in self.flaky and self.asked[prompt] <= self.fail_times:
            return None
        return "[1, 2]"


def test_retry_asks_again_for_the_failed_prompts_only():
    flaky = Flaky({"b", "d"}, fail_times=1)
    counter = CountingModel(ScriptedModel(answer=flaky))
    waits = []
    m = RetryingModel(counter, attempts=3, backoff_s=0.5, sleep=waits.append)
    out = m.generate(["a", "b", "c", "d"], constraint=NumberList(k=2, x_max=10))
    assert all(c.ok and c.value == [1.0, 2.0] for c in out)
    assert [c.prompts for c in counter.calls] == [4, 2]  # the second call: b and d only
    assert flaky.asked == {"a": 1, "b": 2, "c": 1, "d": 2}
    assert m.retried == 2 and len(waits) == 1 and 0.5 <= waits[0] <= 1.0


def test_retry_gives_up_and_says_so_with_growing_waits():
    counter = CountingModel(ScriptedModel(answer=Flaky({"b"}, fail_times=99)))
    waits = []
    m = RetryingModel(counter, attempts=4, backoff_s=0.5, sleep=waits.append)
    a, b = m.generate(["a", "b"])
    assert a.ok and b.error_kind == BACKEND_ERROR
    assert b.error == "scripted backend failure (gave up after 4 attempts)"
    assert [c.prompts for c in counter.calls] == [2, 1, 1, 1]
    # Exponential backoff with up to backoff_s of jitter: 0.5·2^i + U[0, 0.5].
    assert len(waits) == 3
    for i, w in enumerate(waits):
        assert 0.5 * 2**i <= w <= 0.5 * 2**i + 0.5


def test_retry_leaves_permanent_failures_and_parse_errors_alone():
    class Permanent(ScriptedModel):
        def complete(self, request):
            from dataclasses import replace

            return [replace(c, retryable=False) for c in super().complete(request)]

    counter = CountingModel(Permanent(answers=[None, "nonsense"]))
    m = RetryingModel(counter, attempts=3, sleep=lambda s: None)
    out = m.generate(["a", "b"], constraint=NumberList(k=2, x_max=10))
    assert [c.error_kind for c in out] == [BACKEND_ERROR, PARSE_ERROR]
    assert len(counter.calls) == 1 and m.retried == 0


def test_retry_settings_are_checked():
    with pytest.raises(ValueError, match="attempts=0 is out of range"):
        RetryingModel(ScriptedModel(answers=["x"]), attempts=0)
    with pytest.raises(ValueError, match="waits must be >= 0"):
        RetryingModel(ScriptedModel(answers=["x"]), backoff_s=-1)


def test_the_stack_is_cache_then_retry_then_counter(tmp_path, monkeypatch):
    from swalab.llm import stack as stack_module

    flaky = Flaky({"b"}, fail_times=1)
    monkeypatch.setattr(stack_module, "load_model", lambda *a, **k: ScriptedModel(answer=flaky))
    stack = stack_module.open_model("scripted", cache=tmp_path / "c.sqlite")
    assert stack.model is stack.cache and stack.cache.model is stack.retry
    assert stack.retry.model is stack.counter
    stack.retry._sleep = lambda s: None
    first = stack.model.generate(["a", "b"], temperature=0.5, seed=3)
    assert all(c.ok for c in first) and len(stack.counter.calls) == 2  # b was asked twice
    again = stack.model.generate(["a", "b"], temperature=0.5, seed=3)
    assert all(c.cached for c in again) and len(stack.counter.calls) == 2


def test_generation_params_are_one_object_everywhere():
    params = GenerationParams(temperature=0.7, max_tokens=5, stop=["\n"])
    assert params.stop == ("\n",) and params.as_dict() == {
        "temperature": 0.7,
        "max_tokens": 5,
        "stop": ("\n",),
    }
    seen = []

    class Spy(ScriptedModel):
        def complete(self, request):
            seen.append(request.params)
            return super().complete(request)

    m = CountingModel(Spy(answers=["x", "y"]))
    m.generate(["p"], params, max_tokens=7)
    m.generate(["q"], temperature=0.1)
    assert seen == [
        GenerationParams(temperature=0.7, max_tokens=7, stop=("\n",)),
        GenerationParams(temperature=0.1),
    ]
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['top_k'\]: choose from"):
        m.generate(["p"], top_k=3)
    with pytest.raises(ValueError, match="max_tokens=0 is out of range"):
        GenerationParams(max_tokens=0)
    with pytest.raises(ValueError, match="not one string"):
        GenerationParams(stop="\n")


def test_cache_keys_every_generation_setting():
    from swalab.llm.base import ModelIdentity
    from swalab.llm.cache import cache_key

    ident = ModelIdentity(backend="b", model="m")
    base = cache_key(ident, "p", None, params=GenerationParams(temperature=0.5), seed=1)
    for change in ({"temperature": 0.6}, {"max_tokens": 65}, {"stop": ("x",)}):
        other = GenerationParams(**{"temperature": 0.5, **change})
        assert cache_key(ident, "p", None, params=other, seed=1) != base

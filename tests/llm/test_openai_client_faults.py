"""The openai backend against servers that misbehave, and what its cache keys hold.

These need the openai client but no model: each server is a few lines of stdlib on
127.0.0.1 answering every request the same way (:func:`swalab.testing.servers.fixed_reply`).
"""

import re

import pytest

from swalab.llm import ProtocolConfig, run_llm_episodes
from swalab.llm.base import BACKEND_ERROR, GenerationParams
from swalab.llm.cache import cache_key
from swalab.swi.config import SimulationConfig

pytest.importorskip("openai", reason="needs the openai extra")

from swalab.llm.backends.openai_compat import OpenAIModel
from swalab.testing.servers import completion, fixed_reply

FAST = ProtocolConfig(max_tokens=40)


def _key(model: OpenAIModel) -> str:
    return cache_key(model.identity, "p", None, params=GenerationParams(), seed=0)


def test_everything_that_changes_an_answer_is_in_the_cache_key():
    base = OpenAIModel("m", base_url="http://127.0.0.1:1/v1")
    variants = [
        OpenAIModel("m", base_url="http://127.0.0.1:2/v1"),
        OpenAIModel("m", base_url="http://127.0.0.1:1/v1", structured="llamacpp"),
        OpenAIModel("m", base_url="http://127.0.0.1:1/v1", endpoint="chat"),
        OpenAIModel("m", base_url="http://127.0.0.1:1/v1", revision="r2"),
        OpenAIModel("other", base_url="http://127.0.0.1:1/v1"),
    ]
    keys = {_key(base)} | {_key(v) for v in variants}
    assert len(keys) == 1 + len(variants)
    # ...and nothing that does not: the concurrency and timeout of the client.
    same = OpenAIModel("m", base_url="http://127.0.0.1:1/v1", concurrency=2, timeout=5)
    assert _key(same) == _key(base)


def test_server_answering_garbage_bytes_is_a_backend_failure():
    with fixed_reply(b"<<<not json at all>>>") as url:
        m = OpenAIModel("x", base_url=url)
        (c,) = m.generate(["hi"], max_tokens=4)
        assert c.error_kind == BACKEND_ERROR and c.text == ""
        (ep,) = run_llm_episodes(SimulationConfig(steps=2), m, [0.5], [0], FAST)
        assert ep.status == "failed" and "backend gave no answer" in ep.error
    assert "not JSON" in (c.error or "")


def test_an_html_page_is_a_backend_failure_that_says_so():
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    with fixed_reply(page, content_type="text/html") as url:
        (c,) = OpenAIModel("x", base_url=url).generate(["hi"], max_tokens=4)
    assert c.error_kind == BACKEND_ERROR and c.text == ""
    assert "not an OpenAI completion" in (c.error or ""), c.error


def test_a_completion_whose_text_is_not_text_is_a_backend_failure():
    with fixed_reply(completion(7)) as url:
        (c,) = OpenAIModel("x", base_url=url).generate(["hi"], max_tokens=4)
    assert c.error_kind == BACKEND_ERROR and "completion text is int" in (c.error or "")


def test_a_completion_with_no_text_is_an_empty_answer_not_a_crash():
    # A chat refusal has content null: nothing to parse, which the protocol records.
    with fixed_reply(completion(None)) as url:
        (c,) = OpenAIModel("x", base_url=url).generate(["hi"], max_tokens=4)
    assert c.error is None and c.text == ""


def test_a_reply_at_the_timeout_is_a_timeout_not_a_crash():
    with fixed_reply(completion("[1.5]", prompt_tokens=3), delay_s=1.0) as url:
        (c,) = OpenAIModel("x", base_url=url, timeout=0.5).generate(["hi"], max_tokens=4)
    assert c.text == "" and c.error is not None and "Timeout" in c.error, c.error


def test_a_good_reply_is_read():
    with fixed_reply(completion("[1.5]", prompt_tokens=3)) as url:
        (c,) = OpenAIModel("x", base_url=url).generate(["hi"], max_tokens=4)
    assert c.error is None and c.text == "[1.5]" and (c.tokens_in, c.tokens_out) == (3, 2)
    assert c.tokens_shared == 0  # the server said nothing of a prefix cache


def test_prompt_tokens_from_the_servers_prefix_cache_are_shared_not_paid():
    with fixed_reply(completion("[1.5]", prompt_tokens=30, cached_tokens=24)) as url:
        (c,) = OpenAIModel("x", base_url=url).generate(["hi"], max_tokens=4)
    assert (c.tokens_in, c.tokens_shared, c.tokens_out) == (6, 24, 2)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("localhost:8000/v1", "base_url='localhost:8000/v1'"),
        ("ftp://host/v1", "is not an http"),
        ("http:///v1", "base_url"),
    ],
)
def test_an_invalid_base_url_is_refused_before_any_request(url, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        OpenAIModel("x", base_url=url)


def test_server_answering_nonsense_text_is_a_recorded_parse_failure():
    with fixed_reply(completion("lorem ipsum")) as url:
        m = OpenAIModel("x", base_url=url)
        (ep,) = run_llm_episodes(SimulationConfig(steps=2), m, [0.5], [0], FAST)
    assert ep.status == "ok"
    assert all(
        r["fallback"] == "anchors" and "no JSON list" in r["proposal_error"] for r in ep.rows
    )
    assert ep.accounting["tokens_in"] == 9 * 10 and ep.accounting["tokens_out"] == 2 * 10


def test_auto_refuses_a_server_that_enforces_no_format():
    # It answers "hello" whatever the request asks for: no way of asking is enforced.
    refused = pytest.raises(ValueError, match=r"enforced none of the output formats")
    with fixed_reply(completion("hello")) as url, refused as err:
        OpenAIModel("m", base_url=url, structured="auto")
    assert "llamacpp, vllm, vllm-legacy" in str(err.value)  # no JSON schema off the chat API
    assert "structured=none" in str(err.value)


def test_auto_keeps_the_first_way_that_comes_back_in_the_format():
    with fixed_reply(completion("[0.5, 1, 0]")) as url:
        model = OpenAIModel("m", base_url=url, structured="auto")
    assert model.structured == "llamacpp" and '"structured": "llamacpp"' in model.identity.settings


def test_auto_says_when_the_server_is_not_there():
    with pytest.raises(ValueError, match=r"base_url='http://127.0.0.1:9/v1': the server did not"):
        OpenAIModel("m", base_url="http://127.0.0.1:9/v1", structured="auto", timeout=5)

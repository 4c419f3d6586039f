"""The openai backend against real OpenAI-compatible servers on 127.0.0.1."""

import re

import pytest

from swalab.llm import CountingModel, NumberList, ProtocolConfig, run_llm_episodes
from swalab.llm.retry import RetryingModel
from swalab.swi.config import SimulationConfig

pytest.importorskip("openai", reason="needs the openai extra")
pytest.importorskip("llama_cpp.server.app", reason="needs the server extra")

from swalab.llm.backends.openai_compat import OpenAIModel
from swalab.testing.servers import llama_server

pytestmark = pytest.mark.slow

FAST = ProtocolConfig(max_tokens=40)


@pytest.fixture(scope="module")
def server():
    with llama_server() as s:
        yield s


def test_grammar_is_enforced_by_the_server(server):
    m = OpenAIModel(server.model, base_url=server.base_url, structured="llamacpp")
    fmt = NumberList(k=3, x_max=10)
    out = m.generate(
        ["Three numbers between 0 and 10:"] * 2,
        constraint=fmt,
        temperature=0.9,
        seed=[1, 2],
        max_tokens=40,
    )
    assert all(c.ok and re.fullmatch(fmt.regex(), c.text) for c in out), out
    assert all(c.tokens_in > 0 and c.tokens_out > 0 for c in out)


def test_episode_through_the_server(server):
    m = CountingModel(
        OpenAIModel(server.model, base_url=server.base_url, structured="llamacpp", concurrency=4)
    )
    (ep,) = run_llm_episodes(SimulationConfig(steps=2), m, [0.9], [0], FAST)
    assert ep.status == "ok" and len(ep.rows) == 10
    assert all(r["proposal_error"] is None and len(r["proposals"]) == 7 for r in ep.rows)
    assert [c.prompts for c in m.calls] == [5, 5]


def test_server_killed_mid_run_fails_that_episode_clearly():
    with llama_server() as srv:
        inner = RetryingModel(
            OpenAIModel(srv.model, base_url=srv.base_url), attempts=2, backoff_s=0.05
        )

        class KillAfterFirstCall:
            identity = inner.identity
            calls = 0

            def generate(self, prompts, **kw):
                out = inner.generate(prompts, **kw)
                self.calls += 1
                if self.calls == 1:
                    srv.kill()
                return out

        before = run_llm_episodes(SimulationConfig(steps=1), inner, [0.9], [1], FAST)
        (ep,) = run_llm_episodes(SimulationConfig(steps=3), KillAfterFirstCall(), [0.9], [0], FAST)
    assert before[0].status == "ok" and len(before[0].rows) == 5
    assert ep.status == "failed"
    assert "step 1" in ep.error and "APIConnectionError" in ep.error
    assert "gave up after 2 attempts" in ep.error
    assert len(ep.loads) == 1 and len(ep.rows) == 5  # step 0 is kept, nothing invented


def test_bad_options_name_the_field():
    with pytest.raises(ValueError, match="structured='xml' is not known"):
        OpenAIModel("x", structured="xml")
    with pytest.raises(ValueError, match="needs endpoint='chat'"):
        OpenAIModel("x", structured="openai")

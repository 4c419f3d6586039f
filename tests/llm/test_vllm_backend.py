"""The vLLM backend's wiring, against a stand-in for ``vllm`` (no GPU on CI machines).

The real engine is exercised only where vLLM and a GPU exist; here a fake module records
what the backend asks of vLLM's documented API and answers like it.
"""

import importlib
import sys
import types
from dataclasses import dataclass, field

import pytest

from swalab.llm import NumberList


@dataclass
class FakeParams:
    temperature: float
    seed: int
    max_tokens: int
    stop: list | None = None
    structured_outputs: object = None


@dataclass
class FakeStructured:
    regex: str


@dataclass
class FakeLLM:
    model: str
    revision: str | None = None
    enable_prefix_caching: bool = False
    calls: list = field(default_factory=list)
    text: str = " [1, 2]"

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((list(prompts), list(params)))
        out = types.SimpleNamespace
        return [  # the second prompt's first two tokens come from the prefix cache
            out(
                prompt_token_ids=[1] * len(p),
                num_cached_tokens=2 * i,
                outputs=[out(text=self.text, token_ids=[7, 8, 9])],
            )
            for i, p in enumerate(prompts)
        ]


@pytest.fixture
def backend(monkeypatch):
    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, FakeParams
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = FakeStructured
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    monkeypatch.delitem(sys.modules, "swalab.llm.backends.vllm_offline", raising=False)
    try:
        yield importlib.import_module("swalab.llm.backends.vllm_offline")
    finally:  # the module is bound to the fake: never leave it for other tests
        sys.modules.pop("swalab.llm.backends.vllm_offline", None)


def test_a_sweeps_cells_reach_the_engine_in_one_generate_per_step(backend):
    """The sweep-level executor on vLLM: every episode of three cells (each its own β and
    capacity) in one offline ``generate`` per step, each prompt with its own seed."""
    from swalab.llm import ProtocolConfig
    from swalab.llm.runner import _seed32, run_llm_pairs
    from swalab.swi.config import SimulationConfig

    m = backend.VLLMModel("qwen2.5-7b-instruct")
    m._llm.text = " [1, 2, 3, 4, 5, 6, 7]"
    games = [
        SimulationConfig(steps=2, beta=b, capacity=c) for b, c in ((1.6, 20), (2.5, 20), (1.6, 15))
    ]
    played = run_llm_pairs(
        games[0], m, [(0.8, 0), (0.8, 1), (0.8, 2)], ProtocolConfig(), games=games
    )
    assert [len(prompts) for prompts, _ in m._llm.calls] == [15, 15]
    for t, (prompts, params) in enumerate(m._llm.calls):
        assert [p.seed for p in params] == [_seed32(s, t, i) for s in range(3) for i in range(5)]
        assert {(p.temperature, p.max_tokens) for p in params} == {(0.7, 120)}
        assert "loses 0.5 points" in prompts[5] and "handle 15 units" in prompts[10]
    assert all(ep.status == "ok" and len(ep.loads) == 2 for ep in played)
    assert all(r["proposal_error"] is None for ep in played for r in ep.rows)


def test_one_offline_generate_with_per_prompt_params(backend):
    m = backend.VLLMModel("qwen2.5-7b-instruct")
    assert m.identity.model == "Qwen/Qwen2.5-7B-Instruct" and m._llm.enable_prefix_caching
    fmt = NumberList(k=2, x_max=10)
    out = m.generate(["ab", "abcd"], constraint=fmt, temperature=0.7, seed=[3, 4], max_tokens=9)
    ((prompts, params),) = m._llm.calls
    assert prompts == ["ab", "abcd"]
    assert [p.seed for p in params] == [3, 4]
    assert all(p.structured_outputs.regex == fmt.regex() for p in params)
    assert [c.value for c in out] == [[1.0, 2.0], [1.0, 2.0]]
    assert [c.tokens_in for c in out] == [2, 2] and out[0].tokens_out == 3
    assert [c.tokens_shared for c in out] == [0, 2]

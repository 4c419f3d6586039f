"""The vLLM backend's wiring, against a stand-in for ``vllm`` (no GPU on CI machines).

The real engine is exercised only where vLLM and a GPU exist; here a fake module records
what the backend asks of vLLM's documented API and answers like it.
"""

import importlib
import sys
import types
from dataclasses import dataclass, field

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

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((list(prompts), list(params)))
        out = types.SimpleNamespace
        return [  # the second prompt's first two tokens come from the prefix cache
            out(
                prompt_token_ids=[1] * len(p),
                num_cached_tokens=2 * i,
                outputs=[out(text=" [1, 2]", token_ids=[7, 8, 9])],
            )
            for i, p in enumerate(prompts)
        ]


def test_one_offline_generate_with_per_prompt_params(monkeypatch):
    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, FakeParams
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = FakeStructured
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    monkeypatch.delitem(sys.modules, "swalab.llm.backends.vllm_offline", raising=False)
    backend = importlib.import_module("swalab.llm.backends.vllm_offline")
    try:
        check(backend)
    finally:  # the module is bound to the fake: never leave it for other tests
        sys.modules.pop("swalab.llm.backends.vllm_offline", None)


def check(backend):

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

"""The transformers backend on the embedded Gemma 3 270M GGUF (dequantised by transformers)."""

import re

import pytest
import regex

from swalab.llm import NumberList, ProtocolConfig, run_llm_episodes
from swalab.llm.protocol import Board, proposal_prompt
from swalab.swi.config import SimulationConfig

pytest.importorskip("torch", reason="needs the transformers extra")
pytest.importorskip("transformers", reason="needs the transformers extra")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf():
    from swalab.llm.backends.transformers_hf import TransformersModel

    return TransformersModel(batch_size=4)


def prompts(n=3):
    board = Board(
        step=1, steps=20, n_agents=5, capacity=20, beta=1.6, last_demands=[10, 10, 9, 8, 7.5]
    )
    template = ProtocolConfig().proposal_template
    return [
        proposal_prompt(template, board, agent=i, belief=6.3, x_max=10, k=7, lam=0.5)
        for i in range(n)
    ]


def test_identity_is_the_gguf_hash(hf):
    assert hf.identity.backend == "transformers" and hf.identity.model == "gemma-3-270m"
    assert re.fullmatch(r"[0-9a-f]{64}", hf.identity.revision)


def test_constrained_sampling_stays_in_the_format(hf):
    fmt = NumberList(k=7, x_max=10)
    out = hf.generate(prompts(4), constraint=fmt, temperature=1.2, seed=[5, 6, 7, 8], max_tokens=60)
    assert all(c.ok and re.fullmatch(fmt.regex(), c.text) for c in out), out


def test_seeds_are_per_prompt(hf):
    fmt = NumberList(k=7, x_max=10)
    ps = prompts(2)
    both = hf.generate(ps, constraint=fmt, temperature=0.7, seed=[11, 12], max_tokens=60)
    alone = hf.generate(ps[1:], constraint=fmt, temperature=0.7, seed=[12], max_tokens=60)
    assert both[1].text == alone[0].text


def test_episode_on_transformers(hf):
    (ep,) = run_llm_episodes(SimulationConfig(steps=1), hf, [0.9], [0])
    assert ep.status == "ok" and len(ep.rows) == 5
    assert all(r["proposal_error"] is None for r in ep.rows)


def test_restricted_check_is_greedy_identical(hf):
    fmt = NumberList(k=7, x_max=10)
    ps = prompts(3)
    on = hf.generate(ps, constraint=fmt, temperature=0.0, seed=[1, 2, 3], max_tokens=60)
    hf.restrict = False
    try:
        off = hf.generate(ps, constraint=fmt, temperature=0.0, seed=[1, 2, 3], max_tokens=60)
    finally:
        hf.restrict = True
    assert [c.text for c in on] == [c.text for c in off]
    assert all(c.ok for c in on)


def test_restricted_valid_set_is_the_whole_vocabularys(hf):
    """Along an answer, the tokens the restricted check allows are exactly those of the
    whole vocabulary whose text keeps the answer a prefix of the format's language."""
    fmt = NumberList(k=3, x_max=10)
    lit = hf.literal(fmt)
    assert lit is not None and 50 < lit.ids.size < 1000
    pattern = regex.compile(fmt.regex())
    special = set(hf.tokenizer.all_special_ids)
    for text in ["", "[", "[4", "[4.", "[4.5, ", "[4.5, 10", "[4.5, 10, 0.25"]:
        base = hf.tokenizer.encode(text, add_special_tokens=False)
        assert hf.tokenizer.decode(base) == text
        pieces = hf.tokenizer.batch_decode([[*base, t] for t in range(hf.n_tokens)])
        brute = {
            t
            for t, p in enumerate(pieces)
            if t not in special and p != text and pattern.fullmatch(p, partial=True)
        }
        assert {int(lit.ids[j]) for j in lit.valid(text)} == brute, text
    assert lit.complete("[4.5, 10, 0.25]") and not lit.complete("[4.5, 10")


def test_bfloat16_unpacks_the_gguf_and_keys_the_cache_apart():
    """bfloat16 loads the GGUF as dense weights (packed blocks are multiplied in float32)
    and says so in the identity, so its answers never mix with float32's in the cache."""
    import json

    import torch

    from swalab.llm.backends.transformers_hf import TransformersModel

    smol = TransformersModel("smollm2-135m-instruct", dtype="bfloat16", device="cpu")
    layer = smol.model.model.layers[0].self_attn.q_proj
    assert type(layer) is torch.nn.Linear and layer.weight.dtype == torch.bfloat16
    assert json.loads(smol.identity.settings) == {"chat": True, "dtype": "bfloat16"}
    assert smol.net is not None  # a Llama: cascade decoding
    fmt = NumberList(k=7, x_max=10)
    out = smol.generate(prompts(3), constraint=fmt, temperature=0.7, seed=[1, 2, 3])
    assert all(c.ok and re.fullmatch(fmt.regex(), c.text) for c in out), out

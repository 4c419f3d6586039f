"""Models made on the spot: Gemma 3's architecture with random weights (throughput checks)."""

import re

import pytest

from swalab.llm import NumberList

pytest.importorskip("torch", reason="needs the transformers extra")
pytest.importorskip("transformers", reason="needs the transformers extra")

from swalab.llm.backends import untrained


@pytest.fixture(scope="module")
def tiny():
    return untrained.untrained_model("tiny", device="cpu", batch_size=3)


def test_byte_tokenizer_round_trips_any_text():
    tok = untrained.byte_tokenizer()
    text = "Demand [3.5, 4]: ünïcode, tabs\tand\nnewlines"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.encode()) and tok.decode(ids) == text
    assert len(tok) == 259 and tok.pad_token_id == 0 and tok.eos_token_id == 1


def test_untrained_answers_stay_in_the_format_and_keep_their_seeds(tiny):
    fmt = NumberList(k=7, x_max=10)
    prompts = [f"Agent {i}: your demands?" for i in range(5)]
    seeds = [10, 11, 12, 13, 14]
    batch = tiny.generate(prompts, constraint=fmt, temperature=1.0, seed=seeds, max_tokens=60)
    assert all(c.ok and re.fullmatch(fmt.regex(), c.text) for c in batch), batch
    alone = tiny.generate(prompts[3:4], constraint=fmt, temperature=1.0, seed=[13], max_tokens=60)
    assert alone[0].text == batch[3].text
    assert tiny.identity.model == "untrained-tiny-bytes"
    assert tiny.identity.revision == "seed-0"


def test_free_text_never_writes_an_id_the_tokenizer_lacks():
    # gemma-3-270m's shape has 262,144 ids; the byte tokenizer 259: a free draw must stay
    # among the tokenizer's ids (the rest cannot be decoded).
    model = untrained.untrained_model("gemma-3-270m", device="cpu", batch_size=2)
    out = model.generate(["a", "b"], temperature=1.0, seed=[1, 2], max_tokens=8)
    assert all(c.tokens_out > 0 for c in out)


def test_bad_shapes_and_tokenizers_are_named(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"shape='huge' is not known"):
        untrained.untrained_model("huge")
    monkeypatch.setitem(untrained.SHAPES, "small", untrained.TINY | {"vocab_size": 100})
    with pytest.raises(ValueError, match=r"has 259 tokens: more than shape='small' holds \(100\)"):
        untrained.untrained_model("small", device="cpu")

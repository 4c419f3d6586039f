"""Cascade decoding against transformers' own forward pass, on small random models.

The shared prefix evaluated once and read by every row must give the logits that each
prompt gets alone in one ordinary forward pass, for both wirings (Llama; Gemma 3 with its
q/k norms, sandwich norms, two rotary tables and sliding-window layers), at every step.
"""

import pytest

torch = pytest.importorskip("torch", reason="needs the transformers extra")
transformers = pytest.importorskip("transformers", reason="needs the transformers extra")

from swalab.llm.backends.cascade import CascadeBatch, CascadeNet, supports  # noqa: E402

VOCAB = 97


#: What both small models share: tiny, eager attention (the reference forward pass).
SMALL = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=4,
    max_position_embeddings=256,
    attn_implementation="eager",
)


def llama():
    cfg = transformers.LlamaConfig(**SMALL, num_hidden_layers=2, num_key_value_heads=2)
    return transformers.LlamaForCausalLM(cfg)


def gemma(window=5):
    cfg = transformers.Gemma3TextConfig(
        **SMALL,
        num_hidden_layers=3,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=window,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    )
    return transformers.Gemma3ForCausalLM(cfg)


MODELS = {"llama": llama, "gemma3": gemma}


@pytest.fixture(params=sorted(MODELS))
def lm(request):
    torch.manual_seed(0)
    model = MODELS[request.param]().eval()
    with torch.no_grad():  # random norms, so a wrong norm wiring shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0.0, 0.5)
    return model


def alone(lm, tokens):
    """The last position's logits of one prompt through transformers' forward."""
    with torch.no_grad():
        return lm(input_ids=torch.tensor([tokens])).logits[0, -1].float()


def test_the_architectures_are_recognised(lm):
    assert supports(lm)
    bert = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, num_hidden_layers=1
    )
    assert not supports(transformers.BertForMaskedLM(bert))
    with pytest.raises(ValueError, match="model_type='bert' is not supported"):
        CascadeNet(transformers.BertForMaskedLM(bert))


@pytest.mark.parametrize("prefill", [None, 10, 1], ids=["one-pass", "two-rows", "one-row"])
def test_every_step_matches_each_prompt_alone(lm, monkeypatch, prefill):
    from swalab.llm.backends import cascade

    monkeypatch.setattr(cascade, "GROW", 2)  # the tail caches grow twice on the way
    if prefill is not None:  # the tails evaluated in slices of rows, written into one cache
        monkeypatch.setattr(cascade, "PREFILL_TOKENS", prefill)
    g = torch.Generator().manual_seed(1)
    prefix = torch.randint(0, VOCAB, (9,), generator=g).tolist()
    tails = [[3], [5, 8, 13], [21, 34], [55, 1, 2, 3, 4]]  # uneven: padding in the prefill
    net = CascadeNet(lm)
    with torch.no_grad():
        batch = CascadeBatch(net, prefix, tails, max_new=6, cols=None)
        seqs = [prefix + t for t in tails]
        for r, s in enumerate(seqs):
            assert torch.allclose(batch.first[r], alone(lm, s), atol=1e-4)
        rows = [0, 1, 2, 3]
        for step in range(5):
            ids = [(7 * r + 11 * step) % VOCAB for r in rows]
            if step == 2:  # two rows finish: compaction keeps the others' caches right
                rows, ids = rows[1:3], ids[1:3]
            logits = batch.step(rows, ids)
            for j, (r, tok) in enumerate(zip(rows, ids, strict=True)):
                seqs[r] = [*seqs[r], tok]
                assert torch.allclose(logits[j], alone(lm, seqs[r]), atol=1e-4), (step, r)
    assert max(len(s) for s in seqs) > 5  # past the sliding window of the Gemma model


def test_restricted_columns_equal_the_full_logits(lm):
    net = CascadeNet(lm)
    cols = torch.tensor([0, 5, 17, 96])
    with torch.no_grad():
        full = CascadeBatch(net, [1, 2, 3, 4], [[5], [6, 7]], max_new=2, cols=None).first
        some = CascadeBatch(net, [1, 2, 3, 4], [[5], [6, 7]], max_new=2, cols=cols).first
    assert torch.allclose(some, full[:, cols], atol=1e-5)


def test_the_resident_prefix_is_extended_not_recomputed(lm):
    net = CascadeNet(lm)
    with torch.no_grad():
        first = CascadeBatch(net, [1, 2, 3, 4, 5], [[6]], max_new=1, cols=None)
        longer = CascadeBatch(net, [1, 2, 3, 4, 5, 9, 9], [[6]], max_new=1, cols=None)
        shorter = CascadeBatch(net, [1, 2, 3], [[6]], max_new=1, cols=None)
    assert (first.prefix_paid, longer.prefix_paid, shorter.prefix_paid) == (5, 2, 0)
    assert torch.allclose(longer.first[0], alone(lm, [1, 2, 3, 4, 5, 9, 9, 6]), atol=1e-4)
    assert torch.allclose(shorter.first[0], alone(lm, [1, 2, 3, 6]), atol=1e-4)


def test_a_row_without_a_token_of_its_own_is_refused(lm):
    with pytest.raises(ValueError, match="at least one token after the shared prefix"):
        CascadeBatch(CascadeNet(lm), [1, 2], [[3], []], max_new=1, cols=None)


@pytest.fixture(scope="module")
def pair():
    """The same tiny random Gemma 3 decoded both ways; byte-level prompts of ~100 tokens
    cross its 64-token sliding window."""
    from swalab.llm.backends import untrained

    cascade = untrained.untrained_model("tiny", device="cpu", attention="cascade", batch_size=8)
    padded = untrained.untrained_model("tiny", device="cpu", attention="padded", batch_size=3)
    assert cascade.model.config.sliding_window == 64
    return cascade, padded


RULES = "Rules: ask for at most 10 units. Last round: 9, 7, 8, 10, 6. "
OTHER = "Rules: ask for at most 10 units. Last round: 1, 2, 2, 0, 3. "


def board_prompts(n, shared=RULES):
    return [shared + f"You are agent {i}; you asked {i % 4}. Ask:" for i in range(n)]


def test_cascade_answers_equal_transformers_padded_ones(pair):
    from swalab.llm import NumberList

    cascade, padded = pair
    # Two boards and a stranger in one chunk: a prefix of one token, two groups.
    prompts = [*board_prompts(4), *board_prompts(3, OTHER), "Something else entirely:"]
    fmt = NumberList(k=4, x_max=10)
    for temperature in (0.0, 1.0):
        kw = {"constraint": fmt, "temperature": temperature, "seed": list(range(8))}
        a = cascade.generate(prompts, max_tokens=30, **kw)
        b = padded.generate(prompts, max_tokens=30, **kw)
        assert [c.text for c in a] == [c.text for c in b]
        assert all(c.ok for c in a)
    free_a = cascade.generate(prompts[:3], temperature=1.0, seed=[4, 5, 6], max_tokens=12)
    free_b = padded.generate(prompts[:3], temperature=1.0, seed=[4, 5, 6], max_tokens=12)
    assert [c.text for c in free_a] == [c.text for c in free_b]


def test_shared_tokens_are_counted_once_and_add_up(pair):
    cascade, _ = pair
    rules = "Rules never seen before: at most 12 units; 11, 3, 5 last time. "
    prompts = board_prompts(6, rules)  # two chunks of the same board
    cascade.net.clear()  # earlier tests' prompts start with "Rules" too
    out = cascade.generate(prompts, temperature=0.0, max_tokens=3)
    lengths = [len(cascade.encode(p)) for p in prompts]
    assert [c.tokens_in + c.tokens_shared for c in out] == lengths
    common = len(cascade.encode(rules + "You are agent "))
    tails = sum(lengths) - 6 * common
    assert sum(c.tokens_in for c in out) == tails + common  # the prefix paid once
    again = cascade.generate(prompts, temperature=0.0, max_tokens=3)
    assert sum(c.tokens_in for c in again) == tails  # and then kept resident


def test_prompts_of_one_board_are_a_group(pair):
    from swalab.llm.backends.transformers_hf import MIN_GROUP, _groups

    cascade, _ = pair
    prompts = [*board_prompts(3), *board_prompts(2, OTHER), "Something else entirely:"]
    ids = sorted(cascade.encode(p) for p in prompts)
    got = _groups(ids, 1)
    first = len(cascade.encode(RULES + "You are agent ")) - 1
    other = len(cascade.encode(OTHER + "You are agent ")) - 1
    assert sorted(got) == [0, other, other, first, first, first]
    assert min(g for g in got if g) >= MIN_GROUP
    assert _groups([[1, 2, 3], [1, 2, 3]], 0) == [0, 0]  # too short to share


def test_group_tokens_are_paid_once(pair):
    cascade, _ = pair
    prompts = [*board_prompts(3, "Board one, seen once: 4, 4, 4. "), "Unrelated prompt here:"]
    cascade.net.clear()
    out = cascade.generate(prompts, temperature=0.0, max_tokens=2)
    lengths = [len(cascade.encode(p)) for p in prompts]
    assert [c.tokens_in + c.tokens_shared for c in out] == lengths
    board = len(cascade.encode("Board one, seen once: 4, 4, 4. You are agent "))
    # The first of the board pays its whole prompt, the others their own line.
    assert sum(c.tokens_in for c in out[:3]) == sum(lengths[:3]) - 2 * board


def test_bad_attention_settings_are_named():
    from swalab.llm.backends import untrained

    with pytest.raises(ValueError, match=r"attention='flash' is not one of"):
        untrained.untrained_model("tiny", device="cpu", attention="flash")
    from swalab.llm.backends.transformers_hf import _dtype

    with pytest.raises(ValueError, match=r"dtype='float33' is not a torch dtype"):
        _dtype("float33", "cpu")
    bert = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, num_hidden_layers=1
    )
    from swalab.llm.backends.transformers_hf import TransformersModel

    tok = untrained.byte_tokenizer()
    with pytest.raises(ValueError, match="attention='cascade' needs a Llama or Gemma 3 model"):
        TransformersModel.from_objects(
            transformers.BertLMHeadModel(bert), tok, name="bert", attention="cascade"
        )

"""The llama.cpp backend on the real embedded model (Gemma 3 270M)."""

import ctypes
import re

import pytest

from swalab.llm import NumberList, ProtocolConfig, run_llm_episodes
from swalab.llm.base import BACKEND_ERROR
from swalab.llm.constraints import Choice, Demand, UnitScore
from swalab.llm.protocol import Board, proposal_prompt
from swalab.llm.stack import open_model
from swalab.swi.config import SimulationConfig

pytest.importorskip("llama_cpp", reason="needs the llamacpp extra")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma():
    from swalab.llm.backends.llamacpp import LlamaCppModel

    model = LlamaCppModel()
    yield model
    model.close()


def prompts(n_episodes=2, n_agents=5):
    template = ProtocolConfig().proposal_template
    out = []
    for e in range(n_episodes):
        board = Board(
            step=1,
            steps=20,
            n_agents=n_agents,
            capacity=20,
            beta=1.6,
            last_demands=[10, 10, 9, 8, 7.5 - e],
        )
        out += [
            proposal_prompt(template, board, agent=i, belief=6.3, x_max=10, k=7, lam=0.5)
            for i in range(n_agents)
        ]
    return out


def test_identity_pins_the_weights(gemma):
    ident = gemma.identity
    assert ident.backend == "llamacpp" and ident.model == "gemma-3-270m"
    assert re.fullmatch(r"[0-9a-f]{64}", ident.revision)


def test_grammar_holds_even_at_high_temperature(gemma):
    fmt = NumberList(k=7, x_max=10)
    out = gemma.generate(
        prompts(), constraint=fmt, temperature=1.5, seed=list(range(10)), max_tokens=120
    )
    assert all(c.ok for c in out), [c.error for c in out]
    assert all(re.fullmatch(fmt.regex(), c.text) for c in out)
    assert all(c.tokens_out > 0 and c.tokens_in > 0 for c in out)


def test_greedy_answers_do_not_depend_on_the_batch(gemma):
    ps = prompts()
    fmt = NumberList(k=7, x_max=10)
    batched = gemma.generate(ps, constraint=fmt, temperature=0.0, max_tokens=60)
    alone = [gemma.generate([p], constraint=fmt, temperature=0.0, max_tokens=60)[0] for p in ps[:3]]
    assert [c.text for c in batched[:3]] == [c.text for c in alone]


@pytest.mark.parametrize(
    ("fmt", "answer"),
    [
        (NumberList(k=7, x_max=10), " [10, 8, 6, 4.5, 9, 0.25, 7]"),
        (Demand(x_max=10), " 7.75"),
        (Choice(options=12), " 11"),
        (UnitScore(), ' {"score": 0.85}'),
    ],
)
def test_restricted_tokens_are_exactly_those_the_grammar_can_take(gemma, fmt, answer):
    """Along a valid answer, the grammar's choices among the format's alphabet are its
    choices among the whole vocabulary, and a forced step is one text or the end."""
    import llama_cpp
    import numpy as np

    from swalab.llm.backends.llamacpp import END, _Sampler

    allowed = gemma.allowed_tokens(fmt)
    assert allowed is not None and allowed[0].size < 1000
    restricted = _Sampler(gemma._vocab, gemma._n_vocab, fmt, 0.0, 0, allowed)
    whole = _Sampler(gemma._vocab, gemma._n_vocab, fmt, 0.0, 0, None)
    data, arr = gemma._full
    vocab = np.arange(gemma._n_vocab, dtype=np.intc)
    path: list[int] = []
    for tok in [*gemma.tokenize(answer, bos=False), None]:
        n = gemma._n_vocab  # the whole vocabulary through the grammar: the slow, plain way
        data.id[:n], data.logit[:n], data.p[:n] = vocab, 0.0, 0.0
        arr.size, arr.selected, arr.sorted = n, -1, False
        llama_cpp.llama_sampler_apply(whole.grammar, ctypes.byref(arr))
        truth = np.sort(np.asarray(data.id[:n])[np.isfinite(np.asarray(data.logit[:n]))])
        assert np.array_equal(np.sort(restricted._valid()), truth)
        texts = {gemma._piece_of(int(t)) for t in truth if t not in gemma._eog}
        probe = _Sampler(gemma._vocab, gemma._n_vocab, fmt, 0.0, 0, allowed)
        for t in path:
            llama_cpp.llama_sampler_accept(probe.grammar, t)
        forced = probe.forced(gemma._eog)
        if not texts:
            assert forced == END
        elif len(texts) == 1 and not np.isin(truth, gemma._eog).any():
            assert forced is not None and gemma._piece_of(forced) == texts.pop()
        else:
            assert forced is None
        if tok is None:
            assert texts == set()  # the answer is complete: only the end is left
            break
        path.append(tok)
        for sampler in (restricted, whole):
            llama_cpp.llama_sampler_accept(sampler.grammar, tok)


def test_where_the_grammar_leaves_one_text_its_other_spellings_are_never_drawn(gemma):
    """A forced step takes the tokenizer's spelling (``,``), not a byte token (<0x2C>) the
    grammar allows too: along sampled answers, the other spellings weigh less than the
    share the sampler drops anyway."""
    import llama_cpp
    import numpy as np

    from swalab.llm.backends.llamacpp import MIN_RELATIVE_P, _Sampler

    fmt = NumberList(k=7, x_max=10)
    allowed = gemma.allowed_tokens(fmt)
    answers = gemma.generate(prompts(), constraint=fmt, temperature=0.7, seed=list(range(10)))
    forced = 0
    for prompt, answer in zip(prompts(), answers, strict=True):
        probe = _Sampler(gemma._vocab, gemma._n_vocab, fmt, 0.7, 0, allowed)
        toks, said = gemma.tokenize(prompt), gemma.tokenize(answer.text, bos=False)
        llama_cpp.llama_memory_seq_rm(gemma._mem, 1, -1, -1)
        gemma._decode([(t, j, 1, j == len(toks) - 1) for j, t in enumerate(toks)])
        for j, tok in enumerate(said):
            valid = probe._valid()
            spelled = set(probe.spelling[np.searchsorted(allowed[0], valid)].tolist())
            if len(spelled) == 1 and len(valid) > 1 and not np.isin(valid, gemma._eog).any():
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(gemma._ctx, -1), shape=(gemma._n_vocab,)
                ).astype(np.float64)
                own = spelled.pop()
                others = valid[valid != own]
                assert np.exp((logits[others] - logits[own]) / 0.7).max() < MIN_RELATIVE_P
                forced += 1
            llama_cpp.llama_sampler_accept(probe.grammar, tok)
            gemma._decode([(tok, len(toks) + j, 1, True)])
        probe.free()
    llama_cpp.llama_memory_seq_rm(gemma._mem, 1, -1, -1)
    assert forced >= 20  # ", " after every number with a decimal, "]" at the end...


def test_restricted_sampling_gives_the_same_greedy_answers(gemma):
    ps = prompts()
    fmt = NumberList(k=7, x_max=10)
    try:
        gemma.restrict = False
        whole = gemma.generate(ps, constraint=fmt, temperature=0.0, max_tokens=60)
    finally:
        gemma.restrict = True
    restricted = gemma.generate(ps, constraint=fmt, temperature=0.0, max_tokens=60)
    assert [c.text for c in restricted] == [c.text for c in whole]
    assert all(c.ok for c in restricted)


def test_every_prompt_token_is_paid_or_shared(gemma):
    """The ledger: a prompt's tokens are those evaluated for it plus those it reused."""
    ps = prompts()
    out = gemma.generate(ps, constraint=NumberList(k=7, x_max=10), temperature=0.0)
    assert [c.tokens_in + c.tokens_shared for c in out] == [len(gemma.tokenize(p)) for p in ps]
    # one board per episode: most of every prompt but the first is shared
    assert sum(c.tokens_shared for c in out) > 4 * sum(c.tokens_in for c in out)


def test_sampling_is_reproducible_for_the_same_call(gemma):
    ps = prompts(1)
    fmt = NumberList(k=7, x_max=10)
    a = gemma.generate(ps, constraint=fmt, temperature=0.7, seed=[1, 2, 3, 4, 5])
    b = gemma.generate(ps, constraint=fmt, temperature=0.7, seed=[1, 2, 3, 4, 5])
    assert [c.text for c in a] == [c.text for c in b]
    assert len({c.text for c in a}) > 1  # different seeds, different lists


def test_a_prompt_too_long_for_the_context_is_a_backend_failure():
    from swalab.llm.backends.llamacpp import LlamaCppModel

    small = LlamaCppModel(n_ctx=256, n_seq_max=4)
    out = small.generate(["word " * 400, "Hello"], max_tokens=4)
    assert out[0].error_kind == BACKEND_ERROR and "does not fit" in out[0].error
    assert out[1].ok and out[1].tokens_out >= 1
    small.close()


def test_real_episode_then_cache_replay(tmp_path):
    """CI's LLM episode: N=5, T=3, two λ on the embedded model; a rerun costs no call."""
    config = SimulationConfig(steps=3)
    first = open_model("llamacpp", cache=tmp_path / "cache.sqlite")
    eps = run_llm_episodes(config, first.model, [0.5, 0.9], [0])
    assert [e.status for e in eps] == ["ok", "ok"]
    for ep in eps:
        assert len(ep.rows) == 15
        assert all(len(r["proposals"]) == 7 and r["proposal_error"] is None for r in ep.rows)
        assert all(0 <= x <= 10 for r in ep.rows for x in r["proposals"])
        assert all(r["demand"] in r["candidates"] for r in ep.rows)
        s = ep.summary(20.0)
        assert s["proposal_failure_rate"] == 0.0
        assert s["tokens_in"] > 0 and s["tokens_out"] > 0 and s["latency_s"] > 0
    assert len(first.counter.calls) == 3  # one batched call per step

    again = open_model("llamacpp", cache=tmp_path / "cache.sqlite")
    replay = run_llm_episodes(config, again.model, [0.5, 0.9], [0])
    assert again.counter.calls == []

    def timeless(rows: list[dict]) -> list[dict]:  # wall time is the one thing a replay changes
        return [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]

    assert [timeless(e.rows) for e in replay] == [
        timeless([{**r, "cached": True} for r in e.rows]) for e in eps
    ]


def test_llm_selector_on_the_real_model():
    stack = open_model("llamacpp", use_cache=False)
    (ep,) = run_llm_episodes(
        SimulationConfig(steps=1), stack.model, [0.9], [0], ProtocolConfig(selector="llm")
    )
    assert ep.status == "ok"
    assert all(r["llm_pick"] is not None and r["pick_error"] is None for r in ep.rows)
    assert all(r["demand"] == r["candidates"][r["llm_pick"] - 1] for r in ep.rows)
    assert len(stack.counter.calls) == 2


def test_bench_llm_reports_its_keys():
    from swalab.experiments.studies.bench import llm_benchmark

    result = llm_benchmark(quick=True)
    for key in (
        "swalab_decisions_per_s",
        "reference_decisions_per_s",
        "ratio",
        "swalab_parse_failure_rate",
    ):
        assert key in result
    assert result["swalab_parse_failure_rate"] == 0.0
    assert result["swalab_decisions"] == 40 and result["reference_decisions"] == 10


def test_bench_llm_at_scale_shares_the_board_and_samples_the_reference():
    """Twelve agents see one board: the backend evaluates it once, not twelve times."""
    from swalab.llm.scale import llm_scale_benchmark

    result = llm_scale_benchmark(agents=[12], steps=1, reference_sample=1)
    (row,) = result["rows"]
    assert row["reference_agents_asked"] == 1 and row["swalab_parse_failure_rate"] == 0.0
    assert row["prompt_tokens_evaluated"] < 0.5 * row["prompt_tokens_naive"]
    assert 0 < row["peak_rss_mib"] < 4096
    for key in ("swalab_decisions_per_s", "reference_decisions_per_s", "ratio", "peak_rss_mib"):
        assert result[key] == row[key] > 0


def test_prompts_longer_than_one_decode_batch():
    """Suffixes that need several decode calls still give every sequence its logits."""
    from swalab.llm.backends.llamacpp import LlamaCppModel

    small = LlamaCppModel(n_batch=32, n_seq_max=8)
    ps = [
        f"Story {i}: " + "the quick brown fox jumps over the lazy dog " * (3 + i) for i in range(4)
    ]
    out = small.generate(ps, max_tokens=3)
    ref = [small.generate([p], max_tokens=3)[0] for p in ps]
    small.close()
    assert all(c.ok and c.tokens_out >= 1 for c in out)
    assert [c.text for c in out] == [c.text for c in ref]

"""llama.cpp in-process, multi-sequence: one decode per token for every prompt of a call.

The high-level ``llama_cpp.Llama`` takes one prompt per call. This backend drives the
low-level batch API instead, so that a whole step (every agent of every episode) decodes
together, one sequence id per prompt, and prompt evaluation is shared:

- a *resident* prefix (what all prompts of the call share, e.g. the instructions and
  few-shot examples) stays in sequence 0 across calls and is only extended or trimmed;
- prompts are grouped by a longer shared prefix (the public board of one episode), which
  is evaluated once per group and copied to the group's sequences;
- the rest of each prompt and every generated token go through one batch per step.

Each sequence has its own sampler chain (grammar, temperature, seeded distribution), so an
answer depends only on its prompt, seed and format, not on the batch it was served in
(up to float rounding of batched matrix products). The embedded models load from the PyPI
packages that ship them (:data:`swalab.llm.presets.EMBEDDED_MODELS`); any local GGUF path
works too. An instruction-tuned model is prompted through its own chat template (the one in
its GGUF), each prompt becoming one user turn that the model answers.
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _logger

from swalab.llm.backends import common_prefix
from swalab.llm.base import (
    Completion,
    GenerationParams,
    Model,
    ModelIdentity,
    Request,
    Stopwatch,
    backend_failure,
    finish,
)
from swalab.llm.constraints import OutputFormat, literal_charset
from swalab.llm.presets import EMBEDDED, PRESETS, embedded_path, file_sha256, resolve

#: Prompts sharing at least this many tokens beyond the common prefix share KV cells.
MIN_GROUP_PREFIX = 8


def embedded_model_path(name: str = EMBEDDED) -> Path:
    """Path of an embedded model's GGUF (default: Gemma 3 270M), from its PyPI package."""
    return embedded_path(name)


def _token_array(n: int) -> tuple[Any, Any]:
    data = np.recarray(
        (n,), dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
    )
    arr = llama_cpp.llama_token_data_array(
        data=data.ctypes.data_as(llama_cpp.llama_token_data_p), size=n, selected=-1, sorted=False
    )
    return data, arr


#: Tokens below this fraction of the top token's probability are never drawn (the mass
#: moved is at most vocabulary size × 1e-12, ~3e-7 for Gemma's 262k tokens).
MIN_RELATIVE_P = 1e-12


#: :meth:`_Sampler.forced` when the grammar allows nothing but the end of the answer.
END = -1


class _Sampler:
    """Seeded, grammar-constrained sampling at the cost of unconstrained sampling, exactly.

    Drawing reads the logits in place (no copy into llama.cpp's 262k-entry candidate
    array) and uses the sequence's own PCG64 stream, so an answer depends only on its
    logits and seed. Checking a grammar against the whole vocabulary costs ~80 ms per
    token; like llama.cpp's ``common_sampler`` this draws without the grammar first and
    checks only the drawn token. Only if the grammar rejects it are all tokens masked and a
    new token drawn. A valid token ``t`` is then returned with probability
    ``p(t) + (1 − V)·p(t)/V = p(t)/V`` (``V`` the valid mass): exactly the masked
    distribution.

    When the format's grammar is spelled with a small alphabet (``allowed``: the tokens
    written only with its characters, and end-of-generation), no other token can ever be
    valid, so the mask is computed over those alone and the draw is from the masked
    distribution directly: the same distribution for a fraction of the work. That also
    tells, without logits, when the grammar leaves one token (:meth:`forced`).
    """

    def __init__(
        self,
        vocab: Any,
        n_vocab: int,
        fmt: OutputFormat | None,
        temperature: float,
        seed: int,
        allowed: tuple[Any, Any] | None = None,
    ) -> None:
        self.n_vocab = n_vocab
        self.temperature = temperature
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.grammar = None
        self.allowed: Any = None
        if fmt is not None and allowed is not None:
            self.allowed, self.spelling = allowed
        self.valid: Any = None  # the tokens the grammar allows next, once known
        if fmt is not None:
            self.grammar = llama_cpp.llama_sampler_init_grammar(vocab, fmt.gbnf().encode(), b"root")
            if not self.grammar:
                raise ValueError(f"llama.cpp rejected the grammar of format {fmt.name}")
            self.one, self.one_arr = _token_array(1)
            if self.allowed is not None:
                self.few, self.few_arr = _token_array(self.allowed.size)
                self.zeros = np.zeros(self.allowed.size, dtype=np.single)

    def _draw(self, logits: Any) -> int:
        if self.temperature <= 0:
            return int(np.argmax(logits))
        top = float(np.max(logits))
        keep = np.flatnonzero(logits >= top + self.temperature * math.log(MIN_RELATIVE_P))
        weights = np.cumsum(np.exp((logits[keep] - top) / self.temperature, dtype=np.float64))
        pick = int(np.searchsorted(weights, self.rng.random() * weights[-1], side="right"))
        return int(keep[min(pick, keep.size - 1)])

    def sample(self, ctx: Any, row: int, full: tuple[Any, Any]) -> int:
        """Sample the next token of the sequence whose logits are in ``row``."""
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(ctx, row), shape=(self.n_vocab,)
        )
        if self.allowed is not None:
            valid = self._valid() if self.valid is None else self.valid
            self.valid = None
            if valid.size == 0:
                raise RuntimeError("the grammar allows no token at all")
            tok = int(valid[self._draw(logits[valid])])
            llama_cpp.llama_sampler_accept(self.grammar, tok)
            return tok
        tok = self._draw(logits)
        if self.grammar is None:
            return tok
        self.one.id[0], self.one.logit[0], self.one.p[0] = tok, 0.0, 0.0
        self.one_arr.size, self.one_arr.selected, self.one_arr.sorted = 1, -1, False
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(self.one_arr))
        if not np.isfinite(self.one.logit[0]):
            tok = self._constrained(logits, full)
        llama_cpp.llama_sampler_accept(self.grammar, tok)
        return tok

    def _valid(self) -> Any:
        """The tokens of ``allowed`` the grammar accepts in its present state."""
        data, arr = self.few, self.few_arr
        n = self.allowed.size
        data.id[:n] = self.allowed
        data.logit[:n] = self.zeros
        data.p[:n] = 0.0
        arr.size, arr.selected, arr.sorted = n, -1, False
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(arr))
        return np.asarray(data.id[:n])[np.isfinite(np.asarray(data.logit[:n]))].copy()

    def forced(self, eog: Any) -> int | None:
        """The next token when the grammar leaves no choice, accepted; else ``None``.

        Returns :data:`END` when only end-of-generation is left (the answer is complete,
        nothing more to decode). A forced token needs no logits. "No choice" means one
        text: a vocabulary may also spell ``,`` as a byte token, which the grammar allows
        too; the model's own spelling (``spelling``) is taken. The byte spelling's share is
        below :data:`MIN_RELATIVE_P`, which the draw drops anyway (at most 2e-16 at 146
        such positions of Gemma 3 270M answers; tests/llm/test_llamacpp.py checks it).
        """
        if self.allowed is None:
            return None
        valid = self._valid()
        at_end = np.isin(valid, eog)
        if at_end.all():
            return END
        spelled = np.unique(self.spelling[np.searchsorted(self.allowed, valid)])
        if not at_end.any() and spelled.size == 1:
            tok = int(spelled[0])
            llama_cpp.llama_sampler_accept(self.grammar, tok)
            return tok
        self.valid = valid
        return None

    def _constrained(self, logits: Any, full: tuple[Any, Any]) -> int:
        """Draw from the grammar-masked distribution.

        The grammar is checked only on the tokens :meth:`_draw` could pick at all (within
        ``MIN_RELATIVE_P`` of the top one); the whole vocabulary is checked only if none
        of those fits.
        """
        data, arr = full
        top = float(np.max(logits))
        floor = top + max(self.temperature, 1e-6) * math.log(MIN_RELATIVE_P)
        for ids in (np.flatnonzero(logits >= floor), np.arange(self.n_vocab)):
            n = ids.size
            data.id[:n] = ids
            data.logit[:n] = logits[ids]
            data.p[:n] = 0.0
            arr.size, arr.selected, arr.sorted = n, -1, False
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(arr))
            masked = np.asarray(data.logit[:n])
            if np.isfinite(masked).any():
                return int(data.id[self._draw(masked)])
        raise RuntimeError("the grammar allows no token at all")

    def free(self) -> None:
        """Release the llama.cpp grammar."""
        if self.grammar is not None:
            llama_cpp.llama_sampler_free(self.grammar)


@dataclass
class _Seq:
    """One prompt being completed in sequence ``sid``."""

    index: int
    sid: int
    tokens: list[int]
    fmt: OutputFormat | None
    seed: int
    sampler: _Sampler | None = None
    out: bytearray = field(default_factory=bytearray)
    n_out: int = 0
    done: bool = False


class LlamaCppModel(Model):
    """A GGUF model run by llama.cpp with multi-sequence batched decoding.

    Args:
        model: A preset name (default: the embedded Gemma 3 270M) or a GGUF file path.
        n_ctx: KV cells shared by all sequences of a call (unified cache).
        n_seq_max: Most sequences decoded together (one is the resident prefix).
        n_batch: Most tokens per decode call.
        n_threads: CPU threads (default: all cores).
        chat: Prompt through the GGUF's chat template, each prompt one user turn (default:
            the preset's, i.e. on for the embedded instruct model, off for a file path).
        restrict: Sample a format whose grammar is spelled with a small alphabet from the
            tokens of that alphabet alone, and skip decoding where the grammar leaves one
            token (the same distribution, less work; off: every token is scored).
        verbose: Let llama.cpp log to stderr.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        n_ctx: int = 8192,
        n_seq_max: int = 64,
        n_batch: int = 2048,
        n_threads: int | None = None,
        chat: bool | None = None,
        restrict: bool = True,
        verbose: bool = False,
    ) -> None:
        name = resolve("llamacpp", model)
        preset = PRESETS.get(name)
        embedded = preset is not None and preset.embedded
        path = embedded_path(name) if embedded else Path(name)
        if not path.is_file():
            raise ValueError(f"model={str(path)!r} is not a file: give a GGUF path or a preset")
        if n_seq_max < 2:
            raise ValueError(f"n_seq_max={n_seq_max} is out of range: must be >= 2")
        _logger.set_verbose(verbose)
        self.path = path
        self.chat = bool(preset.chat if chat is None and preset is not None else chat)
        self._identity = ModelIdentity(
            backend="llamacpp",
            model=name if embedded else path.name,
            revision=file_sha256(path),
            # A chat-templated prompt is another prompt: its answers are cached apart.
            settings='{"chat": true}' if self.chat else "",
        )
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        self._model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not self._model:
            raise ValueError(f"model={str(path)!r} could not be loaded by llama.cpp")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._template: bytes | None = None
        if self.chat:
            self._template = llama_cpp.llama_model_chat_template(self._model, None)
            if not self._template:
                llama_cpp.llama_model_free(self._model)
                raise ValueError(f"model={str(path)!r} has no chat template: set chat=False")
        cparams = llama_cpp.llama_context_default_params()
        threads = n_threads or os.cpu_count() or 1
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = min(n_batch, 512)
        cparams.n_seq_max = n_seq_max
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = True  # copies between sequences share cells instead of data
        cparams.swa_full = True  # keep whole prompts for sliding-window layers (Gemma 3)
        cparams.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise RuntimeError("llama.cpp could not create a context (out of memory?)")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self.n_ctx = llama_cpp.llama_n_ctx(self._ctx)
        self.n_seq_max = n_seq_max
        self.n_batch = n_batch
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._resident: list[int] = []
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._piece = ctypes.create_string_buffer(256)
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._full = _token_array(self._n_vocab)
        self.restrict = restrict
        self._alphabets: dict[frozenset[str], tuple[Any, Any]] = {}
        self._pieces: list[bytes] | None = None
        self._eog = np.array(
            [t for t in range(self._n_vocab) if llama_cpp.llama_vocab_is_eog(self._vocab, t)],
            dtype=np.intc,
        )

    @property
    def identity(self) -> ModelIdentity:
        """``llamacpp`` / model file / SHA-256 of the GGUF."""
        return self._identity

    def close(self) -> None:
        """Free the context and the weights."""
        if getattr(self, "_ctx", None):
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            llama_cpp.llama_model_free(self._model)
            self._ctx = None

    def __del__(self) -> None:
        self.close()

    # -- tokens -----------------------------------------------------------------------

    def as_chat(self, prompt: str) -> str:
        """``prompt`` as one user turn of the model's chat template, the answer to follow."""
        assert self._template is not None
        message = (llama_cpp.llama_chat_message * 1)()
        message[0].role, message[0].content = b"user", prompt.encode("utf-8")
        size = 2 * len(message[0].content) + 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_chat_apply_template(self._template, message, 1, True, buf, size)
            if n < 0:
                raise ValueError("llama.cpp does not know this model's chat template")
            if n <= size:
                return buf.raw[:n].decode("utf-8")
            size = n

    def _chat_tokens(self, prompt: str) -> list[int]:
        """Tokens of ``prompt`` as a user turn.

        The template's markup is read as control tokens and the prompt itself as plain
        text, so a prompt that writes ``<|im_end|>`` cannot end its turn.
        """
        text = self.as_chat(prompt)
        at = text.rfind(prompt)
        if at < 0:
            raise ValueError("the chat template changed the prompt's text")
        head, tail = text[:at], text[at + len(prompt) :]
        return [
            *self.tokenize(head, special=True),
            *self.tokenize(prompt, bos=False),
            *self.tokenize(tail, bos=False, special=True),
        ]

    def tokenize(self, text: str, *, bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of ``text`` (with BOS when the model wants one).

        ``special`` reads control tokens written as text (``<|im_start|>``): only for the
        chat template's own markup, never for text that came from elsewhere.
        """
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(
            self._vocab, raw, len(raw), buf, cap, bos and self._add_bos, special
        )
        if n < 0:
            raise RuntimeError(f"tokenizer needed {-n} slots for {len(raw)} bytes")
        return list(buf[:n])

    def allowed_tokens(self, fmt: OutputFormat | None) -> tuple[Any, Any] | None:
        """The tokens ``fmt`` can ever use, end-of-generation included, and their spelling.

        ``None``: any token. Only formats whose grammar is made of literals over a few
        ASCII characters are restricted (:func:`~swalab.llm.constraints.literal_charset`).
        The second array maps each token to the one the tokenizer spells its text with
        (a byte token ``<0x2C>`` to ``,``). The vocabulary is read once per model (~0.4 s
        for Gemma's 262k tokens), each alphabet once.
        """
        chars = None if fmt is None or not self.restrict else literal_charset(fmt.gbnf())
        if chars is None or not chars or any(ord(c) > 127 for c in chars):
            return None
        if chars not in self._alphabets:
            if self._pieces is None:
                self._pieces = [self._piece_of(t) for t in range(self._n_vocab)]
            ok = frozenset("".join(chars).encode())
            ids = [t for t, p in enumerate(self._pieces) if p and ok.issuperset(p)]
            allowed = np.union1d(np.array(ids, dtype=np.intc), self._eog)
            spelling = allowed.copy()
            for j, t in enumerate(allowed):
                if t not in self._eog:
                    own = self.tokenize(self._pieces[t].decode(), bos=False)
                    spelling[j] = own[0] if len(own) == 1 and own[0] in ids else t
            self._alphabets[chars] = (allowed, spelling)
        return self._alphabets[chars]

    def _piece_of(self, token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece, 256, 0, False)
        return bytes(self._piece.raw[:n]) if n > 0 else b""

    # -- decoding ---------------------------------------------------------------------

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> dict[int, int]:
        """Decode ``(token, pos, seq, want_logits)`` items; return seq -> logits row index.

        Items are split into batches of ``n_batch``. Logits survive only until the next
        decode, so they may be requested only in the last batch.
        """
        rows: dict[int, int] = {}
        for start in range(0, len(items), self.n_batch):
            chunk = items[start : start + self.n_batch]
            last = start + self.n_batch >= len(items)
            b = self._batch
            b.n_tokens = len(chunk)
            for j, (tok, pos, sid, want) in enumerate(chunk):
                if want and not last:
                    raise RuntimeError("logits requested outside the last decode batch")
                b.token[j] = tok
                b.pos[j] = pos
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = sid
                b.logits[j] = want
                if want:
                    rows[sid] = j
            rc = llama_cpp.llama_decode(self._ctx, b)
            if rc != 0:
                raise RuntimeError(f"llama_decode failed with code {rc}")
        return rows

    def complete(self, request: Request) -> list[Completion]:
        """Complete all prompts, ``n_seq_max − 1`` sequences at a time."""
        prompts, formats, seeds = request.prompts, request.formats, request.seeds
        params = request.params
        max_tokens = params.max_tokens
        results: list[Completion | None] = [None] * len(prompts)
        tokens = [self._chat_tokens(p) if self.chat else self.tokenize(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: tokens[i])  # neighbours share most
        chunk: list[int] = []
        budget = 0  # KV cells the chunk needs: shared prefix once, then each sequence's own
        for i in [*order, -1]:
            need = len(tokens[i]) + max_tokens if i >= 0 else 0
            if i >= 0 and need > self.n_ctx // 2:
                results[i] = backend_failure(
                    f"prompt of {len(tokens[i])} tokens + max_tokens={max_tokens} does not "
                    f"fit the context (n_ctx={self.n_ctx})"
                )
                continue
            if chunk and i >= 0:
                need -= common_prefix(tokens[chunk[0]], tokens[i])  # copied cells are shared
            if chunk and (i < 0 or len(chunk) >= self.n_seq_max - 1 or budget + need > self.n_ctx):
                watch = Stopwatch()
                seqs = [
                    _Seq(index=j, sid=s + 1, tokens=tokens[j], fmt=formats[j], seed=seeds[j])
                    for s, j in enumerate(chunk)
                ]
                t_in = self._run_chunk(seqs, params)
                wall = watch.elapsed()
                for sq in seqs:
                    results[sq.index] = finish(
                        sq.out.decode("utf-8", errors="replace"),
                        sq.fmt,
                        tokens_in=t_in[sq.sid],
                        tokens_shared=max(0, len(sq.tokens) - t_in[sq.sid]),
                        tokens_out=sq.n_out,
                        latency_s=wall,
                        stop=params.stop,
                    )
                chunk, budget = [], 0
                need = len(tokens[i]) + max_tokens if i >= 0 else 0
            if i >= 0:
                chunk.append(i)
                budget += need
        return [r for r in results if r is not None]

    def _run_chunk(self, seqs: list[_Seq], params: GenerationParams) -> dict[int, int]:
        """Evaluate the prompts of ``seqs`` with shared prefixes, then generate.

        Returns the prompt tokens each sequence paid for (its share of shared prefixes).
        """
        mem = self._mem
        toks = [s.tokens for s in seqs]
        common = min(len(t) for t in toks) - 1  # every sequence keeps >= 1 own token
        for t in toks[1:]:
            common = min(common, common_prefix(toks[0], t))
        prefix = toks[0][:common]
        keep = common_prefix(self._resident, prefix)
        if keep < len(self._resident):
            llama_cpp.llama_memory_seq_rm(mem, 0, keep, -1)
        self._decode([(tok, keep + j, 0, False) for j, tok in enumerate(prefix[keep:])])
        self._resident = list(prefix)
        paid = {s.sid: (len(prefix) - keep) / len(seqs) for s in seqs}
        for s in seqs:
            llama_cpp.llama_memory_seq_rm(mem, s.sid, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, 0, s.sid, -1, -1)
        # Groups: neighbours (prompts are sorted) sharing MIN_GROUP_PREFIX more tokens.
        starts: dict[int, int] = {}
        group: list[_Seq] = []
        items: list[tuple[int, int, int, bool]] = []
        for nxt in [*seqs, None]:
            if (
                nxt is not None
                and group
                and (common_prefix(group[0].tokens, nxt.tokens) >= common + MIN_GROUP_PREFIX)
            ):
                group.append(nxt)
                continue
            if len(group) > 1:
                shared = min(len(g.tokens) for g in group) - 1
                for g in group[1:]:
                    shared = min(shared, common_prefix(group[0].tokens, g.tokens))
                lead = group[0]
                self._decode(
                    [
                        (tok, common + j, lead.sid, False)
                        for j, tok in enumerate(lead.tokens[common:shared])
                    ]
                )
                for g in group[1:]:
                    llama_cpp.llama_memory_seq_cp(mem, lead.sid, g.sid, common, shared)
                for g in group:
                    starts[g.sid] = shared
                    paid[g.sid] += (shared - common) / len(group)
            elif group:
                starts[group[0].sid] = common
            group = [nxt] if nxt is not None else []
        # Everything but each prompt's last token first (any number of batches), then the
        # last tokens together, so every sequence's logits come from one final decode.
        finals: list[tuple[int, int, int, bool]] = []
        for s in seqs:
            rest = s.tokens[starts[s.sid] :]
            items += [(tok, starts[s.sid] + j, s.sid, False) for j, tok in enumerate(rest[:-1])]
            finals.append((rest[-1], len(s.tokens) - 1, s.sid, True))
            paid[s.sid] += len(rest)
        self._decode(items)
        rows = self._decode(finals)
        try:
            for s in seqs:
                s.sampler = _Sampler(
                    self._vocab,
                    self._n_vocab,
                    s.fmt,
                    params.temperature,
                    s.seed,
                    self.allowed_tokens(s.fmt),
                )
            self._generate_loop(seqs, rows, params)
        finally:
            for s in seqs:
                if s.sampler is not None:
                    s.sampler.free()
                llama_cpp.llama_memory_seq_rm(mem, s.sid, -1, -1)
        return {sid: round(p) for sid, p in paid.items()}

    def _generate_loop(
        self, seqs: list[_Seq], rows: dict[int, int], params: GenerationParams
    ) -> None:
        """Sample every live sequence, then decode what was sampled in one batch.

        A token the grammar forces is appended without logits for the one before it, and
        a sequence whose grammar is complete stops without decoding its last token.
        """
        stop_bytes = [s.encode() for s in params.stop if s]
        while True:
            early: list[tuple[int, int, int, bool]] = []
            finals: list[tuple[int, int, int, bool]] = []
            for s in seqs:
                if s.done:
                    continue
                assert s.sampler is not None
                chain = [s.sampler.sample(self._ctx, rows[s.sid], self._full)]
                while True:
                    tok = chain[-1]
                    if llama_cpp.llama_vocab_is_eog(self._vocab, tok):
                        chain.pop()
                        s.done = True
                        break
                    s.out += self._piece_of(tok)
                    s.n_out += 1
                    if s.n_out >= params.max_tokens or any(b in s.out for b in stop_bytes):
                        s.done = True
                        break
                    nxt = s.sampler.forced(self._eog)
                    if nxt is None:
                        break
                    if nxt == END:
                        s.done = True
                        break
                    chain.append(nxt)
                if s.done:
                    continue
                at = len(s.tokens) + s.n_out - len(chain)
                early += [(t, at + j, s.sid, False) for j, t in enumerate(chain[:-1])]
                finals.append((chain[-1], at + len(chain) - 1, s.sid, True))
            if not finals:
                return
            if len(early) + len(finals) <= self.n_batch:
                rows = self._decode(early + finals)
            else:
                self._decode(early)
                rows = self._decode(finals)

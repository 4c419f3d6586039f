"""Hugging Face transformers on CPU or GPU: shared-prefix batches, per-prompt seeds, constraints.

``model.generate`` shares one random stream across a batch, which would make an answer
depend on its batch-mates; this backend runs its own decoding loop instead: one forward
pass per token for the whole batch, each row sampled with its own seeded generator. Llama
and Gemma 3 models decode with the batch's shared prefix evaluated and kept once
(:mod:`~swalab.llm.backends.cascade`); others take transformers' own forward over a
left-padded batch. Output formats are enforced by prefix checking: at each step the
most likely tokens (top 64, then the rest of the vocabulary only if none of those fits)
are kept only if the text so far plus the token can still match the format's regular
expression (``regex`` partial matching), and end-of-sequence only once it matches fully.
A format spelled with a few characters (number lists, demands, scores) is checked over the
tokens spelled with them alone and drawn from the model's distribution over the valid ones
(:class:`_Literal`), which keeps a step cheap at a thousand rows and on a model whose top
tokens are nowhere near the format.

Models: a preset or repository id, a local directory, or a GGUF file (``gguf_file``,
dequantised by transformers); with no model, the embedded Gemma 3 270M GGUF.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import regex
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from swalab.llm.backends import common_prefix
from swalab.llm.backends.cascade import CascadeBatch, CascadeNet, supports
from swalab.llm.base import (
    Completion,
    Model,
    ModelIdentity,
    Request,
    Stopwatch,
    finish,
)
from swalab.llm.constraints import OutputFormat, literal_charset
from swalab.llm.presets import EMBEDDED, PRESETS, embedded_path, resolve

#: Tokens checked against the format before looking at the whole vocabulary.
TOP_CANDIDATES = 64


class _Prefix:
    """Which next tokens keep a row's text a prefix of the format's language."""

    def __init__(self, fmt: OutputFormat, tokenizer: Any, eos: set[int]) -> None:
        self.pattern = regex.compile(fmt.regex())
        self.tokenizer = tokenizer
        self.eos = eos

    def allowed(self, generated: list[int], logits: torch.Tensor) -> list[int]:
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        complete = self.pattern.fullmatch(text) is not None
        order = torch.argsort(logits, descending=True).tolist()
        for start, stop in ((0, TOP_CANDIDATES), (TOP_CANDIDATES, len(order))):
            ok = []
            for tok in order[start:stop]:
                if tok in self.eos:
                    if complete:
                        ok.append(tok)
                    continue
                piece = self.tokenizer.decode([*generated, tok], skip_special_tokens=True)
                if piece != text and self.pattern.fullmatch(piece, partial=True):
                    ok.append(tok)
            if ok:
                return ok
        return sorted(self.eos)  # nothing fits: end the row, the parser records why


class _Literal:
    """Which tokens can continue a text in a format spelled with a few characters.

    A format whose grammar is literals over a small alphabet
    (:func:`~swalab.llm.constraints.literal_charset`) can only ever be written with the
    tokens spelled in that alphabet (~150 of Gemma's 262k), so only those are checked, and
    their pieces are walked as a trie: a character the pattern rejects prunes every token
    that starts with it. That keeps a step's check cheap when the model's top tokens are
    nowhere near the format (a randomly initialised model: every token is), where the
    general check would scan the vocabulary. Answers are then drawn from the model's
    distribution over the valid tokens: the same distribution as masking all logits.
    """

    #: Partial-match results kept per format before the memo is cleared.
    MEMO = 200_000

    def __init__(self, pattern: regex.Pattern[str], ids: list[int], pieces: list[str]) -> None:
        self.pattern = pattern
        self.ids = np.asarray(ids, dtype=np.int64)
        self.pieces = pieces
        self.trie: dict[str, Any] = {}
        for col, piece in enumerate(pieces):
            node = self.trie
            for ch in piece:
                node = node.setdefault(ch, {})
            node.setdefault("", []).append(col)
        self._partial: dict[str, bool] = {}

    def _fits(self, text: str) -> bool:
        hit = self._partial.get(text)
        if hit is None:
            if len(self._partial) >= self.MEMO:
                self._partial.clear()
            hit = self._partial[text] = self.pattern.fullmatch(text, partial=True) is not None
        return hit

    def valid(self, text: str) -> list[int]:
        """Columns of :attr:`ids` whose piece keeps ``text`` a prefix of the language."""
        out: list[int] = []
        stack = [(self.trie, text)]
        while stack:
            node, so_far = stack.pop()
            for ch, child in node.items():
                if ch == "":
                    if so_far != text:
                        out += child
                elif self._fits(so_far + ch):
                    stack.append((child, so_far + ch))
        return out

    def complete(self, text: str) -> bool:
        """Whether ``text`` is a whole answer (end-of-sequence allowed)."""
        return self.pattern.fullmatch(text) is not None


#: ``TransformersModel(attention=...)`` values.
ATTENTION = ("auto", "cascade", "padded")


def _check_options(batch_size: int | None, attention: str) -> None:
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is out of range: must be >= 1")
    if attention not in ATTENTION:
        raise ValueError(f"attention={attention!r} is not one of {ATTENTION}")


def _dtype(name: str | None, device: str) -> torch.dtype:
    if name:
        found = getattr(torch, name, None)
        if not isinstance(found, torch.dtype):
            raise ValueError(f"dtype={name!r} is not a torch dtype (e.g. float32, bfloat16)")
        return found
    return torch.float32 if device == "cpu" else torch.bfloat16


def _settings(chat: bool, dtype: torch.dtype) -> str:
    """Identity settings: the chat template and a dtype other than float32 change answers."""
    found: dict[str, Any] = {"chat": True} if chat else {}
    if dtype != torch.float32:
        found["dtype"] = str(dtype).removeprefix("torch.")
    return json.dumps(found) if found else ""


class TransformersModel(Model):
    """A causal LM from transformers with batched, seeded, constrained decoding.

    Args:
        model: Preset name, repository id or local directory; ``None`` or the embedded
            preset loads the embedded Gemma 3 270M GGUF.
        gguf_file: GGUF file name inside ``model`` (a directory or repository).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (GPU if available).
        dtype: Torch dtype name; default float32 on CPU, bfloat16 on GPU. On a CPU that
            multiplies bfloat16 natively (AVX512-BF16, AMX) ``"bfloat16"`` is about twice as
            fast at scale, but its rounding lets a sampled answer change with the batch it
            was served in (float32 keeps answers independent of batch-mates).
        batch_size: Prompts per batch (default 256 with cascade decoding, else 16).
        revision: Repository revision (part of the cache key).
        chat: Prompt through the tokenizer's chat template, each prompt one user turn
            (default: the preset's, i.e. on for the embedded instruct model).
        restrict: Check formats spelled with a few characters over the tokens spelled with
            them alone (:class:`_Literal`); off, every format takes the general check.
        attention: ``"cascade"``: a chunk's shared prefix evaluated and kept once
            (:mod:`~swalab.llm.backends.cascade`; Llama and Gemma 3); ``"padded"``:
            transformers' own forward over a left-padded batch; ``"auto"``: cascade where
            the architecture is supported.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int | None = None,
        revision: str | None = None,
        chat: bool | None = None,
        restrict: bool = True,
        attention: str = "auto",
    ) -> None:
        name = resolve("transformers", model)
        preset = PRESETS.get(EMBEDDED if model is None else model)
        if gguf_file is None and preset is not None and preset.embedded:
            path = embedded_path(preset.name)
            name, gguf_file = str(path.parent), path.name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        _check_options(batch_size, attention)
        torch_dtype = _dtype(dtype, device)
        kwargs: dict[str, Any] = {"revision": revision}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
            packed = getattr(transformers, "GgufConfig", None)  # transformers >= 5
            if packed is not None and torch_dtype != torch.float32:
                # Packed GGUF blocks are multiplied in float32 whatever the dtype: unpack
                # them, so bfloat16 runs as the dense products the hardware is fast at.
                kwargs["quantization_config"] = packed(dequantize=True)
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, **kwargs)
        revision_id = revision or ""
        if gguf_file:
            from swalab.llm.presets import file_sha256

            revision_id = file_sha256(Path(name) / gguf_file) if Path(name).is_dir() else gguf_file
        label = preset.name if preset is not None and preset.embedded else (model or name)
        use_chat = bool(preset.chat if chat is None and preset is not None else chat)
        self._attach(
            lm, tokenizer, device, batch_size, restrict, label, revision_id, use_chat, attention
        )

    @classmethod
    def from_objects(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        revision: str = "",
        device: str = "cpu",
        batch_size: int | None = None,
        chat: bool = False,
        restrict: bool = True,
        attention: str = "auto",
    ) -> TransformersModel:
        """Wrap a model and tokenizer already in memory (e.g. one made on the spot).

        ``name`` and ``revision`` are its identity in the cache: give a made-up model a
        name no real one has.
        """
        _check_options(batch_size, attention)
        self = cls.__new__(cls)
        self._attach(
            model, tokenizer, device, batch_size, restrict, name, revision, chat, attention
        )
        return self

    def _attach(
        self,
        lm: Any,
        tokenizer: Any,
        device: str,
        batch_size: int | None,
        restrict: bool,
        label: str,
        revision: str,
        chat: bool,
        attention: str,
    ) -> None:
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.n_tokens = len(tokenizer)  # a model's vocabulary may be padded beyond it
        self.model = lm
        self.model.to(device).eval()
        self.device = device
        cascade = attention == "cascade" or (attention == "auto" and supports(lm))
        if cascade and not supports(lm):
            raise ValueError(
                f"attention='cascade' needs a Llama or Gemma 3 model, not model_type="
                f"{getattr(lm.config, 'model_type', None)!r}: use attention='padded'"
            )
        self.net = CascadeNet(self.model) if cascade else None
        self.batch_size = batch_size or (256 if cascade else 16)
        self.restrict = restrict
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.eos = {int(e) for e in [*eos_ids, self.tokenizer.eos_token_id] if e is not None}
        self.chat = chat
        if self.chat and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"model={label!r} has no chat template: set chat=False")
        self._identity = ModelIdentity(
            backend="transformers",
            model=label,
            revision=revision,
            settings=_settings(self.chat, self.model.dtype),
        )
        self._pieces: list[tuple[int, str]] | None = None
        self._literals: dict[str, _Literal | None] = {}

    @property
    def identity(self) -> ModelIdentity:
        """``transformers`` / model / revision (GGUF hash when loaded from a file)."""
        return self._identity

    def literal(self, fmt: OutputFormat | None) -> _Literal | None:
        """The restricted check for ``fmt``, or ``None`` when it takes the general one.

        The vocabulary's pieces are decoded once per model, each format's tokens once.
        """
        if fmt is None or not self.restrict:
            return None
        key = fmt.regex()
        if key not in self._literals:
            chars = literal_charset(fmt.gbnf())
            found = None
            if chars and all(ord(c) < 128 for c in chars):
                if self._pieces is None:
                    special = set(self.tokenizer.all_special_ids)
                    texts = self.tokenizer.batch_decode([[t] for t in range(self.n_tokens)])
                    self._pieces = [
                        (t, p)
                        for t, p in enumerate(texts)
                        if p and p.isascii() and t not in special
                    ]
                spelled = [(t, p) for t, p in self._pieces if chars.issuperset(p)]
                if spelled:
                    found = _Literal(
                        regex.compile(key), [t for t, _ in spelled], [p for _, p in spelled]
                    )
            self._literals[key] = found
        return self._literals[key]

    def encode(self, prompt: str) -> list[int]:
        """A prompt's tokens as this backend feeds them (chat template included)."""
        if self.chat:  # the template writes its own BOS and turn markup
            prompt = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return list(self.tokenizer(prompt, add_special_tokens=not self.chat)["input_ids"])

    def complete(self, request: Request) -> list[Completion]:
        """Complete every prompt, ``batch_size`` at a time.

        Cascade decoding sorts the prompts first, so that prompts sharing a prefix (one
        episode's board) are neighbours: a chunk's common prefix is evaluated once, and
        each run of neighbours sharing :data:`MIN_GROUP` more tokens is a group whose
        shared part is evaluated once too.
        """
        ids = [self.encode(p) for p in request.prompts]
        out: list[Completion | None] = [None] * len(ids)
        with torch.inference_mode():
            for chunk in self._chunks(ids):
                done = self._batch(request.subset(chunk), [ids[i] for i in chunk])
                for i, c in zip(chunk, done, strict=True):
                    out[i] = c
        return [c for c in out if c is not None]

    def _chunks(self, ids: list[list[int]]) -> list[list[int]]:
        n, size = len(ids), self.batch_size
        order = sorted(range(n), key=lambda i: ids[i]) if self.net is not None else list(range(n))
        return [order[s : s + size] for s in range(0, n, size)]

    def _batch(self, request: Request, ids: list[list[int]]) -> list[Completion]:
        formats, seeds, params = request.formats, request.seeds, request.params
        n = len(ids)
        watch = Stopwatch()
        literals = [self.literal(f) for f in formats]
        checks = [
            None if f is None or lit is not None else _Prefix(f, self.tokenizer, self.eos)
            for f, lit in zip(formats, literals, strict=True)
        ]
        # Restricted rows read their candidates' logits (and end-of-sequence's) from one
        # gather per step, drawn on the CPU with their own seeded stream; when every row
        # is restricted, cascade decoding computes only those columns of the output layer.
        used = [lit for lit in literals if lit is not None]
        eos = np.array(sorted(self.eos), dtype=np.int64)
        union = np.unique(np.concatenate([eos, *(lit.ids for lit in used)]))
        union_t = torch.as_tensor(union, device=self.device)
        narrow = self.net is not None and len(used) == n
        cols = [None if lit is None else np.searchsorted(union, lit.ids) for lit in literals]
        eos_cols = np.searchsorted(union, eos)
        gens: list[Any] = [
            np.random.Generator(np.random.PCG64(s))
            if lit is not None
            else torch.Generator(device=self.device).manual_seed(s)
            for s, lit in zip(seeds, literals, strict=True)
        ]
        generated: list[list[int]] = [[] for _ in ids]
        texts = [""] * n
        done = [False] * n
        stepper: _Padded | CascadeBatch
        if self.net is not None:
            shared = max(0, min(len(t) for t in ids) - 1)  # each row keeps a token of its own
            for t in ids[1:]:
                shared = min(shared, common_prefix(ids[0], t))
            stepper = CascadeBatch(
                self.net,
                ids[0][:shared],
                [t[shared:] for t in ids],
                params.max_tokens,
                union_t if narrow else None,
                grouped=_groups(ids, shared),
            )
            paid = list(stepper.paid)
            paid[0] += stepper.prefix_paid
        else:
            stepper = _Padded(self.model, ids, self.tokenizer.pad_token_id, self.device)
            paid = [len(t) for t in ids]
        logits = stepper.first
        active = list(range(n))
        for step in range(params.max_tokens):
            small = None
            if used:
                small = logits if narrow else logits.index_select(1, union_t)
                small = small.double().cpu().numpy()
            feed_rows, feed_ids = [], []
            for j, row in enumerate(active):
                lit = literals[row]
                if lit is not None:
                    assert small is not None
                    tok, piece = self._pick_literal(
                        lit, texts[row], small[j], cols[row], eos_cols, gens[row], params
                    )
                else:
                    tok = self._pick(
                        logits[j, : self.n_tokens].float(),  # ids it can write
                        checks[row],
                        generated[row],
                        gens[row],
                        params.temperature,
                    )
                if tok in self.eos:
                    done[row] = True
                    continue
                generated[row].append(tok)
                if lit is not None:
                    texts[row] += piece
                    # A whole answer the grammar cannot extend ends without another pass.
                    done[row] = lit.complete(texts[row]) and not lit.valid(texts[row])
                else:
                    texts[row] = self.tokenizer.decode(generated[row], skip_special_tokens=True)
                done[row] = done[row] or any(s and s in texts[row] for s in params.stop)
                if not done[row]:
                    feed_rows.append(row)
                    feed_ids.append(tok)
            if not feed_rows or step == params.max_tokens - 1:
                break
            logits = stepper.step(feed_rows, feed_ids)
            active = feed_rows
        wall = watch.elapsed()
        return [
            finish(
                self.tokenizer.decode(g, skip_special_tokens=True),
                f,
                tokens_in=p,
                tokens_shared=len(t) - p,
                tokens_out=len(g),
                latency_s=wall,
                stop=params.stop,
            )
            for g, f, t, p in zip(generated, formats, ids, paid, strict=True)
        ]

    def _pick_literal(
        self,
        lit: _Literal,
        text: str,
        scores: Any,
        cols: Any,
        eos_cols: Any,
        rng: np.random.Generator,
        params: Any,
    ) -> tuple[int, str]:
        """Draw the next token of a restricted row: ``(token, its piece)``."""
        valid = lit.valid(text)
        ids = [int(lit.ids[j]) for j in valid]
        where = [int(cols[j]) for j in valid]
        if lit.complete(text) or not valid:  # nothing fits: end, the parser records why
            ids += [int(e) for e in sorted(self.eos)]
            where += [int(c) for c in eos_cols]
        x = scores[where]
        if params.temperature <= 0:
            pick = int(np.argmax(x))
        else:
            weights = np.cumsum(np.exp((x - x.max()) / params.temperature))
            pick = int(np.searchsorted(weights, rng.random() * weights[-1], side="right"))
            pick = min(pick, len(ids) - 1)
        tok = ids[pick]
        return tok, ("" if tok in self.eos else lit.pieces[valid[pick]])

    def _pick(
        self,
        logits: torch.Tensor,
        check: _Prefix | None,
        generated: list[int],
        gen: torch.Generator,
        temperature: float,
    ) -> int:
        if check is not None:
            keep = torch.tensor(check.allowed(generated, logits), device=logits.device)
            masked = torch.full_like(logits, float("-inf"))
            masked[keep] = logits[keep]
            logits = masked
        if temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=gen))


#: Neighbouring prompts that share this many tokens beyond a chunk's prefix are a group.
MIN_GROUP = 8


def _groups(ids: list[list[int]], start: int) -> list[int]:
    """Per prompt (sorted), the tokens after ``start`` its run of neighbours shares.

    A run is neighbours whose common prefix reaches :data:`MIN_GROUP` tokens past
    ``start``; it ends where the next prompt would cut that prefix by more than
    :data:`MIN_GROUP` tokens (another board after the same instructions). Each prompt keeps
    at least one token of its own; a prompt alone gets 0.
    """
    out = [0] * len(ids)
    i = 0
    while i < len(ids):
        j, common = i, None
        while j + 1 < len(ids):
            joint = min(common_prefix(ids[j], ids[j + 1]), len(ids[i]) - 1, len(ids[j + 1]) - 1)
            if joint - start < MIN_GROUP or (common is not None and joint < common - MIN_GROUP):
                break
            common, j = joint if common is None else min(common, joint), j + 1
        if common is not None:
            out[i : j + 1] = [common - start] * (j + 1 - i)
        i = j + 1
    return out


class _Padded:
    """transformers' own forward over a left-padded batch with its KV cache."""

    def __init__(self, model: Any, ids: list[list[int]], pad: int, device: str) -> None:
        longest = max(len(t) for t in ids)
        self.model, self.pad, self.device = model, pad, device
        self.ids = torch.full((len(ids), longest), pad, dtype=torch.long, device=device)
        self.mask = torch.zeros((len(ids), longest), dtype=torch.long, device=device)
        for r, t in enumerate(ids):
            self.ids[r, longest - len(t) :] = torch.tensor(t, device=device)
            self.mask[r, longest - len(t) :] = 1
        self.positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.result = model(  # the last position's logits only: 262k × prompt is GBs
            input_ids=self.ids,
            attention_mask=self.mask,
            position_ids=self.positions,
            use_cache=True,
            logits_to_keep=1,
        )
        self.first = self.result.logits[:, -1, :]

    def step(self, rows: list[int], ids: list[int]) -> torch.Tensor:
        """Feed ``rows`` their next token (every other row padding); their next logits."""
        feed = torch.full((self.mask.shape[0], 1), self.pad, dtype=torch.long, device=self.device)
        at = torch.tensor(rows, device=self.device)
        feed[at, 0] = torch.tensor(ids, device=self.device)
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        self.positions = self.positions[:, -1:] + 1
        self.result = self.model(
            input_ids=feed,
            attention_mask=self.mask,
            position_ids=self.positions,
            past_key_values=self.result.past_key_values,
            use_cache=True,
        )
        return self.result.logits[at, -1, :]

"""Shared-prefix ("cascade") decoding of transformers' Llama and Gemma 3 models.

A step of a thousand agents is a thousand prompts that are one long shared text (the rules,
the public board) and a short tail each (the agent's own line, the chat template's close).
A padded batch evaluates the shared text once per row and keeps and reads one copy of its
keys and values per row — a thousand copies. Here the shared prefix is evaluated once and
kept once; each row keeps only its own tail's keys and values, and every row's queries read
the prefix in one matrix product per layer (cascade attention, as in Hydragen and
FlashInfer). The softmax is taken over the prefix's and the tail's scores together, so the
result is ordinary causal attention, not an approximation: the tests hold it to
transformers' own forward pass.

The layers' projections, norms, MLPs, rotary tables and embeddings are the model's own
modules, called as they are; only attention and the cache are done here, so a model is
supported when its layer wiring is one of the two written below (:data:`ARCHITECTURES`).
Logits are computed for the columns a format can spell when every row is restricted to them
(~150 of Gemma's 262k), the rest of the output layer is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from swalab.llm.backends import common_prefix

#: ``config.model_type`` values whose decoder layers this module knows how to wire.
ARCHITECTURES = ("llama", "gemma3", "gemma3_text")

#: Rows are compacted out of the tail cache once this share of them has finished.
COMPACT_SHARE = 0.25
#: Tokens of room a row's tail cache gains at a time while it answers.
GROW = 32
#: Most tail tokens evaluated in one pass when a batch starts (rows are sliced to fit).
PREFILL_TOKENS = 4096


def supports(lm: Any) -> bool:
    """Whether ``lm`` (a transformers causal LM) can be decoded here."""
    cfg = getattr(lm.config, "text_config", lm.config)
    return getattr(cfg, "model_type", None) in ARCHITECTURES


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _per_head(mask: torch.Tensor, group: int) -> torch.Tensor:
    """A (R, T, keys) mask laid out as the scores are: (R, 1, T·g, keys)."""
    rows, steps, keys = mask.shape
    return (
        mask[:, None, :, None, :]
        .expand(rows, 1, steps, group, keys)
        .reshape(rows, 1, steps * group, keys)
    )


@dataclass
class _Layer:
    module: Any
    kind: str  # layer type for the rotary tables ("" when the model has one kind)
    window: int | None  # sliding window (keys with q_pos - k_pos >= window are hidden)


class CascadeNet:
    """A transformers decoder run with one shared prefix per batch.

    Args:
        lm: A causal LM whose ``config.model_type`` is in :data:`ARCHITECTURES`.
    """

    def __init__(self, lm: Any) -> None:
        if not supports(lm):
            raise ValueError(
                f"model_type={getattr(lm.config, 'model_type', None)!r} is not supported by "
                f"cascade decoding: must be one of {ARCHITECTURES}"
            )
        self.lm = lm
        self.cfg = getattr(lm.config, "text_config", lm.config)
        self.base = lm.model
        self.gemma = self.cfg.model_type.startswith("gemma3")
        types = getattr(self.cfg, "layer_types", None)
        window = getattr(self.cfg, "sliding_window", None)
        self.layers = [
            _Layer(
                module,
                types[i] if self.gemma and types else "",
                window if types and types[i] == "sliding_attention" else None,
            )
            for i, module in enumerate(self.base.layers)
        ]
        first = self.layers[0].module.self_attn
        self.heads = self.cfg.num_attention_heads
        self.kv_heads = self.cfg.num_key_value_heads
        self.head_dim = first.head_dim
        self.cap = getattr(self.cfg, "final_logit_softcapping", None)
        self.attn_cap = getattr(self.cfg, "attn_logit_softcapping", None)
        self._resident: tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self.base.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype, which the cache keeps."""
        return self.base.embed_tokens.weight.dtype

    def empty_cache(self, rows: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, keys and values of ``rows`` tails of up to ``length`` tokens."""
        shape = (rows, self.kv_heads, length, self.head_dim)
        return [
            (
                torch.zeros(shape, dtype=self.dtype, device=self.device),
                torch.zeros(shape, dtype=self.dtype, device=self.device),
            )
            for _ in self.layers
        ]

    def clear(self) -> None:
        """Forget the resident prefix (and free its keys and values)."""
        self._resident = None

    def prefix(self, tokens: Sequence[int]) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
        """Keys and values of a shared prefix, and how many of its tokens were evaluated.

        The last prefix stays resident: a new one that starts with part of it evaluates
        only the rest (successive steps share the instructions).
        """
        tokens = list(tokens)
        kept, old = 0, None
        if self._resident is not None:
            old_tokens, old = self._resident
            kept = common_prefix(old_tokens, tokens)
        start = [(k[:, :kept], v[:, :kept]) for k, v in old] if old is not None and kept else None
        if kept == len(tokens):
            assert start is not None or not tokens
            kv = start or []
        else:
            rest = tokens[kept:]
            cache = self.empty_cache(1, len(rest))
            self.forward(
                torch.tensor([rest], device=self.device),
                start,
                kept,
                cache,
                torch.zeros(1, dtype=torch.long, device=self.device),
            )
            new = [(k[0], v[0]) for k, v in cache]
            kv = (
                new
                if start is None
                else [
                    (torch.cat([k0, k1], 1), torch.cat([v0, v1], 1))
                    for (k0, v0), (k1, v1) in zip(start, new, strict=True)
                ]
            )
        self._resident = (tokens, kv)
        return kv, len(tokens) - kept

    def forward(
        self,
        ids: torch.Tensor,
        prefix: list[tuple[torch.Tensor, torch.Tensor]] | None,
        prefix_len: int,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
        lens: torch.Tensor,
    ) -> torch.Tensor:
        """Run ``ids`` (rows × T new tokens) after each row's cached tail; final hidden states.

        Row ``r``'s new tokens go to tail slots ``lens[r] .. lens[r] + T - 1`` (position
        ``prefix_len`` + slot). Rows with fewer than T real tokens are padded at the end: what
        padding writes lies past the row's length and is overwritten by its next token.
        """
        rows, steps = ids.shape
        dev = self.device
        slots = lens[:, None] + torch.arange(steps, device=dev)[None, :]  # (R, T)
        qpos = slots + prefix_len
        used = int(slots.max()) + 1
        x = self.base.embed_tokens(ids)
        tables: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for layer in self.layers:
            if layer.kind not in tables:
                rope = self.base.rotary_emb
                cos, sin = rope(x, qpos, layer.kind) if layer.kind else rope(x, qpos)
                tables[layer.kind] = (cos[:, :, None, :], sin[:, :, None, :])
        group = self.heads // self.kv_heads
        keys = torch.arange(used, device=dev)
        # Per window, which keys each query may not see, laid out as the scores are
        # (R, 1, T·g, keys); the prefix part is None when every query sees all of it.
        hidden: dict[int | None, tuple[torch.Tensor, torch.Tensor | None]] = {}
        for layer in self.layers:
            if layer.window in hidden:
                continue
            tail = keys[None, None, :] > slots[:, :, None]  # causal within the tail
            head = None
            if layer.window is not None and int(qpos.max()) >= layer.window:
                tail = tail | (
                    qpos[:, :, None] - (keys + prefix_len)[None, None, :] >= layer.window
                )
                if prefix_len:
                    at = torch.arange(prefix_len, device=dev)
                    head = qpos[:, :, None] - at[None, None, :] >= layer.window
            hidden[layer.window] = (
                _per_head(tail, group),
                None if head is None else _per_head(head, group),
            )
        for i, layer in enumerate(self.layers):
            mod = layer.module
            attn = mod.self_attn
            h = mod.input_layernorm(x)
            q = attn.q_proj(h).view(rows, steps, self.heads, self.head_dim)
            k = attn.k_proj(h).view(rows, steps, self.kv_heads, self.head_dim)
            v = attn.v_proj(h).view(rows, steps, self.kv_heads, self.head_dim)
            if self.gemma:
                q, k = attn.q_norm(q), attn.k_norm(k)
            cos, sin = tables[layer.kind]
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            kc, vc = cache[i]
            at_row = torch.arange(rows, device=dev)[:, None].expand(rows, steps)
            kc.transpose(1, 2)[at_row, slots] = k.to(kc.dtype)
            vc.transpose(1, 2)[at_row, slots] = v.to(vc.dtype)
            # (R, kvH, T·g, d): the g query heads that read one key head, after each other
            qg = q.view(rows, steps, self.kv_heads, group, self.head_dim)
            qt = qg.permute(0, 2, 1, 3, 4).reshape(rows, self.kv_heads, steps * group, -1)
            tail_hidden, head_hidden = hidden[layer.window]
            scores = [self._scores(torch.matmul(qt, kc[:, :, :used].transpose(-1, -2)), attn)]
            scores[0].masked_fill_(tail_hidden, float("-inf"))
            if prefix:
                kp = prefix[i][0]
                flat = qt.permute(1, 0, 2, 3).reshape(self.kv_heads, rows * steps * group, -1)
                sp = torch.matmul(flat, kp.transpose(-1, -2))  # the prefix read once per batch
                sp = sp.view(self.kv_heads, rows, steps * group, -1).permute(1, 0, 2, 3)
                scores.insert(0, self._scores(sp, attn))
                if head_hidden is not None:
                    scores[0].masked_fill_(head_hidden, float("-inf"))
            p = torch.softmax(torch.cat(scores, dim=-1), dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(p[..., prefix_len:], vc[:, :, :used])
            if prefix:
                pp = p[..., :prefix_len].permute(1, 0, 2, 3).reshape(self.kv_heads, -1, prefix_len)
                op = torch.matmul(pp, prefix[i][1])
                out = out + op.view(self.kv_heads, rows, steps * group, -1).permute(1, 0, 2, 3)
            out = out.view(rows, self.kv_heads, steps, group, self.head_dim)
            out = out.permute(0, 2, 1, 3, 4).reshape(rows, steps, self.heads * self.head_dim)
            a = attn.o_proj(out)
            if self.gemma:
                x = x + mod.post_attention_layernorm(a)
                x = x + mod.post_feedforward_layernorm(mod.mlp(mod.pre_feedforward_layernorm(x)))
            else:
                x = x + a
                x = x + mod.mlp(mod.post_attention_layernorm(x))
        return x

    def _scores(self, raw: torch.Tensor, attn: Any) -> torch.Tensor:
        # In the model's dtype as transformers' eager attention has them; softmax in float32.
        s = raw.mul_(attn.scaling)
        return torch.tanh(s / self.attn_cap) * self.attn_cap if self.attn_cap else s

    def head(self, cols: torch.Tensor | None) -> torch.Tensor:
        """The output layer's rows for ``cols`` (all of it when ``None``)."""
        weight: torch.Tensor = self.lm.lm_head.weight
        return weight if cols is None else weight.index_select(0, cols)

    def logits(self, hidden: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """Logits of final hidden states (rows × D) over the rows of :meth:`head`."""
        out = torch.matmul(self.base.norm(hidden), head.t()).float()
        if self.cap:
            out = torch.tanh(out / self.cap) * self.cap
        return out


class CascadeBatch:
    """One chunk's decoding state: the shared prefix, each row's tail cache, active rows.

    Rows can also share the start of their tails in groups (a sweep's cells in one call:
    every row reads the instructions, each cell's rows its own board): a group's shared
    tokens are evaluated once and their keys and values copied into each member's tail, so
    a chunk can hold many boards and still be one wide batch.

    Args:
        net: The decoder.
        prefix: Tokens every row of the chunk starts with.
        tails: Each row's tokens after the prefix (at least one each).
        max_new: Most tokens any row will generate.
        cols: Vocabulary columns to compute logits for (all when ``None``).
        grouped: Per row, how many leading tokens of its tail its group shares (rows with
            the same such tokens are one group; 0: none). Each row keeps one token of its own.
    """

    def __init__(
        self,
        net: CascadeNet,
        prefix: Sequence[int],
        tails: Sequence[Sequence[int]],
        max_new: int,
        cols: torch.Tensor | None,
        grouped: Sequence[int] | None = None,
    ) -> None:
        grouped = [0] * len(tails) if grouped is None else list(grouped)
        if any(len(t) <= g for t, g in zip(tails, grouped, strict=True)):
            raise ValueError("every row needs at least one token after the shared prefix")
        self.net = net
        self.head = net.head(cols)  # gathered once for the batch's every step
        self.kv, self.prefix_paid = net.prefix(prefix)  # before the groups move the resident
        self.prefix_len = len(prefix)
        dev = net.device
        longest = max(len(t) for t in tails)
        # Room for the answers grows as they do: most end long before max_new.
        self.cache = net.empty_cache(len(tails), longest + min(max_new, GROW))
        self.lens = torch.zeros(len(tails), dtype=torch.long, device=dev)
        #: Tail tokens each row's prompt paid for: its own, and its group's for the first.
        self.paid = [len(t) - g for t, g in zip(tails, grouped, strict=True)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for r, (t, g) in enumerate(zip(tails, grouped, strict=True)):
            if g:
                groups.setdefault(tuple(t[:g]), []).append(r)
        if groups:
            self._share(list(prefix), list(groups.items()))
        own = [list(t[g:]) for t, g in zip(tails, grouped, strict=True)]
        # The tails are evaluated a slice of rows at a time: one pass over 256 rows of
        # 90-token tails holds every layer's activations for 23k tokens at once (Gemma's
        # MLP alone: 4 × 23k × 2048 floats, 0.75 GB), and the big products run no faster.
        ends, per = [], max(1, PREFILL_TOKENS // max(map(len, own)))
        for start in range(0, len(own), per):
            part = own[start : start + per]
            width = max(len(t) for t in part)
            ids = torch.zeros((len(part), width), dtype=torch.long, device=dev)
            for r, t in enumerate(part):
                ids[r, : len(t)] = torch.tensor(t, device=dev)
            rows = slice(start, start + len(part))
            cache = [(k[rows], v[rows]) for k, v in self.cache]  # views: written in place
            hidden = net.forward(ids, self.kv or None, self.prefix_len, cache, self.lens[rows])
            last = torch.tensor([len(t) - 1 for t in part], device=dev)
            ends.append(hidden[torch.arange(len(part), device=dev), last])
        self.lens = self.lens + torch.tensor([len(t) for t in own], device=dev)
        self.rows = list(range(len(tails)))  # the original row held in each cache slot
        self.first = net.logits(torch.cat(ends), self.head)

    def _share(self, prefix: list[int], groups: list[tuple[tuple[int, ...], list[int]]]) -> None:
        """Evaluate each group's shared tokens once; copy them into its rows' tails.

        Through the resident prefix, in the order given (sorted): a group pays only the
        tokens it does not share with the group before it (cells of one β share their
        instructions past the chunk's prefix), as a walk of the prompts' trie would.
        """
        at = len(prefix)
        for key, members in groups:
            kv, paid = self.net.prefix([*prefix, *key])
            self.paid[members[0]] += paid
            rows = torch.tensor(members, device=self.net.device)
            for (kc, vc), (k, v) in zip(self.cache, kv, strict=True):
                kc[rows, :, : len(key)] = k[None, :, at:]
                vc[rows, :, : len(key)] = v[None, :, at:]
            self.lens[rows] = len(key)

    def step(self, rows: Sequence[int], ids: Sequence[int]) -> torch.Tensor:
        """Feed each of ``rows`` (original indices, a subset of the live ones) its next token.

        Returns their next logits, in the order given.
        """
        slot = {r: s for s, r in enumerate(self.rows)}
        where = [slot[r] for r in rows]
        if len(where) <= (1 - COMPACT_SHARE) * len(self.rows):
            keep = torch.tensor(where, device=self.net.device)
            for i, (k, v) in enumerate(self.cache):  # a layer at a time: one layer's copy
                self.cache[i] = (k.index_select(0, keep), v.index_select(0, keep))
            self.lens = self.lens.index_select(0, keep)
            self.rows = list(rows)
            where = list(range(len(rows)))
        dev = self.net.device
        feed = torch.zeros((len(self.rows), 1), dtype=torch.long, device=dev)
        at = torch.tensor(where, device=dev)
        feed[at, 0] = torch.tensor(list(ids), dtype=torch.long, device=dev)
        # Rows that finished but are not compacted yet decode padding, never read.
        first = self.cache[0][0]
        if int(self.lens.max()) >= first.shape[2]:
            pad = first.new_zeros((*first.shape[:2], GROW, first.shape[3]))
            for i, (k, v) in enumerate(self.cache):
                self.cache[i] = (torch.cat([k, pad], 2), torch.cat([v, pad], 2))
        hidden = self.net.forward(feed, self.kv or None, self.prefix_len, self.cache, self.lens)
        self.lens = self.lens + 1
        return self.net.logits(hidden[at, 0], self.head)

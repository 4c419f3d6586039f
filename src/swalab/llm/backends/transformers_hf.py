"""Hugging Face transformers on CPU or GPU: padded batches, per-prompt seeds, constraints.

``model.generate`` shares one random stream across a batch, which would make an answer
depend on its batch-mates; this backend runs its own decoding loop instead: one padded
forward pass per token for the whole batch, each row sampled with its own seeded
``torch.Generator``. Output formats are enforced by prefix checking: at each step the
most likely tokens (top 64, then the rest of the vocabulary only if none of those fits)
are kept only if the text so far plus the token can still match the format's regular
expression (``regex`` partial matching), and end-of-sequence only once it matches fully.

Models: a preset or repository id, a local directory, or a GGUF file (``gguf_file``,
dequantised by transformers); with no model, the embedded Gemma 3 270M GGUF.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import regex
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from swalab.llm.base import (
    Completion,
    Model,
    ModelIdentity,
    Request,
    Stopwatch,
    finish,
)
from swalab.llm.constraints import OutputFormat
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


class TransformersModel(Model):
    """A causal LM from transformers with batched, seeded, constrained decoding.

    Args:
        model: Preset name, repository id or local directory; ``None`` or the embedded
            preset loads the embedded Gemma 3 270M GGUF.
        gguf_file: GGUF file name inside ``model`` (a directory or repository).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (GPU if available).
        dtype: Torch dtype name (default float32 on CPU, bfloat16 on GPU).
        batch_size: Prompts per padded batch.
        revision: Repository revision (part of the cache key).
        chat: Prompt through the tokenizer's chat template, each prompt one user turn
            (default: the preset's, i.e. on for the embedded instruct model).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str | None = None,
        batch_size: int = 16,
        revision: str | None = None,
        chat: bool | None = None,
    ) -> None:
        name = resolve("transformers", model)
        preset = PRESETS.get(EMBEDDED if model is None else model)
        if gguf_file is None and preset is not None and preset.embedded:
            path = embedded_path(preset.name)
            name, gguf_file = str(path.parent), path.name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is out of range: must be >= 1")
        torch_dtype = (
            getattr(torch, dtype)
            if dtype
            else (torch.float32 if device == "cpu" else torch.bfloat16)
        )
        kwargs: dict[str, Any] = {"revision": revision}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, **kwargs)
        self.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.eos = {int(e) for e in [*eos_ids, self.tokenizer.eos_token_id] if e is not None}
        revision_id = revision or ""
        if gguf_file:
            from swalab.llm.presets import file_sha256

            revision_id = file_sha256(Path(name) / gguf_file) if Path(name).is_dir() else gguf_file
        label = preset.name if preset is not None and preset.embedded else (model or name)
        self.chat = bool(preset.chat if chat is None and preset is not None else chat)
        if self.chat and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"model={label!r} has no chat template: set chat=False")
        self._identity = ModelIdentity(
            backend="transformers",
            model=label,
            revision=revision_id,
            settings='{"chat": true}' if self.chat else "",
        )

    @property
    def identity(self) -> ModelIdentity:
        """``transformers`` / model / revision (GGUF hash when loaded from a file)."""
        return self._identity

    def complete(self, request: Request) -> list[Completion]:
        """Complete every prompt, ``batch_size`` at a time."""
        out: list[Completion] = []
        with torch.inference_mode():
            for start in range(0, len(request), self.batch_size):
                chunk = range(start, min(start + self.batch_size, len(request)))
                out += self._batch(request.subset(chunk))
        return out

    def _batch(self, request: Request) -> list[Completion]:
        prompts, formats, seeds = list(request.prompts), request.formats, request.seeds
        params = request.params
        watch = Stopwatch()
        if self.chat:  # the template writes its own BOS and turn markup
            prompts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
        enc = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=not self.chat
        ).to(self.device)
        mask = enc["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        gens = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        checks = [None if f is None else _Prefix(f, self.tokenizer, self.eos) for f in formats]
        generated: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)
        result = self.model(
            input_ids=enc["input_ids"], attention_mask=mask, position_ids=positions, use_cache=True
        )
        for _ in range(params.max_tokens):
            logits = result.logits[:, -1, :].float()
            next_ids = []
            for row in range(len(prompts)):
                tok = self.tokenizer.pad_token_id
                if not done[row]:
                    tok = self._pick(
                        logits[row], checks[row], generated[row], gens[row], params.temperature
                    )
                    if tok in self.eos:
                        done[row] = True
                    else:
                        generated[row].append(tok)
                        text = self.tokenizer.decode(generated[row], skip_special_tokens=True)
                        done[row] = any(s and s in text for s in params.stop)
                next_ids.append(tok)
            if all(done):
                break
            mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=1)
            positions = positions[:, -1:] + 1
            result = self.model(
                input_ids=torch.tensor(next_ids, device=self.device)[:, None],
                attention_mask=mask,
                position_ids=positions,
                past_key_values=result.past_key_values,
                use_cache=True,
            )
        wall = watch.elapsed()
        n_in = enc["attention_mask"].sum(dim=1).tolist()
        return [
            finish(
                self.tokenizer.decode(g, skip_special_tokens=True),
                f,
                tokens_in=int(t),
                tokens_out=len(g),
                latency_s=wall,
                stop=params.stop,
            )
            for g, f, t in zip(generated, formats, n_in, strict=True)
        ]

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

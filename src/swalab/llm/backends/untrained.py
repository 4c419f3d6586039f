"""Models of a real architecture with random weights, made on the spot (throughput checks).

A machine that has a GPU and PyTorch but cannot reach a model hub, and cannot be sent the
embedded GGUF files, can still measure how fast the batched protocol runs there: the
forward pass costs the same whatever the weights hold. :func:`untrained_model` builds
Gemma 3 270M's architecture (its configuration as the embedded GGUF declares it) with
random weights, and a tokenizer: Gemma 3's own when its ``tokenizer.json`` (optionally
gzipped) is at hand, else a byte-level one made here, whose prompts are ~4× longer in
tokens than Gemma's (a pessimistic load). Its answers are noise held to the format by the
constrained decoder, so only timings and memory mean anything; the model's name says so
(``untrained-…``), which also keeps its answers out of any real model's cache entries.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

from swalab.llm.backends.transformers_hf import TransformersModel

#: Gemma 3 270M's architecture, as the embedded GGUF declares it (``AutoConfig`` of it).
GEMMA3_270M: dict[str, Any] = {
    "vocab_size": 262_144,
    "hidden_size": 640,
    "intermediate_size": 2048,
    "num_hidden_layers": 18,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 512,
    "max_position_embeddings": 32_768,
    "tie_word_embeddings": True,
}
#: The same architecture shrunk to a few thousand weights per layer (tests); its vocabulary
#: is the tokenizer's.
TINY: dict[str, Any] = GEMMA3_270M | {
    "vocab_size": None,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "query_pre_attn_scalar": 16,
    "sliding_window": 64,
}
SHAPES = {"gemma-3-270m": GEMMA3_270M, "tiny": TINY}
SPECIAL = ("<pad>", "<eos>", "<bos>")


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer: ids 0–2 ``<pad>``, ``<eos>``, ``<bos>``, then one per byte."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    # GPT-2's printable stand-ins for bytes, in byte order (as byte-level BPE writes them).
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = iter(range(256, 512))
    vocab = {s: i for i, s in enumerate(SPECIAL)}
    for b in range(256):
        vocab[chr(b if b in printable else next(extra))] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """A tokenizer from a ``tokenizer.json``, or a gzipped one (``.json.gz``).

    Its special tokens are Gemma's names (``<pad>``, ``<eos>``, ``<bos>``): a bare
    ``tokenizer.json`` does not say which tokens play those parts.
    """
    path = Path(path)
    pad, eos, bos = SPECIAL
    with tempfile.TemporaryDirectory() as tmp:
        plain = path
        if path.suffix == ".gz":
            plain = Path(tmp) / "tokenizer.json"
            with gzip.open(path, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        return PreTrainedTokenizerFast(
            tokenizer_file=str(plain), pad_token=pad, eos_token=eos, bos_token=bos
        )


def untrained_model(
    shape: str = "gemma-3-270m",
    *,
    tokenizer: str | Path | None = None,
    device: str = "auto",
    dtype: str | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    attention: str = "auto",
) -> TransformersModel:
    """Gemma 3's architecture in ``shape`` (:data:`SHAPES`) with random weights.

    Args:
        shape: ``gemma-3-270m`` (the embedded model's size) or ``tiny``.
        tokenizer: A ``tokenizer.json[.gz]`` (Gemma 3's); ``None``: byte-level.
        device: ``cpu``, ``cuda`` or ``auto``.
        dtype: Torch dtype name (default float32 on CPU, bfloat16 on GPU).
        batch_size: Prompts per batch (default: the backend's).
        seed: Seed of the random weights.
        attention: ``auto``, ``cascade`` or ``padded`` (see :class:`TransformersModel`).

    Raises:
        ValueError: For an unknown shape, or a tokenizer larger than the shape's vocabulary.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape={shape!r} is not known: choose one of {sorted(SHAPES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = byte_tokenizer() if tokenizer is None else load_tokenizer(tokenizer)
    fields = SHAPES[shape]
    fields = fields | {"vocab_size": fields["vocab_size"] or len(tok)}
    if len(tok) > fields["vocab_size"]:
        raise ValueError(
            f"tokenizer={str(tokenizer)!r} has {len(tok)} tokens: more than shape={shape!r} "
            f"holds ({fields['vocab_size']})"
        )
    eos = tok.eos_token_id if tok.eos_token_id is not None else 1
    config = Gemma3TextConfig(
        **fields, pad_token_id=tok.pad_token_id, eos_token_id=eos, bos_token_id=tok.bos_token_id
    )
    torch.manual_seed(seed)
    default = torch.float32 if device == "cpu" else torch.bfloat16
    lm = AutoModelForCausalLM.from_config(config).to(getattr(torch, dtype) if dtype else default)
    lm.generation_config.eos_token_id = eos
    words = "gemma3" if tokenizer is not None else "bytes"
    return TransformersModel.from_objects(
        lm,
        tok,
        name=f"untrained-{shape}-{words}",
        revision=f"seed-{seed}",
        device=device,
        batch_size=batch_size,
        attention=attention,
    )

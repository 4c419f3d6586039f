"""Lazy backend registry: a backend's heavy dependencies load only when it is chosen.

``import swalab`` must stay light (no torch, llama.cpp, vLLM or openai), so the registry
maps names to import paths and checks, before importing, that the pip extra a backend
needs is installed; if not, the error names the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from swalab.llm.base import LanguageModel


@dataclass(frozen=True, kw_only=True)
class BackendSpec:
    """Where a backend lives and what it needs.

    Attributes:
        name: Registry name (``--backend``).
        target: ``module:factory`` that builds the model.
        extra: The swalab pip extra that installs its dependencies.
        requires: Top-level modules that must be importable.
        summary: One line for listings.
    """

    name: str
    target: str
    extra: str | None
    requires: tuple[str, ...]
    summary: str


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            name="llamacpp",
            target="swalab.llm.backends.llamacpp:LlamaCppModel",
            extra="llamacpp",
            requires=("llama_cpp",),
            summary="llama.cpp in-process (embedded Gemma 3 270M or any GGUF file)",
        ),
        BackendSpec(
            name="openai",
            target="swalab.llm.backends.openai_compat:OpenAIModel",
            extra="openai",
            requires=("openai",),
            summary="any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, hosted)",
        ),
        BackendSpec(
            name="transformers",
            target="swalab.llm.backends.transformers_hf:TransformersModel",
            extra="transformers",
            requires=("torch", "transformers"),
            summary="Hugging Face transformers, shared-prefix batches on CPU or GPU",
        ),
        BackendSpec(
            name="vllm",
            target="swalab.llm.backends.vllm_offline:VLLMModel",
            extra="vllm",
            requires=("vllm",),
            summary="vLLM offline engine over the whole batch (GPU)",
        ),
        BackendSpec(
            name="scripted",
            target="swalab.llm.scripted:ScriptedModel",
            extra=None,
            requires=(),
            summary="answers from a script or a function (tests, recorded runs)",
        ),
    )
}


class MissingExtraError(ImportError):
    """A backend's optional dependencies are not installed."""


def backend_names() -> list[str]:
    """Registered backend names."""
    return list(BACKENDS)


def spec_of(name: str) -> BackendSpec:
    """Return a backend's spec; unknown names list the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"backend={name!r} is not known: choose one of {backend_names()}"
        ) from None


def check_available(name: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra if the backend cannot load."""
    spec = spec_of(name)
    missing = [m for m in spec.requires if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"backend {name!r} needs module(s) {missing}: install the extra with "
            f"pip install 'swalab[{spec.extra}]'"
        )


def load_model(backend: str, **options: Any) -> LanguageModel:
    """Build a model of ``backend`` with its options (e.g. ``model=``, ``base_url=``)."""
    check_available(backend)
    module_name, _, attr = spec_of(backend).target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    model: LanguageModel = factory(**options)
    return model

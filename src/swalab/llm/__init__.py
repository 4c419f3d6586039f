"""LLM-backed SWA agents: one batch-first model interface, backends, wrappers, the protocol.

Importing this package loads no backend and no simulator: ``llamacpp``, ``openai``,
``transformers`` and ``vllm`` are pip extras imported only by :func:`load_model` when
chosen, and the names that play episodes (the runner, the judge) load on first use.
"""

from typing import Any

from swalab.llm.base import Completion, LanguageModel, ModelIdentity
from swalab.llm.constraints import Choice, NumberList, OutputFormat, ParseError
from swalab.llm.presets import EMBEDDED, PAPER_MODELS, PRESETS
from swalab.llm.registry import MissingExtraError, backend_names, check_available, load_model

_LAZY = {
    "CallRecord": "swalab.llm.accounting",
    "CountingModel": "swalab.llm.accounting",
    "CachedModel": "swalab.llm.cache",
    "ResponseCache": "swalab.llm.cache",
    "LLMJudge": "swalab.llm.judge",
    "ProtocolConfig": "swalab.llm.protocol",
    "LLMEpisode": "swalab.llm.runner",
    "run_llm_episodes": "swalab.llm.runner",
    "ScriptedModel": "swalab.llm.scripted",
    "open_model": "swalab.llm.stack",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'swalab.llm' has no attribute {name!r}")


__all__ = [
    "EMBEDDED",
    "PAPER_MODELS",
    "PRESETS",
    "CachedModel",
    "CallRecord",
    "Choice",
    "Completion",
    "CountingModel",
    "LLMEpisode",
    "LLMJudge",
    "LanguageModel",
    "MissingExtraError",
    "ModelIdentity",
    "NumberList",
    "OutputFormat",
    "ParseError",
    "ProtocolConfig",
    "ResponseCache",
    "ScriptedModel",
    "backend_names",
    "check_available",
    "load_model",
    "open_model",
    "run_llm_episodes",
]

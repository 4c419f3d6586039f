"""LLM-backed SWA agents: one batch-first model interface, backends, wrappers, the protocol.

Importing this package loads no backend: ``llamacpp``, ``openai``, ``transformers`` and
``vllm`` are pip extras imported only by :func:`load_model` when chosen.
"""

from swalab.llm.accounting import CallRecord, CountingModel
from swalab.llm.base import Completion, LanguageModel, ModelIdentity
from swalab.llm.cache import CachedModel, ResponseCache
from swalab.llm.constraints import Choice, NumberList, OutputFormat, ParseError
from swalab.llm.presets import EMBEDDED, PAPER_MODELS, PRESETS
from swalab.llm.protocol import ProtocolConfig
from swalab.llm.registry import MissingExtraError, backend_names, check_available, load_model
from swalab.llm.runner import LLMEpisode, run_llm_episodes
from swalab.llm.scripted import ScriptedModel

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
    "run_llm_episodes",
]

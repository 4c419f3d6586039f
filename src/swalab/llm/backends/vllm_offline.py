"""vLLM's offline engine: the whole list of prompts in one ``LLM.generate`` call (GPU).

vLLM schedules the list with continuous batching and automatic prefix caching (the shared
instructions and boards of a step are computed once). Each prompt gets its own
``SamplingParams`` (seed, and the output format as a regular expression through vLLM's
structured outputs), so answers do not depend on how the batch was composed.
"""

from __future__ import annotations

from typing import Any

import vllm

from swalab.llm.base import (
    Completion,
    Model,
    ModelIdentity,
    Request,
    Stopwatch,
    finish,
)
from swalab.llm.constraints import OutputFormat
from swalab.llm.presets import resolve


def _structured(fmt: OutputFormat | None) -> dict[str, Any]:
    """SamplingParams fields enforcing ``fmt`` in this vLLM version."""
    if fmt is None:
        return {}
    try:  # vLLM >= 0.11
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(regex=fmt.regex())}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(regex=fmt.regex())}


class VLLMModel(Model):
    """A Hugging Face model served in-process by vLLM.

    Args:
        model: Preset name or repository id / local directory.
        revision: Model revision to load (part of the cache key).
        **engine_args: Passed to ``vllm.LLM`` (``gpu_memory_utilization``,
            ``max_model_len``, ``tensor_parallel_size``, ``dtype`` ...).
    """

    def __init__(
        self, model: str | None = None, *, revision: str | None = None, **engine_args: Any
    ) -> None:
        self.model = resolve("vllm", model)
        engine_args.setdefault("enable_prefix_caching", True)
        self._llm = vllm.LLM(model=self.model, revision=revision, **engine_args)
        self._identity = ModelIdentity(backend="vllm", model=self.model, revision=revision or "")

    @property
    def identity(self) -> ModelIdentity:
        """``vllm`` / repository id / revision."""
        return self._identity

    def complete(self, request: Request) -> list[Completion]:
        """One offline ``generate`` over every prompt."""
        if not request.prompts:
            return []
        p = request.params
        params = [
            vllm.SamplingParams(
                temperature=p.temperature,
                seed=s,
                max_tokens=p.max_tokens,
                stop=list(p.stop) or None,
                **_structured(f),
            )
            for s, f in zip(request.seeds, request.formats, strict=True)
        ]
        watch = Stopwatch()
        outputs = self._llm.generate(list(request.prompts), params, use_tqdm=False)
        wall = watch.elapsed()
        # Prompt tokens served by the prefix cache (vLLM reports them since 0.6; older: 0).
        reused = [int(getattr(out, "num_cached_tokens", None) or 0) for out in outputs]
        return [
            finish(
                out.outputs[0].text,
                f,
                tokens_in=len(out.prompt_token_ids or ()) - cached,
                tokens_shared=cached,
                tokens_out=len(out.outputs[0].token_ids),
                latency_s=wall,
            )
            for out, f, cached in zip(outputs, request.formats, reused, strict=True)
        ]

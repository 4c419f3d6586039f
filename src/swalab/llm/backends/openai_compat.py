"""Any OpenAI-compatible server: vLLM, llama.cpp server, Ollama, hosted APIs.

Prompts of one call go out concurrently (up to ``concurrency`` requests in flight), so a
server with continuous batching (vLLM, llama.cpp ``--parallel``) decodes them together.
A prompt that fails comes back as a completion with ``error_kind="backend"`` instead of
raising, so one dead request ends one episode, not a sweep; transient failures (connection
refused, timeouts, 429, 5xx) are marked retryable, and the
:class:`~swalab.llm.retry.RetryingModel` that :func:`~swalab.llm.stack.open_model` wraps
around every backend asks for exactly those again, with backoff. The API key is read from
the environment and never stored in results or the cache.

Structured output is sent the way the server understands it (``structured``):

- ``"llamacpp"``: the GBNF grammar (llama.cpp server, ``grammar``);
- ``"vllm"``: a regular expression in ``structured_outputs`` (vLLM >= 0.12);
- ``"vllm-legacy"``: ``guided_regex`` (older vLLM);
- ``"openai"``: a JSON schema in ``response_format`` (chat endpoint of hosted APIs);
- ``"none"``: nothing; every answer is still parsed and failures are recorded;
- ``"auto"``: ask the server once, at start, in each of the ways above (a format no model
  writes unprompted) and keep the first it enforces; a server that enforces none is refused
  with a message saying to set ``none`` to run unconstrained.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from swalab._validate import http_url
from swalab.llm.base import (
    BACKEND_ERROR,
    Completion,
    GenerationParams,
    Model,
    ModelIdentity,
    Request,
    Stopwatch,
    backend_failure,
    finish,
)
from swalab.llm.constraints import NumberList, OutputFormat
from swalab.llm.presets import resolve

STRUCTURED = ("none", "llamacpp", "vllm", "vllm-legacy", "openai", "auto")
#: The order ``structured="auto"`` tries the ways of asking in.
DETECT_ORDER = ("llamacpp", "vllm", "openai", "vllm-legacy")
ENDPOINTS = ("completions", "chat")

#: Errors worth retrying: the server may come back or have room later.
TRANSIENT = (
    openai.APIConnectionError,  # includes timeouts
    openai.RateLimitError,
    openai.InternalServerError,
)


def structured_body(structured: str, fmt: OutputFormat | None) -> dict[str, Any]:
    """Extra request fields that make the server enforce ``fmt``."""
    if fmt is None or structured == "none":
        return {}
    if structured == "llamacpp":
        return {"grammar": fmt.gbnf()}
    if structured == "vllm":
        return {"structured_outputs": {"regex": fmt.regex()}}
    if structured == "vllm-legacy":
        return {"guided_regex": fmt.regex()}
    schema = {
        "type": "object",
        "properties": {"value": fmt.json_schema()},
        "required": ["value"],
        "additionalProperties": False,
    }
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        }
    }


class OpenAIModel(Model):
    """A model behind an OpenAI-compatible HTTP API.

    Args:
        model: Served model name (a preset name maps to its repository id).
        base_url: Server URL, e.g. ``http://127.0.0.1:8000/v1`` (default: the client's).
        api_key_env: Environment variable holding the key (``"EMPTY"`` if unset).
        endpoint: ``"completions"`` (plain prompts, base models) or ``"chat"`` (the
            prompt becomes one user message).
        structured: How to ask for structured output (see the module docs).
        concurrency: Requests in flight at once.
        timeout: Seconds per request.
        revision: Pins the served weights in the cache key (the server cannot tell us).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        endpoint: str = "completions",
        structured: str = "none",
        concurrency: int = 8,
        timeout: float = 60.0,
        revision: str = "",
    ) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint={endpoint!r} is not known: choose one of {list(ENDPOINTS)}")
        if structured not in STRUCTURED:
            raise ValueError(
                f"structured={structured!r} is not known: choose one of {list(STRUCTURED)}"
            )
        if structured == "openai" and endpoint != "chat":
            raise ValueError("structured='openai' (response_format) needs endpoint='chat'")
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} is out of range: must be >= 1")
        if not timeout > 0:
            raise ValueError(f"timeout={timeout} is out of range: must be > 0 seconds")
        if base_url is not None:
            http_url("base_url", base_url)
        self.model = resolve("openai", model)
        self.endpoint = endpoint
        self.structured = structured
        self.concurrency = concurrency
        self.base_url = base_url
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=timeout,
            max_retries=0,  # retries are a wrapper's (RetryingModel), with our accounting
        )
        if structured == "auto":
            self.structured = structured = self.detect_structured()
        # How this client asks changes the answers: the cache must not mix them.
        settings = json.dumps(
            {"base_url": base_url, "endpoint": endpoint, "structured": structured}, sort_keys=True
        )
        self._identity = ModelIdentity(
            backend="openai", model=self.model, revision=revision, settings=settings
        )

    @property
    def identity(self) -> ModelIdentity:
        """``openai`` / served model name / user-given revision."""
        return self._identity

    def detect_structured(self) -> str:
        """The first way of asking for structured output that this server enforces.

        The probe asks for a word and constrains the answer to a list of three numbers, so
        only a server that enforces the format answers in it.

        Raises:
            ValueError: The server is unreachable, or enforces none of the ways (the message
                names the setting that runs unconstrained).
        """
        probe = NumberList(k=3, x_max=1, resolution=0.5)
        params = GenerationParams(temperature=0.0, max_tokens=24)
        tried = []
        for mode in DETECT_ORDER:
            if mode == "openai" and self.endpoint != "chat":
                continue
            self.structured = mode
            answer = self._one("Reply with the single word hello.", probe, 0, params)
            if answer.error_kind == BACKEND_ERROR and answer.retryable:
                raise ValueError(
                    f"base_url={self.base_url!r}: the server did not answer ({answer.error})"
                )
            if answer.ok:
                return mode
            tried.append(mode)
        raise ValueError(
            f"base_url={self.base_url!r}: the server enforced none of the output formats "
            f"({', '.join(tried)}); set model.options.structured=none (--structured none) to "
            f"run unconstrained, where answers that do not parse are recorded as failures"
        )

    def _request(
        self, prompt: str, fmt: OutputFormat | None, seed: int, params: GenerationParams
    ) -> tuple[str, int, int, int]:
        body = structured_body(self.structured, fmt)
        extra = {k: v for k, v in body.items() if k != "response_format"}
        common: dict[str, Any] = {
            "model": self.model,
            "temperature": params.temperature,
            "seed": seed,
            "max_tokens": params.max_tokens,
            "extra_body": extra or None,
        }
        if params.stop:
            common["stop"] = list(params.stop)
        try:
            if self.endpoint == "chat":
                if "response_format" in body:
                    common["response_format"] = body["response_format"]
                answer = self._client.chat.completions.create(
                    messages=[{"role": "user", "content": prompt}], **common
                )
            else:
                answer = self._client.completions.create(prompt=prompt, **common)
        except json.JSONDecodeError as exc:  # a JSON content type over something else
            raise NotAnAnswerError(f"the server's answer is not JSON ({exc})") from None
        return _parse_answer(answer, chat=self.endpoint == "chat")

    def _one(
        self, prompt: str, fmt: OutputFormat | None, seed: int, params: GenerationParams
    ) -> Completion:
        watch = Stopwatch()
        try:
            text, t_in, t_shared, t_out = self._request(prompt, fmt, seed, params)
        except TRANSIENT as exc:  # the server may come back or have room later
            message = f"{type(exc).__name__}: {exc}"
            return backend_failure(message, latency_s=watch.elapsed(), retryable=True)
        except (openai.APIError, NotAnAnswerError) as exc:
            # Permanent: a 4xx answer or a payload that is not an OpenAI response.
            return backend_failure(f"{type(exc).__name__}: {exc}", latency_s=watch.elapsed())
        return finish(
            text,
            fmt,
            tokens_in=t_in,
            tokens_shared=t_shared,
            tokens_out=t_out,
            latency_s=watch.elapsed(),
            stop=params.stop,
        )

    def complete(self, request: Request) -> list[Completion]:
        """Send every prompt, ``concurrency`` at a time; answers come back in order."""
        if not request.prompts:
            return []
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(request)))
        try:
            futures = [
                pool.submit(self._one, p, f, s, request.params)
                for p, f, s in zip(request.prompts, request.formats, request.seeds, strict=True)
            ]
            return [f.result() for f in futures]
        finally:  # interrupted: do not wait here for requests still in flight
            pool.shutdown(wait=False, cancel_futures=True)


class NotAnAnswerError(ValueError):
    """The server answered, but not with an OpenAI completion (an HTML page, no choices)."""


def _parse_answer(answer: Any, *, chat: bool) -> tuple[str, int, int, int]:
    """Text and token counts of a completion, or :class:`NotAnAnswerError` saying why not.

    The counts are the prompt tokens billed in full, those the server's prefix cache served
    (``usage.prompt_tokens_details.cached_tokens`` where it reports them) and the
    generated tokens.
    """
    choices = getattr(answer, "choices", None)
    if not choices:
        shown = repr(answer)[:80]
        raise NotAnAnswerError(f"the server's answer is not an OpenAI completion: {shown}")
    first = choices[0]
    text = (
        getattr(getattr(first, "message", None), "content", None)
        if chat
        else getattr(first, "text", None)
    )
    if text is not None and not isinstance(text, str):
        raise NotAnAnswerError(f"the server's completion text is {type(text).__name__}")
    usage = getattr(answer, "usage", None)
    if usage is None:
        return text or "", 0, 0, 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", None) or 0)
    prompt = int(usage.prompt_tokens or 0)
    return (
        text or "",
        prompt - min(cached, prompt),
        min(cached, prompt),
        int(usage.completion_tokens or 0),
    )

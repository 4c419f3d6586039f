"""Any OpenAI-compatible server: vLLM, llama.cpp server, Ollama, hosted APIs.

Prompts of one call go out concurrently (up to ``concurrency`` requests in flight), so a
server with continuous batching (vLLM, llama.cpp ``--parallel``) decodes them together.
Transient failures (connection refused, timeouts, 429, 5xx) are retried with exponential
backoff by tenacity; a prompt that still fails comes back as a completion with
``error_kind="backend"`` instead of raising, so one dead request ends one episode, not a
sweep. The API key is read from the environment and never stored in results or the cache.

Structured output is sent the way the server understands it (``structured``):

- ``"llamacpp"``: the GBNF grammar (llama.cpp server, ``grammar``);
- ``"vllm"``: a regular expression in ``structured_outputs`` (vLLM >= 0.12);
- ``"vllm-legacy"``: ``guided_regex`` (older vLLM);
- ``"openai"``: a JSON schema in ``response_format`` (chat endpoint of hosted APIs);
- ``"none"``: nothing; every answer is still parsed and failures are recorded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from swalab.llm.base import (
    Backend,
    Completion,
    ModelIdentity,
    Stopwatch,
    backend_failure,
    finish,
)
from swalab.llm.constraints import OutputFormat
from swalab.llm.presets import resolve

STRUCTURED = ("none", "llamacpp", "vllm", "vllm-legacy", "openai")
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


class OpenAIModel(Backend):
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
        retries: Retries after the first attempt for transient errors.
        backoff: First backoff wait in seconds (doubles per retry, capped at 30 s).
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
        retries: int = 3,
        backoff: float = 0.5,
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
        for name, value in (("concurrency", concurrency), ("retries", retries + 1)):
            if value < 1:
                raise ValueError(f"{name}={value} is out of range: must be >= 1 (retries >= 0)")
        if not timeout > 0 or not backoff >= 0:
            raise ValueError(f"timeout={timeout} and backoff={backoff} must be > 0 and >= 0")
        self.model = resolve("openai", model)
        self.endpoint = endpoint
        self.structured = structured
        self.concurrency = concurrency
        self.retries = retries
        self.backoff = backoff
        self.base_url = base_url
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            timeout=timeout,
            max_retries=0,  # retries are ours (tenacity), with our backoff and accounting
        )
        self._identity = ModelIdentity(backend="openai", model=self.model, revision=revision)

    @property
    def identity(self) -> ModelIdentity:
        """``openai`` / served model name / user-given revision."""
        return self._identity

    def _request(
        self, prompt: str, fmt: OutputFormat | None, temperature: float, seed: int,
        max_tokens: int, stop: Sequence[str],
    ) -> tuple[str, int, int]:  # fmt: skip
        body = structured_body(self.structured, fmt)
        extra = {k: v for k, v in body.items() if k != "response_format"}
        common: dict[str, Any] = {
            "model": self.model,
            "temperature": temperature,
            "seed": seed,
            "max_tokens": max_tokens,
            "extra_body": extra or None,
        }
        if stop:
            common["stop"] = list(stop)
        if self.endpoint == "chat":
            if "response_format" in body:
                common["response_format"] = body["response_format"]
            chat = self._client.chat.completions.create(
                messages=[{"role": "user", "content": prompt}], **common
            )
            text = chat.choices[0].message.content or ""
            usage = chat.usage
        else:
            comp = self._client.completions.create(prompt=prompt, **common)
            text = comp.choices[0].text or ""
            usage = comp.usage
        if usage is None:
            return text, 0, 0
        return text, int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)

    def _one(
        self, prompt: str, fmt: OutputFormat | None, temperature: float, seed: int,
        max_tokens: int, stop: Sequence[str],
    ) -> Completion:  # fmt: skip
        watch = Stopwatch()
        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff, max=30.0),
            reraise=False,
        )
        try:
            text, t_in, t_out = retrying(
                self._request, prompt, fmt, temperature, seed, max_tokens, stop
            )
        except RetryError as exc:
            last = exc.last_attempt.exception()
            return backend_failure(
                f"{type(last).__name__} after {self.retries + 1} attempts: {last}",
                latency_s=watch.elapsed(),
            )
        except (openai.APIError, ValueError, TypeError, KeyError, IndexError) as exc:
            # Permanent: a 4xx answer or a payload that is not an OpenAI response.
            return backend_failure(f"{type(exc).__name__}: {exc}", latency_s=watch.elapsed())
        return finish(text, fmt, tokens_in=t_in, tokens_out=t_out,
                      latency_s=watch.elapsed(), stop=stop)  # fmt: skip

    def _complete(
        self,
        prompts: list[str],
        formats: list[OutputFormat | None],
        seeds: list[int],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str],
    ) -> list[Completion]:
        """Send every prompt, ``concurrency`` at a time; answers come back in order."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            futures = [
                pool.submit(self._one, p, f, temperature, s, max_tokens, stop)
                for p, f, s in zip(prompts, formats, seeds, strict=True)
            ]
            return [f.result() for f in futures]

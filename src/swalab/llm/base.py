"""The one interface every language-model backend implements, batch first.

A backend receives the whole list of prompts of a step (every agent of every episode in
the batch) in one :meth:`LanguageModel.generate` call, so it can use whatever its engine
offers for batches: shared-prefix KV reuse, multi-sequence decoding, continuous batching.
Outputs are constrained by an :class:`~swalab.llm.constraints.OutputFormat` where the
backend can enforce one, and are always parsed by the same code, so a completion that is
not valid becomes a recorded error and never a silently invented number.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from swalab.llm.constraints import OutputFormat, ParseError

#: One output format for all prompts, one per prompt, or none.
Constraints = OutputFormat | Sequence[OutputFormat | None] | None

#: ``Completion.error_kind`` values.
PARSE_ERROR = "parse"
BACKEND_ERROR = "backend"


@dataclass(frozen=True, kw_only=True)
class Completion:
    """One prompt's answer and what it cost.

    Attributes:
        text: The generated text (empty when the backend failed).
        value: The parsed value, ``None`` when parsing failed or no format was asked for
            (then ``text`` is the value).
        error: Why there is no value: a parse error or a backend failure message.
        error_kind: ``"parse"`` (the model answered something invalid), ``"backend"``
            (no answer: server down, timeout...) or ``None``.
        tokens_in: Prompt tokens the backend evaluated or was billed for.
        tokens_out: Generated tokens.
        latency_s: Wall time of the call that produced it (shared by a batched call).
        cached: Served from the response cache, not the model.
    """

    text: str
    value: Any = None
    error: str | None = None
    error_kind: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        """Whether the completion carries a usable answer."""
        return self.error_kind is None


@dataclass(frozen=True, kw_only=True)
class ModelIdentity:
    """What makes two models give the same answers; keys the response cache.

    Attributes:
        backend: Registry name of the backend.
        model: Model name, path or repository id.
        revision: File hash, revision or version string that pins the weights.
    """

    backend: str
    model: str
    revision: str = ""


@runtime_checkable
class LanguageModel(Protocol):
    """A batch-first text generator."""

    @property
    def identity(self) -> ModelIdentity:
        """Backend, model and weights revision."""
        ...

    def generate(
        self,
        prompts: Sequence[str],
        *,
        constraint: Constraints = None,
        temperature: float = 0.0,
        seed: int | Sequence[int] = 0,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """Complete every prompt; one :class:`Completion` per prompt, in order.

        Args:
            prompts: Plain completion prompts (base models have no chat template).
            constraint: Output format to enforce (grammar or JSON schema) and parse; one
                for all prompts or one per prompt (e.g. tables with different row counts).
            temperature: 0 is greedy.
            seed: One seed for all prompts or one per prompt; per-prompt seeds make an
                answer independent of which batch it was generated in.
            max_tokens: Most tokens to generate per prompt.
            stop: Strings that end a completion (not included in the text).

        Backend failures of single prompts are returned as completions with
        ``error_kind="backend"``; exceptions are for misuse (bad arguments).
        """
        ...


class Backend(ABC):
    """Base of the backends: one ``generate`` that checks its arguments, then ``_complete``.

    A backend only writes :meth:`_complete`, which receives the prompts with one format and
    one seed each, already validated.
    """

    @property
    @abstractmethod
    def identity(self) -> ModelIdentity:
        """Backend, model and weights revision."""

    def generate(
        self,
        prompts: Sequence[str],
        *,
        constraint: Constraints = None,
        temperature: float = 0.0,
        seed: int | Sequence[int] = 0,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
    ) -> list[Completion]:
        """Complete every prompt (see :meth:`LanguageModel.generate`)."""
        prompts, formats, seeds = prepare(prompts, constraint, seed, temperature, max_tokens)
        return self._complete(prompts, formats, seeds, temperature=temperature,
                              max_tokens=max_tokens, stop=stop)  # fmt: skip

    @abstractmethod
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
        """Complete validated prompts, one format and one seed each."""


def seeds_for(seed: int | Sequence[int], n: int) -> list[int]:
    """Expand one seed or check one per prompt; seeds are folded into ``[0, 2³¹)``."""
    if isinstance(seed, int):
        return [seed % 2**31] * n
    seeds = [int(s) % 2**31 for s in seed]
    if len(seeds) != n:
        raise ValueError(f"seed has {len(seeds)} entries: must be one or one per prompt ({n})")
    return seeds


def constraints_for(constraint: Constraints, n: int) -> list[OutputFormat | None]:
    """Expand one output format or check one per prompt."""
    if constraint is None or not isinstance(constraint, Sequence):
        return [constraint] * n
    out = list(constraint)
    if len(out) != n:
        raise ValueError(f"constraint has {len(out)} entries: must be one or one per prompt ({n})")
    return out


def check_generate_args(prompts: Sequence[str], temperature: float, max_tokens: int) -> list[str]:
    """Validate the arguments every backend shares; returns the prompts as a list."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of strings, not one string")
    if not (temperature >= 0.0):
        raise ValueError(f"temperature={temperature} is out of range: must be >= 0")
    if max_tokens < 1:
        raise ValueError(f"max_tokens={max_tokens} is out of range: must be >= 1")
    return list(prompts)


def prepare(
    prompts: Sequence[str],
    constraint: Constraints,
    seed: int | Sequence[int],
    temperature: float,
    max_tokens: int,
) -> tuple[list[str], list[OutputFormat | None], list[int]]:
    """Check a ``generate`` call's arguments; return prompts, one format and one seed each."""
    prompts = check_generate_args(prompts, temperature, max_tokens)
    return prompts, constraints_for(constraint, len(prompts)), seeds_for(seed, len(prompts))


def finish(
    text: str,
    constraint: OutputFormat | None,
    *,
    tokens_in: int,
    tokens_out: int,
    latency_s: float,
    stop: Sequence[str] = (),
) -> Completion:
    """Turn a backend's raw text into a parsed :class:`Completion`."""
    for s in stop:
        if s and s in text:
            text = text[: text.index(s)]
    base = Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out, latency_s=latency_s)
    if constraint is None:
        return base
    try:
        return replace(base, value=constraint.parse(text))
    except ParseError as exc:
        return replace(base, error=str(exc), error_kind=PARSE_ERROR)


def backend_failure(message: str, *, latency_s: float = 0.0) -> Completion:
    """A completion that records that the backend gave no answer."""
    return Completion(text="", error=message, error_kind=BACKEND_ERROR, latency_s=latency_s)


@dataclass
class Stopwatch:
    """Measures one call's wall time (``time.perf_counter``)."""

    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start

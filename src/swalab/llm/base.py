"""The one interface every language-model backend implements, batch first.

A backend receives the whole list of prompts of a step (every agent of every episode in
the batch) in one :class:`Request`, so it can use whatever its engine offers for batches:
shared-prefix KV reuse, multi-sequence decoding, continuous batching. Behaviour that is not
about weights — a response cache, call accounting, retries — is a :class:`Wrapper` that
any backend can wear; all of them share one :class:`GenerationParams`.
Outputs are constrained by an :class:`~swalab.llm.constraints.OutputFormat` where the
backend can enforce one, and are always parsed by the same code, so a completion that is
not valid becomes a recorded error and never a silently invented number.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
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
        tokens_shared: Prompt tokens it did not evaluate for this prompt because it reused
            another's (a prefix shared in the batch, a server's prefix cache):
            ``tokens_in + tokens_shared`` is the prompt's length where the backend says.
        tokens_out: Generated tokens.
        latency_s: Wall time of the call that produced it (shared by a batched call).
        cached: Served from the response cache, not the model.
        retryable: A backend failure that may pass if asked again.
    """

    text: str
    value: Any = None
    error: str | None = None
    error_kind: str | None = None
    tokens_in: int = 0
    tokens_shared: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cached: bool = False
    retryable: bool = False

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
        settings: How the backend asks, where that changes answers (a server's URL, its
            structured-output mode), as stable JSON; empty when nothing does.
    """

    backend: str
    model: str
    revision: str = ""
    settings: str = ""


@dataclass(frozen=True, kw_only=True)
class GenerationParams:
    """How to decode: the settings every backend and wrapper shares.

    One object carries them through the interface, the backends, the cache key and every
    wrapper, so a new setting is one field here: :meth:`Model.generate` takes it as a
    keyword, the cache keys on it, and the wrappers pass it on untouched.

    Attributes:
        temperature: 0 is greedy.
        max_tokens: Most tokens to generate per prompt.
        stop: Strings that end a completion (not included in the text).
    """

    temperature: float = 0.0
    max_tokens: int = 64
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.temperature >= 0.0):
            raise ValueError(f"temperature={self.temperature} is out of range: must be >= 0")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise ValueError(f"max_tokens={self.max_tokens!r} is out of range: must be an integer")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens={self.max_tokens} is out of range: must be >= 1")
        stop: object = self.stop
        if isinstance(stop, str):  # a caller's mistake the annotation cannot stop
            raise ValueError(f"stop={stop!r} must be a sequence of strings, not one string")
        object.__setattr__(self, "stop", tuple(str(s) for s in self.stop))

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name (the cache key and logs read this)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Request:
    """One batched call: every prompt with its output format and seed, and the settings.

    Attributes:
        prompts: Plain completion prompts (base models have no chat template).
        formats: Per prompt, the output format to enforce and parse (or none).
        seeds: Per prompt, the sampling seed, folded into ``[0, 2³¹)``; per-prompt seeds
            make an answer independent of which batch it was generated in.
        params: The decoding settings shared by the call.
    """

    prompts: tuple[str, ...]
    formats: tuple[OutputFormat | None, ...]
    seeds: tuple[int, ...]
    params: GenerationParams

    @classmethod
    def build(
        cls,
        prompts: Sequence[str],
        params: GenerationParams,
        *,
        constraint: Constraints = None,
        seed: int | Sequence[int] = 0,
    ) -> Request:
        """Check a call's arguments and expand one format and one seed to every prompt."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not one string")
        n = len(prompts)
        return cls(
            tuple(prompts), tuple(constraints_for(constraint, n)), tuple(seeds_for(seed, n)), params
        )

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices: Sequence[int]) -> Request:
        """The same call restricted to ``indices`` (a cache miss, a retry)."""
        return Request(
            tuple(self.prompts[i] for i in indices),
            tuple(self.formats[i] for i in indices),
            tuple(self.seeds[i] for i in indices),
            self.params,
        )


@runtime_checkable
class LanguageModel(Protocol):
    """A batch-first text generator."""

    @property
    def identity(self) -> ModelIdentity:
        """Backend, model and weights revision."""
        ...

    def complete(self, request: Request) -> list[Completion]:
        """Complete every prompt of ``request``; one :class:`Completion` each, in order.

        Backend failures of single prompts are returned as completions with
        ``error_kind="backend"``; exceptions are for misuse (bad arguments).
        """
        ...

    def generate(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        *,
        constraint: Constraints = None,
        seed: int | Sequence[int] = 0,
        **settings: Any,
    ) -> list[Completion]:
        """Complete every prompt; one :class:`Completion` per prompt, in order.

        Args:
            prompts: Plain completion prompts.
            params: Decoding settings (default: greedy, 64 tokens).
            constraint: Output format to enforce (grammar or JSON schema) and parse; one
                for all prompts or one per prompt (e.g. tables with different row counts).
            seed: One seed for all prompts or one per prompt.
            **settings: Fields of :class:`GenerationParams` that replace those of
                ``params`` (``temperature=0.7, max_tokens=120``).
        """
        ...


class Model(ABC):
    """Base of every backend and wrapper: :meth:`generate` over :meth:`complete`.

    A backend writes :meth:`complete` (and :attr:`identity`) and receives every prompt with
    one format and one seed, already checked; the keyword interface, the argument checks
    and the expansion of formats and seeds happen here once.
    """

    @property
    @abstractmethod
    def identity(self) -> ModelIdentity:
        """Backend, model and weights revision."""

    @abstractmethod
    def complete(self, request: Request) -> list[Completion]:
        """Complete every prompt of ``request`` (see :meth:`LanguageModel.complete`)."""

    def generate(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        *,
        constraint: Constraints = None,
        seed: int | Sequence[int] = 0,
        **settings: Any,
    ) -> list[Completion]:
        """Complete every prompt (see :meth:`LanguageModel.generate`)."""
        params = params or GenerationParams()
        if settings:
            unknown = sorted(set(settings) - {f.name for f in fields(GenerationParams)})
            if unknown:
                known = [f.name for f in fields(GenerationParams)]
                raise TypeError(f"generate() got unknown setting(s) {unknown}: choose from {known}")
            params = replace(params, **settings)
        request = Request.build(prompts, params, constraint=constraint, seed=seed)
        return checked(self, request, self.complete(request))


@dataclass
class Wrapper(Model):
    """A model around another one: same identity, behaviour added in :meth:`complete`.

    Attributes:
        model: The wrapped model.
    """

    model: LanguageModel

    @property
    def identity(self) -> ModelIdentity:
        """The wrapped model's identity (a wrapper never changes what answers mean)."""
        return self.model.identity

    def complete(self, request: Request) -> list[Completion]:
        """Forward to the wrapped model."""
        return checked(self.model, request, self.model.complete(request))


def checked(model: LanguageModel, request: Request, out: list[Completion]) -> list[Completion]:
    """``out`` if it holds one completion per prompt of ``request``; a broken backend raises."""
    if len(out) != len(request):
        raise RuntimeError(
            f"{model.identity.backend} returned {len(out)} completions for {len(request)} prompts"
        )
    return out


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


def finish(
    text: str,
    constraint: OutputFormat | None,
    *,
    tokens_in: int,
    tokens_out: int,
    latency_s: float,
    stop: Sequence[str] = (),
    tokens_shared: int = 0,
) -> Completion:
    """Turn a backend's raw text into a parsed :class:`Completion`."""
    for s in stop:
        if s and s in text:
            text = text[: text.index(s)]
    base = Completion(
        text=text,
        tokens_in=tokens_in,
        tokens_shared=tokens_shared,
        tokens_out=tokens_out,
        latency_s=latency_s,
    )
    if constraint is None:
        return base
    try:
        return replace(base, value=constraint.parse(text))
    except ParseError as exc:
        return replace(base, error=str(exc), error_kind=PARSE_ERROR)


def backend_failure(message: str, *, latency_s: float = 0.0, retryable: bool = False) -> Completion:
    """A completion that records that the backend gave no answer.

    Args:
        message: Why.
        latency_s: Time spent before giving up.
        retryable: The failure may pass (a refused connection, a timeout, a 429): a
            :class:`~swalab.llm.retry.RetryingModel` asks again.
    """
    return Completion(
        text="", error=message, error_kind=BACKEND_ERROR, latency_s=latency_s, retryable=retryable
    )


@dataclass
class Stopwatch:
    """Measures one call's wall time (``time.perf_counter``)."""

    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds since construction."""
        return time.perf_counter() - self.start

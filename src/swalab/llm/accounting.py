"""Call accounting: what every ``generate`` call cost, kept beside the results.

:class:`CountingModel` wraps any model and logs one :class:`CallRecord` per call that
reached it; put it inside a :class:`~swalab.llm.cache.CachedModel` to count only the
calls the cache could not serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from swalab.llm.base import BACKEND_ERROR, PARSE_ERROR, Completion, Request, Stopwatch, Wrapper


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """One batched ``generate`` call.

    Attributes:
        prompts: Prompts in the call.
        tokens_in: Prompt tokens over all prompts.
        tokens_shared: Prompt tokens the backend reused instead of evaluating.
        tokens_out: Generated tokens over all prompts.
        latency_s: Wall time of the call.
        parse_failures: Completions that did not parse.
        backend_failures: Prompts the backend gave no answer for.
        cached: Completions served from a cache below this wrapper.
    """

    prompts: int
    tokens_in: int
    tokens_shared: int
    tokens_out: int
    latency_s: float
    parse_failures: int
    backend_failures: int
    cached: int

    @classmethod
    def of(cls, completions: Sequence[Completion], latency_s: float) -> CallRecord:
        """Summarise the completions of one call."""
        return cls(
            prompts=len(completions),
            tokens_in=sum(c.tokens_in for c in completions),
            tokens_shared=sum(c.tokens_shared for c in completions),
            tokens_out=sum(c.tokens_out for c in completions),
            latency_s=latency_s,
            parse_failures=sum(c.error_kind == PARSE_ERROR for c in completions),
            backend_failures=sum(c.error_kind == BACKEND_ERROR for c in completions),
            cached=sum(c.cached for c in completions),
        )


@dataclass
class CountingModel(Wrapper):
    """Logs every call that reaches ``model``."""

    calls: list[CallRecord] = field(default_factory=list)

    def complete(self, request: Request) -> list[Completion]:
        """Forward the call and record it."""
        watch = Stopwatch()
        out = super().complete(request)
        self.calls.append(CallRecord.of(out, watch.elapsed()))
        return out

    def totals(self) -> dict[str, float]:
        """Sums over all recorded calls, plus tokens per second of generation."""
        out: dict[str, float] = {"calls": float(len(self.calls))}
        for name in (
            *("prompts", "tokens_in", "tokens_shared", "tokens_out", "latency_s"),
            *("parse_failures", "backend_failures", "cached"),
        ):
            out[name] = float(sum(getattr(c, name) for c in self.calls))
        out["tokens_out_per_s"] = out["tokens_out"] / out["latency_s"] if out["latency_s"] else 0.0
        return out

"""Retries with backoff, as a wrapper any backend can wear.

A batched call rarely fails whole: a server drops one request of fifty, a rate limit
answers some with 429. :class:`RetryingModel` asks again for exactly the prompts whose
completion is a *retryable* backend failure (the backend says which failures may pass: a
refused connection, a timeout, a 429 — not a prompt too long for the context), waiting an
exponentially growing, jittered time between attempts (tenacity's ``wait_exponential``
plus ``wait_random``). Answers that arrived are kept; a prompt that still fails after
the last attempt comes back as a backend failure that says how many attempts it had.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from swalab.llm.base import BACKEND_ERROR, Completion, LanguageModel, Request, Wrapper


def _retryable(completion: Completion | None) -> bool:
    return (
        completion is not None and completion.error_kind == BACKEND_ERROR and completion.retryable
    )


class RetryingModel(Wrapper):
    """Re-asks only the prompts whose completion is a retryable backend failure.

    Attributes:
        attempts: Calls per prompt at most (1 = no retry).
        backoff_s: Wait before the first retry; it doubles per retry (capped at
            ``max_backoff_s``), plus up to ``backoff_s`` of random jitter.
        max_backoff_s: Longest exponential part of a wait.
        retried: Prompts asked again, over the wrapper's life.
    """

    def __init__(
        self,
        model: LanguageModel,
        *,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wrap ``model``.

        Raises:
            ValueError: ``attempts < 1`` or a negative wait.
        """
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts={attempts!r} is out of range: must be an integer >= 1")
        if not (backoff_s >= 0 and max_backoff_s >= 0):
            raise ValueError(
                f"backoff_s={backoff_s} and max_backoff_s={max_backoff_s}: waits must be >= 0"
            )
        super().__init__(model)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.retried = 0
        self._sleep = sleep

    def complete(self, request: Request) -> list[Completion]:
        """Ask for every prompt, then again for the retryable failures, up to ``attempts``."""
        from tenacity import (
            Retrying,
            retry_if_result,
            stop_after_attempt,
            wait_exponential,
            wait_random,
        )

        results: list[Completion | None] = [None] * len(request)
        pending = list(range(len(request)))
        asked = 0

        def attempt() -> list[int]:
            nonlocal pending, asked
            if asked:
                self.retried += len(pending)
            asked += 1
            fresh = super(RetryingModel, self).complete(request.subset(pending))
            for i, c in zip(pending, fresh, strict=True):
                results[i] = c
            pending = [i for i in pending if _retryable(results[i])]
            return pending

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s)
            + wait_random(0, self.backoff_s),
            retry=retry_if_result(bool),
            retry_error_callback=_last_result,
            sleep=self._sleep,
        )
        retrying(attempt)
        out = [c for c in results if c is not None]
        for i in pending:
            c = out[i]
            out[i] = replace(c, error=f"{c.error} (gave up after {asked} attempts)")
        return out


def _last_result(state: Any) -> Any:
    """After the last attempt, hand back what it returned instead of raising."""
    return state.outcome.result()

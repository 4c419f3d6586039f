"""A scripted language model: answers come from a function or a list, not from weights.

It is a real :class:`~swalab.llm.base.LanguageModel` (same parsing, same errors), so the
protocol, fallbacks, cache and accounting can be tested on exact, hand-made answers; and
recorded answers can be replayed through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swalab.llm.base import (
    Completion,
    Model,
    ModelIdentity,
    Request,
    Stopwatch,
    backend_failure,
    finish,
)

#: ``answer(prompt, seed)`` returns the completion text, or ``None`` for a backend failure.
Answer = Callable[[str, int], "str | None"]


@dataclass
class ScriptedModel(Model):
    """Answers each prompt with ``answer(prompt, seed)`` or the next item of ``answers``.

    Attributes:
        answer: The function that writes completions.
        answers: Fixed completions handed out in order (used when ``answer`` is None).
        name: Model name in its identity.
    """

    answer: Answer | None = None
    answers: Sequence[str | None] = ()
    name: str = "scripted"
    calls: int = 0

    def __post_init__(self) -> None:
        if self.answer is None and not self.answers:
            raise ValueError("ScriptedModel needs answer= (a function) or answers= (a list)")
        self._next = 0

    @property
    def identity(self) -> ModelIdentity:
        """``scripted/<name>``."""
        return ModelIdentity(backend="scripted", model=self.name)

    def complete(self, request: Request) -> list[Completion]:
        """Answer every prompt; token counts are whitespace-separated words.

        A ``None`` answer is a backend failure that may pass (retryable), as a dropped
        connection would be.
        """
        self.calls += 1
        watch = Stopwatch()
        out = []
        for prompt, s, fmt in zip(request.prompts, request.seeds, request.formats, strict=True):
            if self.answer is not None:
                text = self.answer(prompt, s)
            else:
                if self._next >= len(self.answers):
                    raise IndexError(f"ScriptedModel ran out of its {len(self.answers)} answers")
                text = self.answers[self._next]
                self._next += 1
            if text is None:
                out.append(backend_failure("scripted backend failure", retryable=True))
                continue
            out.append(
                finish(
                    text,
                    fmt,
                    tokens_in=len(prompt.split()),
                    tokens_out=len(text.split()),
                    latency_s=watch.elapsed(),
                    stop=request.params.stop,
                )
            )
        return out

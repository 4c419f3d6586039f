"""Assemble the usual wrapper stack around a backend: cache, retries, call counter.

From the outside in: the response cache answers what it knows; the misses go to the
retrying wrapper, which asks again for transient failures only; the counter sits below both,
so it sees exactly the calls that reached the model (a rerun served from the cache shows
zero calls, and every retry is a call).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swalab.llm.accounting import CountingModel
from swalab.llm.base import LanguageModel
from swalab.llm.cache import CachedModel
from swalab.llm.registry import load_model
from swalab.llm.retry import RetryingModel


def default_cache_path() -> Path:
    """``$SWALAB_CACHE_DIR/responses.sqlite`` (default ``~/.cache/swalab``)."""
    root = os.environ.get("SWALAB_CACHE_DIR") or Path.home() / ".cache" / "swalab"
    return Path(root) / "responses.sqlite"


@dataclass
class ModelStack:
    """A backend with its counter, retries and optional cache.

    Attributes:
        model: What to call (the outermost wrapper).
        counter: Counts calls that reached the backend.
        retry: Asks again for prompts whose failure may pass.
        cache: The cache wrapper, if caching is on.
    """

    model: LanguageModel
    counter: CountingModel
    retry: RetryingModel
    cache: CachedModel | None


def open_model(
    backend: str,
    model: str | None = None,
    *,
    cache: str | Path | None = None,
    use_cache: bool = True,
    attempts: int = 3,
    **options: Any,
) -> ModelStack:
    """Load ``backend`` and wrap it: counter, retries, then cache (``cache`` or the default).

    Args:
        backend: Registry name.
        model: Preset name, file or model id.
        cache: Cache file (default :func:`default_cache_path`).
        use_cache: Off: every prompt goes to the model.
        attempts: Calls per prompt at most when the backend's failure may pass.
        **options: The backend's own options.
    """
    counter = CountingModel(load_model(backend, model=model, **options))
    retry = RetryingModel(counter, attempts=attempts)
    if not use_cache:
        return ModelStack(model=retry, counter=counter, retry=retry, cache=None)
    cached = CachedModel(retry, cache if cache is not None else default_cache_path())
    return ModelStack(model=cached, counter=counter, retry=retry, cache=cached)

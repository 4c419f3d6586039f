"""Assemble the usual wrapper stack around a backend: cache outside, call counter inside.

The counter sits below the cache, so it sees exactly the calls that reached the model: a
rerun served from the cache shows zero calls.
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


def default_cache_path() -> Path:
    """``$SWALAB_CACHE_DIR/responses.sqlite`` (default ``~/.cache/swalab``)."""
    root = os.environ.get("SWALAB_CACHE_DIR") or Path.home() / ".cache" / "swalab"
    return Path(root) / "responses.sqlite"


@dataclass
class ModelStack:
    """A backend with its counter and optional cache.

    Attributes:
        model: What to call (the cache if there is one, else the counter).
        counter: Counts calls that reached the backend.
        cache: The cache wrapper, if caching is on.
    """

    model: LanguageModel
    counter: CountingModel
    cache: CachedModel | None


def open_model(
    backend: str,
    model: str | None = None,
    *,
    cache: str | Path | None = None,
    use_cache: bool = True,
    **options: Any,
) -> ModelStack:
    """Load ``backend`` and wrap it: counter, then cache (``cache`` path or the default)."""
    counter = CountingModel(load_model(backend, model=model, **options))
    if not use_cache:
        return ModelStack(model=counter, counter=counter, cache=None)
    cached = CachedModel(counter, cache if cache is not None else default_cache_path())
    return ModelStack(model=cached, counter=counter, cache=cached)

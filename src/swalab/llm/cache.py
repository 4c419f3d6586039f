"""On-disk response cache: a rerun of the same configuration is served without the model.

The key holds everything that can change an answer: backend, model identity (name and
weights revision, e.g. the GGUF file's hash), the prompt, the output format, temperature,
per-prompt seed, token limit and stop strings. Only real answers are stored: backend
failures are not, so a rerun retries them. SQLite in WAL mode lets several worker
processes share one cache file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from swalab.llm.base import (
    BACKEND_ERROR,
    Completion,
    Constraints,
    LanguageModel,
    ModelIdentity,
    constraints_for,
    finish,
    seeds_for,
)
from swalab.llm.constraints import OutputFormat

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    latency_s REAL NOT NULL
)
"""


def cache_key(
    identity: ModelIdentity,
    prompt: str,
    constraint: OutputFormat | None,
    *,
    temperature: float,
    seed: int,
    max_tokens: int,
    stop: Sequence[str],
) -> str:
    """SHA-256 of every input that determines a completion."""
    fmt = None
    if constraint is not None:
        fmt = [constraint.name, hashlib.sha256(constraint.gbnf().encode()).hexdigest()]
    payload = json.dumps(
        {
            "backend": identity.backend,
            "model": identity.model,
            "revision": identity.revision,
            "prompt": prompt,
            "format": fmt,
            "temperature": float(temperature),
            # Greedy decoding ignores the seed, so greedy answers are shared across seeds.
            "seed": seed if temperature > 0 else None,
            "max_tokens": max_tokens,
            "stop": list(stop),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A SQLite table of completions keyed by :func:`cache_key`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60.0)
            self._local.conn = conn
        return conn

    def get(self, keys: Sequence[str]) -> dict[str, tuple[str, int, int, float]]:
        """Return the stored ``(text, tokens_in, tokens_out, latency_s)`` of known keys."""
        found: dict[str, tuple[str, int, int, float]] = {}
        conn = self._connect()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, text, tokens_in, tokens_out, latency_s FROM completions "
                f"WHERE key IN ({marks})",
                chunk,
            )
            for key, text, t_in, t_out, lat in rows:
                found[key] = (text, t_in, t_out, lat)
        return found

    def put(self, rows: Sequence[tuple[str, Completion]]) -> None:
        """Store answers (first write wins, so concurrent writers agree)."""
        conn = self._connect()
        with conn:
            conn.executemany(
                "INSERT OR IGNORE INTO completions VALUES (?, ?, ?, ?, ?)",
                [(k, c.text, c.tokens_in, c.tokens_out, c.latency_s) for k, c in rows],
            )

    def __len__(self) -> int:
        row = self._connect().execute("SELECT COUNT(*) FROM completions").fetchone()
        return int(row[0])


class CachedModel:
    """Serves prompts from a :class:`ResponseCache` and sends only the misses, in one call."""

    def __init__(self, model: LanguageModel, cache: ResponseCache | str | Path) -> None:
        self.model = model
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.hits = 0
        self.misses = 0

    @property
    def identity(self) -> ModelIdentity:
        """The wrapped model's identity."""
        return self.model.identity

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
        """Answer from the cache where possible; the misses go to the model together."""
        prompts = list(prompts)
        seeds = seeds_for(seed, len(prompts))
        formats = constraints_for(constraint, len(prompts))
        keys = [
            cache_key(self.identity, p, f, temperature=temperature, seed=s,
                      max_tokens=max_tokens, stop=stop)
            for p, f, s in zip(prompts, formats, seeds, strict=True)
        ]  # fmt: skip
        stored = self.cache.get(keys)
        results: list[Completion | None] = [None] * len(prompts)
        for i, key in enumerate(keys):
            if key in stored:
                text, t_in, t_out, lat = stored[key]
                done = finish(text, formats[i], tokens_in=t_in, tokens_out=t_out, latency_s=lat)
                results[i] = replace(done, cached=True)
        todo = [i for i, r in enumerate(results) if r is None]
        self.hits += len(prompts) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = self.model.generate(
                [prompts[i] for i in todo],
                constraint=[formats[i] for i in todo],
                temperature=temperature,
                seed=[seeds[i] for i in todo],
                max_tokens=max_tokens,
                stop=stop,
            )
            self.cache.put(
                [(keys[i], c) for i, c in zip(todo, fresh, strict=True)
                 if c.error_kind != BACKEND_ERROR]
            )  # fmt: skip
            for i, c in zip(todo, fresh, strict=True):
                results[i] = c
        return [r for r in results if r is not None]

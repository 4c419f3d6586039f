"""On-disk response cache: a rerun of the same configuration is served without the model.

The key holds everything that can change an answer: backend, model identity (name, weights
revision such as the GGUF file's hash, and how the client asks: a server's URL and its
structured-output mode), the prompt, the output format, and every generation setting
(temperature, token limit, stop strings) with the per-prompt seed. Only real answers are
stored: backend failures are not, so a rerun retries them. SQLite in WAL mode lets several
worker processes share one cache file.
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
    GenerationParams,
    LanguageModel,
    ModelIdentity,
    Request,
    Wrapper,
    finish,
)
from swalab.llm.constraints import OutputFormat

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    tokens_shared INTEGER NOT NULL DEFAULT 0
)
"""


def cache_key(
    identity: ModelIdentity,
    prompt: str,
    constraint: OutputFormat | None,
    *,
    params: GenerationParams,
    seed: int,
) -> str:
    """SHA-256 of every input that determines a completion.

    Every field of ``params`` is in the key by name, so a new decoding setting keys the
    cache without an edit here (and keys written before it existed stay valid as long as
    their settings hold the same names and values).
    """
    fmt = None
    if constraint is not None:
        fmt = [constraint.name, hashlib.sha256(constraint.gbnf().encode()).hexdigest()]
    settings = params.as_dict()
    settings["temperature"] = float(params.temperature)
    fields = {
        "backend": identity.backend,
        "model": identity.model,
        "revision": identity.revision,
        "prompt": prompt,
        "format": fmt,
        # Greedy decoding ignores the seed, so greedy answers are shared across seeds.
        "seed": seed if params.temperature > 0 else None,
        **settings,
    }
    if identity.settings:  # absent when empty, so keys written before it existed still hit
        fields["client"] = identity.settings
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False)
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
            self._migrate(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Give a cache written before ``tokens_shared`` existed the column (0: unknown)."""
        columns = {row[1] for row in conn.execute("PRAGMA table_info(completions)")}
        if "tokens_shared" not in columns:
            try:
                conn.execute(
                    "ALTER TABLE completions ADD COLUMN tokens_shared INTEGER NOT NULL DEFAULT 0"
                )
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60.0)
            self._local.conn = conn
        return conn

    def get(self, keys: Sequence[str]) -> dict[str, tuple[str, int, int, int, float]]:
        """Return the stored ``(text, tokens_in, tokens_shared, tokens_out, latency_s)``."""
        found: dict[str, tuple[str, int, int, int, float]] = {}
        conn = self._connect()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, text, tokens_in, tokens_shared, tokens_out, latency_s "
                f"FROM completions WHERE key IN ({marks})",
                chunk,
            )
            for key, text, t_in, t_shared, t_out, lat in rows:
                found[key] = (text, t_in, t_shared, t_out, lat)
        return found

    def put(self, rows: Sequence[tuple[str, Completion]]) -> None:
        """Store answers (first write wins, so concurrent writers agree)."""
        conn = self._connect()
        with conn:
            conn.executemany(
                "INSERT OR IGNORE INTO completions (key, text, tokens_in, tokens_shared, "
                "tokens_out, latency_s) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (k, c.text, c.tokens_in, c.tokens_shared, c.tokens_out, c.latency_s)
                    for k, c in rows
                ],
            )

    def __len__(self) -> int:
        row = self._connect().execute("SELECT COUNT(*) FROM completions").fetchone()
        return int(row[0])


class CachedModel(Wrapper):
    """Serves prompts from a :class:`ResponseCache` and sends only the misses, in one call.

    Attributes:
        cache: The cache.
        hits: Prompts served from the cache.
        misses: Prompts sent to the model.
    """

    def __init__(self, model: LanguageModel, cache: ResponseCache | str | Path) -> None:
        """Wrap ``model``; ``cache`` is a cache or the path of one (created if missing)."""
        super().__init__(model)
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.hits = 0
        self.misses = 0

    def complete(self, request: Request) -> list[Completion]:
        """Answer from the cache where possible; the misses go to the model together."""
        cache = self.cache
        keys = [
            cache_key(self.identity, p, f, params=request.params, seed=s)
            for p, f, s in zip(request.prompts, request.formats, request.seeds, strict=True)
        ]
        stored = cache.get(keys)
        results: list[Completion | None] = [None] * len(request)
        for i, key in enumerate(keys):
            if key in stored:
                text, t_in, t_shared, t_out, lat = stored[key]
                done = finish(
                    text,
                    request.formats[i],
                    tokens_in=t_in,
                    tokens_shared=t_shared,
                    tokens_out=t_out,
                    latency_s=lat,
                )
                results[i] = replace(done, cached=True)
        todo = [i for i, r in enumerate(results) if r is None]
        self.hits += len(request) - len(todo)
        self.misses += len(todo)
        if todo:
            fresh = super().complete(request.subset(todo))
            answered = [(keys[i], c) for i, c in zip(todo, fresh, strict=True)]
            cache.put([(k, c) for k, c in answered if c.error_kind != BACKEND_ERROR])
            for i, c in zip(todo, fresh, strict=True):
                results[i] = c
        return [r for r in results if r is not None]

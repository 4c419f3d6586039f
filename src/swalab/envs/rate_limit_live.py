"""``rate_limit_v0`` live: the same agents against a real HTTP service on 127.0.0.1.

:func:`serve` starts a small threaded HTTP server (standard library, no extra) that
enforces the limit the pure model describes: a token bucket (``rate`` tokens per window of
``step_s`` seconds, at most ``burst``), 429 answers for calls beyond it, and a lockout
after ``lockout_after`` windows in a row with more than ``lockout_threshold`` rejections.
Refill is ``interval`` (``rate`` tokens at each window boundary, as bucket4j's interval
refill) or ``continuous`` (``rate/step_s`` tokens per second, the classic bucket).

:func:`call` is one client request. The agents that play against the server live a layer
up, in :mod:`swalab.swi.live`.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from swalab.envs.rate_limit_v0 import RateLimit


class Limiter:
    """The server's limiter: windows of ``step_s`` seconds from ``t0`` (thread-safe)."""

    def __init__(self, dyn: RateLimit, step_s: float, refill: str, t0: float) -> None:
        """Start with a full bucket at ``t0`` (``time.monotonic`` seconds)."""
        self.dyn, self.step_s, self.refill, self.t0 = dyn, step_s, refill, t0
        self.lock = threading.Lock()
        self.window = 0
        self.tokens = float(dyn.burst)
        self.stamp = t0
        self.lock_left = 0
        self.streak = 0
        self.rejected_now = 0
        self.counts: dict[int, dict[str, int]] = {}
        self.locked: dict[int, bool] = {0: False}

    def _close_window(self) -> None:
        """End the current window: judge abuse, count the lockout down, refill."""
        d = self.dyn
        if self.lock_left > 0:
            self.lock_left -= 1
        elif self.rejected_now > d.lockout_threshold:
            self.streak += 1
            if d.lockout_after > 0 and self.streak >= d.lockout_after:
                self.lock_left, self.streak = d.lockout_steps, 0
        else:
            self.streak = 0
        self.rejected_now = 0
        self.window += 1
        self.locked[self.window] = self.lock_left > 0
        if self.refill == "interval":
            self.tokens = min(float(d.burst), self.tokens + d.rate)

    def sync(self, now: float) -> None:
        """Close every window that ended before ``now`` (call with the lock held)."""
        target = math.floor((now - self.t0) / self.step_s)
        while self.window < target:
            self._close_window()

    def call(self, agent: int, now: float) -> tuple[int, str]:
        """Admit or refuse one call at ``now``: ``(status, reason)``."""
        with self.lock:
            self.sync(now)
            if self.refill == "continuous":
                rate_s = self.dyn.rate / self.step_s
                self.tokens = min(float(self.dyn.burst), self.tokens + (now - self.stamp) * rate_s)
                self.stamp = now
            count = self.counts.setdefault(self.window, {"ok": 0, "limited": 0, "locked": 0})
            if self.lock_left > 0:
                count["locked"] += 1
                return 429, "locked_out"
            if self.tokens >= 1.0 - 1e-9:
                self.tokens -= 1.0
                count["ok"] += 1
                return 200, "ok"
            self.rejected_now += 1
            count["limited"] += 1
            return 429, "rate_limited"


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # a step's calls arrive at once; the default 5 resets them
    daemon_threads = True


@dataclass
class LiveServer:
    """A running limit server.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        limiter: Its limiter (window clock ``t0``, per-window counts).
    """

    url: str
    limiter: Limiter
    server: ThreadingHTTPServer = field(repr=False)


def _handler(limiter: Limiter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                agent = int(self.headers.get("X-Agent", "-1"))
            except ValueError:
                agent = -1
            status, reason = limiter.call(agent, time.monotonic())
            body = json.dumps({"status": reason, "agent": agent}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-RateLimit-Remaining", str(int(limiter.tokens)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: thousands of calls per run."""

    return Handler


@contextlib.contextmanager
def serve(
    dyn: RateLimit, step_s: float = 0.2, refill: Literal["interval", "continuous"] = "interval"
) -> Iterator[LiveServer]:
    """Run the limit server on 127.0.0.1 (a free port) until the block exits.

    Raises:
        ValueError: For ``step_s ≤ 0`` or an unknown ``refill``.
    """
    if not step_s > 0:
        raise ValueError(f"step_s={step_s!r} is out of range: must be > 0 seconds")
    if refill not in ("interval", "continuous"):
        raise ValueError(f"refill={refill!r} is not known: choose interval or continuous")
    limiter = Limiter(dyn, step_s, refill, time.monotonic())
    server = _Server(("127.0.0.1", 0), _handler(limiter))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_address[1]}", limiter, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def call(url: str, agent: int) -> int:
    """Send one call to a limit server as ``agent``; return the HTTP status (200 or 429)."""
    request = urllib.request.Request(
        url + "/call", data=b"{}", method="POST", headers={"X-Agent": str(agent)}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)

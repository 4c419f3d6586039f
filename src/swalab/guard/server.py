"""A rate-limited API on 127.0.0.1: uvicorn serving the live limiter, in its own process.

Why uvicorn: it is the server most Python API services (FastAPI, Starlette) run on, so the
limit behaves as the servers builders' clients meet do — real HTTP/1.1 over real sockets,
keep-alive, one asyncio loop holding a thousand connections — and its app here is a bare
ASGI function, so no framework's cost is measured. It runs in a child process: the clients'
event loop and the server's do not share a core or a GIL, and the server's own counters are
kept apart from the clients' (they must agree).

The limiter is ``rate_limit_v0``'s (:class:`~swalab.envs.rate_limit_live.Limiter`): a token
bucket refilled with ``limit`` tokens at each window of ``window_s`` seconds, 429 for a call
beyond it. Three behaviours (:data:`BEHAVIOURS`):

* ``plain`` — a bare 429, no headers.
* ``retry_after`` — 429 with ``Retry-After`` (seconds to the window's end), and
  ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` on every answer (the IETF draft's
  names; seconds to the millisecond, see :meth:`LimitApp.headers`).
* ``lockout`` — as ``retry_after``, and ``lockout_after`` windows in a row with more than
  ``lockout_threshold`` rejections lock the key for ``lockout_windows`` windows: every
  call is refused, ``Retry-After`` is the lock's end.

``POST /call`` (header ``X-Client``: the caller's number) is one call; ``GET /stats`` the
server's counters: per window admitted / rate-limited / locked-out calls and whether the
window was locked, per client the same totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from swalab.envs.rate_limit_live import Limiter
from swalab.envs.rate_limit_v0 import RateLimit

Behaviour = Literal["plain", "retry_after", "lockout"]
BEHAVIOURS: tuple[Behaviour, ...] = ("plain", "retry_after", "lockout")


@dataclass(frozen=True)
class ServerConfig:
    """The limit a server enforces.

    Attributes:
        limit: Calls admitted per window (the bucket's refill and size).
        window_s: Window length in seconds.
        behaviour: ``plain``, ``retry_after`` or ``lockout``.
        lockout_threshold: Rejections in a window above which it is abusive.
        lockout_after: Abusive windows in a row that lock the key.
        lockout_windows: Windows a lockout lasts.
    """

    limit: int = 200
    window_s: float = 1.0
    behaviour: Behaviour = "retry_after"
    lockout_threshold: int = 100
    lockout_after: int = 2
    lockout_windows: int = 3

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(
                f"behaviour={self.behaviour!r} is not known: choose one of {list(BEHAVIOURS)}"
            )
        for name, value, low in (
            ("limit", self.limit, 1),
            ("lockout_threshold", self.lockout_threshold, 0),
            ("lockout_after", self.lockout_after, 1),
            ("lockout_windows", self.lockout_windows, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r} is out of range: must be an integer >= {low}")
        if not self.window_s > 0:
            raise ValueError(f"window_s={self.window_s!r} is out of range: must be > 0 seconds")

    def dynamics(self) -> RateLimit:
        """The limit as ``rate_limit_v0`` writes it (one step = one window)."""
        return RateLimit(
            n_agents=2,
            rate=float(self.limit),
            burst=float(self.limit),
            lockout_threshold=float(self.lockout_threshold),
            lockout_after=self.lockout_after if self.behaviour == "lockout" else 0,
            lockout_steps=self.lockout_windows,
        )


class LimitApp:
    """The ASGI app: the limiter and its counters."""

    def __init__(self, config: ServerConfig) -> None:
        """Start the window clock now."""
        self.config = config
        self.limiter = Limiter(config.dynamics(), config.window_s, "interval", time.monotonic())
        self.clients: dict[int, dict[str, int]] = {}

    def headers(self, status: int, now: float) -> list[tuple[bytes, bytes]]:
        """The limit headers of one answer (none when ``plain``).

        Seconds are written with millisecond precision, as Discord's
        ``X-RateLimit-Reset-After`` is: RFC 9110's whole seconds would round a window of one
        second to "1" at every instant, which says nothing about where the window ends.
        """
        if self.config.behaviour == "plain":
            return []
        lim = self.limiter
        end = lim.t0 + (lim.window + 1) * lim.step_s
        reset = max(0.001, end - now)
        out = [
            (b"ratelimit-limit", str(self.config.limit).encode()),
            (b"ratelimit-remaining", str(int(lim.tokens)).encode()),
            (b"ratelimit-reset", f"{reset:.3f}".encode()),
        ]
        if status == 429:
            wait = reset + max(0, lim.lock_left - 1) * lim.step_s
            out.append((b"retry-after", f"{wait:.3f}".encode()))
        return out

    def stats(self) -> dict[str, Any]:
        """The server's counters so far (windows closed up to now)."""
        lim = self.limiter
        with lim.lock:
            lim.sync(time.monotonic())
            windows = {
                str(w): c | {"locked_window": bool(lim.locked.get(w, False))}
                for w, c in sorted(lim.counts.items())
            }
            locked = sum(bool(v) for v in lim.locked.values())
        totals = {k: sum(c[k] for c in lim.counts.values()) for k in ("ok", "limited", "locked")}
        return {
            "config": asdict(self.config),
            "totals": totals,
            "locked_windows": locked,
            "windows": windows,
            "clients": {str(k): v for k, v in sorted(self.clients.items())},
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve ``POST /call`` and ``GET /stats``."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        while (await receive()).get("more_body"):  # drain the request body
            pass
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        if scope["path"] == "/stats":
            status, body = 200, json.dumps(self.stats()).encode()
        elif scope["path"] == "/call":
            client = -1
            for key, value in scope["headers"]:
                if key == b"x-client":
                    client = int(value) if value.isdigit() else -1
            now = time.monotonic()
            status, reason = self.limiter.call(client, now)
            count = self.clients.setdefault(client, {"ok": 0, "limited": 0, "locked": 0})
            kind = {"ok": "ok", "locked_out": "locked"}.get(reason, "limited")
            count[kind] += 1
            headers += self.headers(status, now)
            body = json.dumps({"status": reason}).encode()
        else:
            status, body = 404, b'{"error": "no such path: POST /call or GET /stats"}'
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _serve(config: ServerConfig) -> None:
    """Serve until killed; the port goes to stdout, one line, once listening."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    app = LimitApp(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            backlog=4096,
            timeout_keep_alive=60,
            lifespan="on",
        )
    )

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task  # it failed to start: raise why
            await asyncio.sleep(0.01)
        print(sock.getsockname()[1], flush=True)
        await task

    asyncio.run(main())


@dataclass
class RunningServer:
    """A limit server in a child process.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        config: What it enforces.
        process: The child process.
    """

    url: str
    config: ServerConfig
    process: subprocess.Popen[str]

    def peak_rss_mib(self) -> float:
        """The server process's peak resident memory so far (Linux ``VmHWM``; else NaN)."""
        try:
            with open(f"/proc/{self.process.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return math.nan

    def stats(self) -> dict[str, Any]:
        """``GET /stats`` (standard library client: works without httpx)."""
        import urllib.request

        with urllib.request.urlopen(self.url + "/stats", timeout=30) as answer:
            result: dict[str, Any] = json.loads(answer.read())
        return result


@contextlib.contextmanager
def serve(config: ServerConfig, *, start_timeout_s: float = 30.0) -> Iterator[RunningServer]:
    """Run a limit server on 127.0.0.1 (a free port) in a child process until the block ends.

    The child is ``python -m swalab.guard.server CONFIG_JSON``: a fresh interpreter, so
    it works from any script (no ``if __name__ == "__main__"`` guard needed).

    Raises:
        ImportError: Naming the ``guard`` extra when uvicorn is missing.
        RuntimeError: When the server did not start within ``start_timeout_s`` (with its
            error output).
    """
    try:
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError("the limit server needs uvicorn: pip install 'swalab[guard]'") from exc
    process = subprocess.Popen(
        [sys.executable, "-m", "swalab.guard.server", json.dumps(asdict(config))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], start_timeout_s)
        line = process.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            process.kill()
            _, err = process.communicate(timeout=10)
            raise RuntimeError(
                f"the limit server did not start within {start_timeout_s:g} s: {err[-2000:]}"
            )
        yield RunningServer(f"http://127.0.0.1:{int(line)}", config, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    _serve(ServerConfig(**json.loads(sys.argv[1])))

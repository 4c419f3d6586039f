"""Local servers for tests and demos, always bound to 127.0.0.1.

:func:`llama_server` starts llama-cpp-python's OpenAI-compatible server on a free port in
a subprocess and stops it on exit, so the ``openai`` backend can be checked against real
server software (and killed mid-run) without any network access.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A started server process.

    Attributes:
        process: The subprocess.
        base_url: ``http://127.0.0.1:PORT/v1``.
        model: The model alias it serves.
    """

    process: subprocess.Popen[bytes]
    base_url: str
    model: str

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def llama_server(
    model_path: str | Path | None = None,
    *,
    alias: str = "gemma",
    n_ctx: int = 2048,
    timeout: float = 120.0,
) -> Iterator[RunningServer]:
    """Run ``python -m llama_cpp.server`` on 127.0.0.1 until the block ends.

    Args:
        model_path: GGUF file (default: the embedded Gemma 3 270M).
        alias: Model name clients use.
        n_ctx: Context size.
        timeout: Seconds to wait for the server to answer.
    """
    if model_path is None:
        from swalab.llm.backends.llamacpp import embedded_model_path

        model_path = embedded_model_path()
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--model_alias",
        alias,
    ]
    # The server logs a lot: a pipe nobody reads would fill up and stall it, so use a file.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        server = RunningServer(process=proc, base_url=f"http://127.0.0.1:{port}/v1", model=alias)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"llama.cpp server exited with {proc.returncode}: {err}")
                try:
                    with urllib.request.urlopen(f"{server.base_url}/models", timeout=2):
                        break
                except (urllib.error.URLError, OSError):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"llama.cpp server not up after {timeout} s") from None
                    time.sleep(0.25)
            yield server
        finally:
            server.kill()


def completion(
    text: object,
    *,
    prompt_tokens: int = 9,
    completion_tokens: int = 2,
    cached_tokens: int | None = None,
) -> bytes:
    """The body of an OpenAI ``/v1/completions`` answer for :func:`fixed_reply`.

    ``text`` may be any JSON value: ``None`` or a number stand for a malformed answer.
    ``cached_tokens``: the prompt tokens the server says its prefix cache served.
    """
    import json

    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return json.dumps(
        {
            "id": "x",
            "object": "text_completion",
            "created": 0,
            "model": "x",
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }
    ).encode()


@contextlib.contextmanager
def fixed_reply(
    body: bytes, content_type: str = "application/json", status: int = 200, delay_s: float = 0.0
) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every POST with ``body``; yields its ``/v1`` URL.

    It stands in for a server that misbehaves (garbage, an HTML error page, prose where a
    completion belongs, an answer that arrives only at the client's timeout), so the openai
    backend's handling of each is tested for real.
    """
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay_s)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()

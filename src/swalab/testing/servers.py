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

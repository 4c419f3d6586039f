"""Measuring a run: the process's peak memory and the machine it ran on.

Kept apart from the benchmarks' study kind so that a script that only measures (such as
``scripts/gpu_check.py`` on a machine with PyTorch and little else) need not import the
store's dependencies.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from typing import Any


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class PeakMemory:
    """Samples the resident set size every few ms while a block runs.

    tracemalloc cannot see memory that compiled kernels allocate, so the process's RSS is
    read instead; the peak above the level at entry is what the block needed.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self.base = self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def used_mib(self) -> float:
        """Peak RSS above the level at entry, in MiB."""
        return (self.peak - self.base) / 2**20


def machine_info() -> dict[str, Any]:
    """What a measurement ran on (numbers compare only on the same machine)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "processor": platform.machine(),
    }

"""Peak resident memory of a block of code, on Linux: what "memory per input" bars in the tests measure."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest


def resident_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


@contextlib.contextmanager
def peak_mb():
    """Yields a list that, after the block, holds the most memory (MB) the process held during it beyond what it
    held before. Linux only: writing 5 to /proc/self/clear_refs restarts the VmHWM high-water mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("peak memory is measured through Linux's /proc/self/clear_refs")
    before = resident_mb("VmRSS")
    result: list[float] = []
    yield result
    result.append(resident_mb("VmHWM") - before)

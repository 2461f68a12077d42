"""Timing and peak memory of one call, for the benchmark scripts (Linux ``/proc``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def status_mb(field: str) -> float:
    """``field`` (``VmRSS``, ``VmHWM``, ...) of this process's ``/proc/self/status`` in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(call: Callable[[], object]) -> tuple[object, float, float]:
    """(result, seconds, peak RSS rise in MB) of ``call()``."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before = status_mb("VmRSS")
    t0 = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - t0
    return result, seconds, max(0.0, status_mb("VmHWM") - before)

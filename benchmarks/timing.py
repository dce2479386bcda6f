"""Timing helpers the benchmark scripts share (each script runs from this folder, so
``import timing`` finds it)."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """The call's result and its wall-clock seconds, after a garbage collection."""
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak of Python and numpy allocations during a call (tracemalloc slows the call, so the
    time is taken in another run)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()

"""Waiting on a condition rather than for a fixed time: a fixed sleep is too short on a loaded
machine and too long on an idle one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(check: Callable[[], Any], timeout: float = 20.0, what: str = "the condition", step: float = 0.05) -> Any:
    """``check()``'s first truthy value; ``AssertionError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)

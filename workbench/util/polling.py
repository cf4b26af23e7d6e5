"""The one wait-until loop: poll a check until it gives an answer or a deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T | None:
    """Call ``check`` every ``interval`` s until it returns something other than None (returned) or
    ``timeout`` s have passed (None). ``check`` runs at least once and may raise to give up early."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)

"""SIGTERM / SIGINT during training: finish the current step, checkpoint, then stop with exit 128 + signal."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int, step: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint written")
        self.signum = signum
        self.exit_code = 128 + signum


@contextlib.contextmanager
def deferred_signals() -> Iterator[Callable[[], int | None]]:
    """Record SIGTERM/SIGINT instead of dying; yields a function returning the first signal received (or None).

    Outside the main thread (where handlers cannot be installed) it records nothing.
    """
    received: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in HANDLED:
            previous[signum] = signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield lambda: received[0] if received else None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""A work budget for optimisation loops: at most so many iterations, until a deadline, or until
someone cancels (a web client that left).

The caller opens a budget around the work (``with work_budget(iterations=500, seconds=60,
cancel=event): ...``) in the thread that runs it; an optimisation loop asks
:func:`spend_iteration` before each iteration and stops when it answers True, keeping the image
it has. Without an open budget :func:`spend_iteration` always answers False, so the CLI and the
library run as before. The budget is a context variable: concurrent requests in different
threads each see their own.
"""
from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Budget:
    max_iterations: int | None = None  # over the whole call: every stage and image together
    deadline: float | None = None  # time.monotonic() value
    cancel: threading.Event = field(default_factory=threading.Event)
    iterations: int = 0
    stopped: str | None = None  # why the work was cut short: "iterations", "time" or "cancelled"

    def spend(self) -> bool:
        """Account for one iteration about to run; True (and ``stopped`` set) when it must not."""
        if self.cancel.is_set():
            self.stopped = "cancelled"
        elif self.max_iterations is not None and self.iterations >= self.max_iterations:
            self.stopped = self.stopped or "iterations"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = "time"
        else:
            self.iterations += 1
            return False
        return True


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("styleforge_budget", default=None)


@contextmanager
def work_budget(iterations: int | None = None, seconds: float | None = None,
                cancel: threading.Event | None = None):
    """Open a :class:`Budget` for the work done inside the block (in this thread); yields it."""
    b = Budget(max_iterations=iterations, deadline=None if seconds is None else time.monotonic() + seconds,
               cancel=cancel or threading.Event())
    token = _current.set(b)
    try:
        yield b
    finally:
        _current.reset(token)


def spend_iteration() -> bool:
    """One iteration of an optimisation loop: True when the open budget says stop."""
    b = _current.get()
    return False if b is None else b.spend()

"""CPU threads, decided before torch starts its OpenMP pool.

torch's CPU build uses GNU OpenMP, whose threads spin at the end of every parallel region by
default. Beside other busy processes a spinning thread holds a core another process needs: on a
2-core machine shared with other torch jobs a Gatys call was 3-16x slower with two spinning
threads than with sleeping ones (docs/benchmarks.md). With the passive wait policy a waiting
thread sleeps instead; on an idle machine that cost at most 1.3x (benchmarks/threads.py). So the CLI sets
``OMP_WAIT_POLICY=PASSIVE`` unless the user set a policy, and ``--threads N`` /
``$STYLEFORGE_THREADS`` choose the number of threads (default: torch's, one per core).
Only effective before torch is imported: the CLI calls :func:`configure_threads` first thing.
What runs inside the CLI's process inherits this: the web app's workers are threads (each calls
into torch with the same count and wait policy), and batch's decode workers are DataLoader
processes, forked or spawned with this environment, in which torch runs one thread. Measured
for each in docs/benchmarks.md ("Threads on a busy machine").
"""
from __future__ import annotations

import os
import sys


def configure_threads(threads: int | None = None) -> int | None:
    """Set the OpenMP wait policy default and, if given (or in ``$STYLEFORGE_THREADS``), the number
    of threads; returns that number or None. Raises ValueError for a number below 1."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads is None and os.environ.get("STYLEFORGE_THREADS"):
        value = os.environ["STYLEFORGE_THREADS"]
        try:
            threads = int(value)
        except ValueError:
            raise ValueError(f"STYLEFORGE_THREADS must be a whole number of threads, got {value!r}") from None
    if threads is None:
        return None
    if threads < 1:
        raise ValueError(f"the number of threads must be at least 1, got {threads}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # already started (an in-process call): set it there too
        sys.modules["torch"].set_num_threads(threads)
    return threads

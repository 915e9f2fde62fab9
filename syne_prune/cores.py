"""How many CPU cores this process may use, and how a number of worker processes share them."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (all cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(n_workers: int) -> int:
    """Intra-op threads for each of ``n_workers`` workers so that together they use each core once."""
    return max(1, usable_cores() // n_workers)

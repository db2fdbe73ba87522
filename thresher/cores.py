"""The CPU cores this process may use: one answer for every part that sizes its workers."""

from __future__ import annotations

import os


def cpu_count() -> int:
    """Cores this process may use (its affinity mask; all cores where there is none).

    A container's CPU set or ``taskset`` counts, unlike :func:`os.cpu_count`.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)

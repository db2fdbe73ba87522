"""Progress reporting that library code can call without knowing who listens.

Library functions take a :class:`ProgressFactory`; the CLI passes one that draws tqdm bars with
images/s, tasks add Prefect progress artifacts, tests pass nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Protocol

Advance = Callable[[int], None]


class ProgressFactory(Protocol):
    """Opens a progress context for ``total`` units; the context yields an ``advance(n)``."""

    def __call__(
        self, desc: str, total: int, unit: str = "img"
    ) -> contextlib.AbstractContextManager[Advance]:
        """Open progress for ``total`` units of ``unit`` named ``desc``."""
        ...


@contextlib.contextmanager
def null_progress(desc: str, total: int, unit: str = "img") -> Iterator[Advance]:
    """Progress that goes nowhere (library calls without a listener)."""
    yield lambda n: None


def bars_enabled() -> bool:
    """Bars are on unless THRESHER_PROGRESS=0; they go to stderr."""
    return os.environ.get("THRESHER_PROGRESS", "1") != "0"


@contextlib.contextmanager
def tqdm_progress(desc: str, total: int, unit: str = "img") -> Iterator[Advance]:
    """A tqdm bar on stderr showing count, rate (images/s) and time left."""
    if not bars_enabled() or total <= 0:
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=f"{desc:<18}",
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        leave=True,
    ) as bar:
        yield bar.update

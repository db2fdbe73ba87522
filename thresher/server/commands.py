"""``thresher server start`` and ``thresher user add`` (argument parsing only; imports lazily)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    """Add the server's subcommands to the ``thresher`` parser's subparsers ``sub``."""
    del sub  # filled in by the platform work

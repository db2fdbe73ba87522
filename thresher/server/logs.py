"""A logging filter that masks credentials in URLs: ``token=``, ``signature=``, ``Bearer``.

Lightly's client sends the token as a query parameter, so uvicorn's access log would print it;
this filter rewrites every record (message and arguments) before any handler formats it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_PATTERNS = (
    (re.compile(r"(?i)\b(token|signature|publicToken)=[^&\s\"']+"), r"\1=***"),
    (re.compile(r"(?i)\b(Bearer)\s+[^\s\"']+"), r"\1 ***"),
)


def mask(text: str) -> str:
    """``text`` with every credential in it replaced by ``***``."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _mask_arg(value: Any) -> Any:
    return mask(value) if isinstance(value, str) else value


class MaskCredentials(logging.Filter):
    """Masks credentials in a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place."""
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask_arg(v) for k, v in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """The default uvicorn logging config with :class:`MaskCredentials` on every handler."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg.setdefault("filters", {})["mask_credentials"] = {"()": MaskCredentials}
    for handler in cfg.get("handlers", {}).values():
        handler.setdefault("filters", []).append("mask_credentials")
    return cfg

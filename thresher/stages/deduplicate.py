"""Stage ``deduplicate``: drop byte-identical files, keeping the first by sorted name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from thresher.caching import stage_dir, stage_key
from thresher.checks.corruption import find_exact_duplicates
from thresher.stages import _store
from thresher.stages.corruption_check import CorruptionChecked

log = logging.getLogger("thresher.stages")

FILE = "deduplicated.json"


@dataclass(frozen=True)
class Deduplicated:
    """The files kept after removing corrupt files and exact duplicates.

    ``n_kept`` may be 0 (every file corrupt or a duplicate): the flow then writes what it found
    and stops with a message, instead of this stage failing without a trace.
    """

    key: str
    lightly_url: str
    n_duplicate: int
    n_kept: int
    cached: str = ""

    def _read(self, field: str) -> Any:
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_json(lightly, f"{stage_dir(self.key)}/{FILE}")[field]

    def kept(self) -> list[str]:
        """The files later stages work on, in listing order."""
        kept: list[str] = self._read("kept")
        return kept

    def duplicates(self) -> dict[str, str]:
        """Duplicate filename -> the kept file it duplicates."""
        duplicates: dict[str, str] = self._read("duplicates")
        return duplicates


def deduplicate(checked: CorruptionChecked, *, enabled: bool = True) -> Deduplicated:
    """Keep the first of each group of byte-identical files (by sorted name)."""
    key = stage_key("deduplicate", checked.key, enabled)
    lightly = _store.lightly_location(checked.lightly_url)
    m = _store.cached(lightly, key)
    if m is not None:
        return Deduplicated(key, checked.lightly_url, m["n_duplicate"], m["n_kept"], "cached")
    files = checked.files()
    duplicates = find_exact_duplicates(files) if enabled else {}
    kept = [f.name for f in files if f.corrupt_reason is None and f.name not in duplicates]
    _store.write_json(lightly, f"{stage_dir(key)}/{FILE}", {"kept": kept, "duplicates": duplicates})
    _store.finish(lightly, key, {"n_duplicate": len(duplicates), "n_kept": len(kept)}, [FILE])
    log.info("exact duplicates: %d removed, %d kept", len(duplicates), len(kept))
    return Deduplicated(key, checked.lightly_url, len(duplicates), len(kept))

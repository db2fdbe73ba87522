"""Stage ``deduplicate``: drop byte-identical files, keeping the first by sorted name."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from thresher.caching import stage_dir, stage_key
from thresher.checks.corruption import FileCheck, find_exact_duplicates
from thresher.errors import InputError
from thresher.stages import _store
from thresher.stages.corruption_check import CorruptionChecked

log = logging.getLogger("thresher.stages")


@dataclass(frozen=True)
class Deduplicated:
    key: str
    lightly_url: str
    n_duplicate: int
    n_kept: int

    def _read(self, field: str) -> object:
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_json(lightly, f"{stage_dir(self.key)}/dedup.json")[field]

    def kept(self) -> list[str]:
        return self._read("kept")  # type: ignore[return-value]

    def duplicates(self) -> dict[str, str]:
        return self._read("duplicates")  # type: ignore[return-value]


def deduplicate(scan: CorruptionChecked, *, enabled: bool = True) -> Deduplicated:
    """Keep the first of each group of byte-identical files (by sorted name)."""
    key = stage_key("deduplicate", scan.key, enabled)
    lightly = _store.lightly_location(scan.lightly_url)
    if _store.is_complete(lightly, key):
        m = _store.manifest(lightly, key)
        return Deduplicated(key, scan.lightly_url, m["n_duplicate"], m["n_kept"])
    data = _store.read_json(lightly, f"{stage_dir(scan.key)}/scan.json")
    corrupt = data["corrupt"]
    results = [
        FileCheck(n, s, h, corrupt.get(n))
        for n, s, h in zip(data["names"], data["size"], data["sha256"], strict=True)
    ]
    duplicates = find_exact_duplicates(results) if enabled else {}
    kept = [r.name for r in results if r.corrupt_reason is None and r.name not in duplicates]
    if not kept:
        raise InputError(
            f"All {len(results)} input files are corrupt or duplicates: nothing is left to "
            "embed. See corruptness_check_information.json for the reasons."
        )
    _store.write_json(
        lightly, f"{stage_dir(key)}/dedup.json", {"kept": kept, "duplicates": duplicates}
    )
    _store.finish(lightly, key, {"n_duplicate": len(duplicates), "n_kept": len(kept)})
    log.info("exact duplicates: %d removed, %d kept", len(duplicates), len(kept))
    return Deduplicated(key, scan.lightly_url, len(duplicates), len(kept))

"""Stages 2 and 3: the corruption check (one full decode and hash per file) and exact duplicates."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from thresher.caching import stage_dir, stage_key
from thresher.checks.scan import ScanResult, find_exact_duplicates, scan_files
from thresher.errors import InputError
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.listing import Listing
from thresher.storage.location import Location

log = logging.getLogger("thresher.stages")


@dataclass(frozen=True)
class Scan:
    key: str
    lightly_url: str
    n_scanned: int
    n_corrupt: int

    def corrupt(self) -> dict[str, str]:
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_json(lightly, f"{stage_dir(self.key)}/scan.json")["corrupt"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Dedup:
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


def check_corruption(
    listing: Listing,
    *,
    enabled: bool = True,
    num_threads: int = -1,
    progress: ProgressFactory = null_progress,
) -> Scan:
    """Decode every relevant file fully and hash it; corrupt files are recorded with a reason."""
    key = stage_key("scan", listing.key, enabled)
    lightly = _store.lightly_location(listing.lightly_url)
    if _store.is_complete(lightly, key):
        m = _store.manifest(lightly, key)
        return Scan(key, listing.lightly_url, m["n_scanned"], m["n_corrupt"])
    names = listing.names()
    desc = "corruption check" if enabled else "hashing"
    with progress(desc, len(names)) as advance:
        results = scan_files(
            Location(listing.input_url),
            names,
            check_corruption=enabled,
            num_threads=num_threads,
            progress=advance,
        )
    corrupt = {r.name: r.corrupt_reason for r in results if r.corrupt_reason is not None}
    for name, reason in list(corrupt.items())[:20]:
        log.warning("corrupt: %s: %s", name, reason)
    _store.write_json(
        lightly,
        f"{stage_dir(key)}/scan.json",
        {
            "names": [r.name for r in results],
            "sha256": [r.sha256 for r in results],
            "size": [r.size for r in results],
            "corrupt": corrupt,
        },
    )
    _store.finish(lightly, key, {"n_scanned": len(results), "n_corrupt": len(corrupt)})
    log.info("scanned %d files: %d corrupt", len(results), len(corrupt))
    return Scan(key, listing.lightly_url, len(results), len(corrupt))


def remove_duplicates(scan: Scan, *, enabled: bool = True) -> Dedup:
    """Keep the first of each group of byte-identical files (by sorted name)."""
    key = stage_key("dedup", scan.key, enabled)
    lightly = _store.lightly_location(scan.lightly_url)
    if _store.is_complete(lightly, key):
        m = _store.manifest(lightly, key)
        return Dedup(key, scan.lightly_url, m["n_duplicate"], m["n_kept"])
    data = _store.read_json(lightly, f"{stage_dir(scan.key)}/scan.json")
    corrupt = data["corrupt"]
    results = [
        ScanResult(n, s, h, corrupt.get(n))
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
    return Dedup(key, scan.lightly_url, len(duplicates), len(kept))

"""Stage ``corruption_check``: decode every relevant file fully and hash it (one read per file)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from thresher.caching import stage_dir, stage_key
from thresher.checks.corruption import check_files
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.list_input import Listing
from thresher.storage.location import Location

log = logging.getLogger("thresher.stages")


@dataclass(frozen=True)
class CorruptionChecked:
    key: str
    lightly_url: str
    n_scanned: int
    n_corrupt: int

    def corrupt(self) -> dict[str, str]:
        lightly = _store.lightly_location(self.lightly_url)
        return _store.read_json(lightly, f"{stage_dir(self.key)}/scan.json")["corrupt"]  # type: ignore[no-any-return]


def corruption_check(
    listing: Listing,
    *,
    enabled: bool = True,
    num_threads: int = -1,
    progress: ProgressFactory = null_progress,
) -> CorruptionChecked:
    """Decode every relevant file fully and hash it; corrupt files are recorded with a reason."""
    key = stage_key("corruption_check", listing.key, enabled)
    lightly = _store.lightly_location(listing.lightly_url)
    if _store.is_complete(lightly, key):
        m = _store.manifest(lightly, key)
        return CorruptionChecked(key, listing.lightly_url, m["n_scanned"], m["n_corrupt"])
    names = listing.names()
    desc = "corruption check" if enabled else "hashing"
    with progress(desc, len(names)) as advance:
        results = check_files(
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
    return CorruptionChecked(key, listing.lightly_url, len(results), len(corrupt))



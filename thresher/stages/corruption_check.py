"""Stage ``corruption_check``: decode every relevant file fully and hash it (one read per file)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from thresher.caching import stage_dir, stage_key
from thresher.checks.corruption import FileCheck, check_files
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.list_input import Listing, printable_name
from thresher.storage.location import Location

log = logging.getLogger("thresher.stages")

FILE = "checked.json"


@dataclass(frozen=True)
class CorruptionChecked:
    """What the corruption check found: counts here, per-file results in the LIGHTLY cache."""

    key: str
    lightly_url: str
    n_checked: int
    n_corrupt: int
    cached: str = ""

    def corrupt(self) -> dict[str, str]:
        """Corrupt filename -> reason."""
        lightly = _store.lightly_location(self.lightly_url)
        found: dict[str, str] = _store.read_json(lightly, f"{stage_dir(self.key)}/{FILE}")[
            "corrupt"
        ]
        return found

    def files(self) -> list[FileCheck]:
        """Every checked file with its size, hash and corruption reason, in listing order."""
        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/{FILE}")
        corrupt = data["corrupt"]
        return [
            FileCheck(n, s, h, corrupt.get(n))
            for n, s, h in zip(data["names"], data["size"], data["sha256"], strict=True)
        ]


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
    m = _store.cached(lightly, key)
    if m is not None:
        return CorruptionChecked(key, listing.lightly_url, m["n_checked"], m["n_corrupt"], "cached")
    names = listing.names()
    desc = "corruption check" if enabled else "hashing"
    with progress(desc, len(names)) as advance:
        results = check_files(
            Location(listing.input_url),
            names,
            check_corruption=enabled,
            num_threads=num_threads,
            progress=advance,
            sizes=listing.sizes(),
        )
    corrupt = {r.name: r.corrupt_reason for r in results if r.corrupt_reason is not None}
    for name, reason in list(corrupt.items())[:20]:
        log.warning("corrupt: %s: %s", printable_name(name), reason)
    _store.write_json(
        lightly,
        f"{stage_dir(key)}/{FILE}",
        {
            "names": [r.name for r in results],
            "sha256": [r.sha256 for r in results],
            "size": [r.size for r in results],
            "corrupt": corrupt,
        },
    )
    _store.finish(lightly, key, {"n_checked": len(results), "n_corrupt": len(corrupt)}, [FILE])
    log.info("checked %d files: %d corrupt", len(results), len(corrupt))
    return CorruptionChecked(key, listing.lightly_url, len(results), len(corrupt))

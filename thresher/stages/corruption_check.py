"""Stage ``corruption_check``: decode every relevant file fully and hash it (one read per file).

For a video run the listing already read every video (:func:`thresher.storage.video.scan_video`):
this stage turns those findings into per-frame results. A frame that does not decode is
corrupt with its reason; a video whose broken fraction reaches
``corruptness_check.corruption_threshold`` is excluded whole (every frame corrupt); a video
that does not open is one corrupt sample. Frames share their video's hash plus their index, so
the frames of byte-identical videos are exact duplicates of each other, as images are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from thresher.caching import stage_dir, stage_key
from thresher.checks.corruption import FileCheck, check_files
from thresher.progress import ProgressFactory, null_progress
from thresher.stages import _store
from thresher.stages.list_input import Listing, printable_name, scan_videos
from thresher.storage.location import Location
from thresher.storage.video import VideoScan, parse_frame_name

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

    def videos(self) -> dict[str, dict[str, Any]]:
        """A video run's per-video findings: name -> ``{n_frames, n_broken, corrupt}``.

        ``corrupt`` is the reason the whole video is excluded, or None. Empty for images.
        """
        lightly = _store.lightly_location(self.lightly_url)
        found: dict[str, dict[str, Any]] = _store.read_json(
            lightly, f"{stage_dir(self.key)}/{FILE}"
        ).get("videos", {})
        return found

    def quality(self) -> dict[str, dict[str, float]]:
        """Per decoded image, its quality scores (``thresher.checks.quality``) by key.

        Empty when the check was off (nothing was decoded) and for videos.
        """
        from thresher.config.selection import THRESHER_METADATA_KEYS

        lightly = _store.lightly_location(self.lightly_url)
        data = _store.read_json(lightly, f"{stage_dir(self.key)}/{FILE}")
        return {
            n: dict(zip(THRESHER_METADATA_KEYS, v, strict=True))
            for n, v in data.get("quality", {}).items()
        }

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
    corruption_threshold: float = 0.1,
) -> CorruptionChecked:
    """Decode every relevant file fully and hash it; corrupt files are recorded with a reason.

    Args:
        listing: The listing.
        enabled: ``worker_config.enable_corruptness_check``. Off, files are only hashed
            (a video's frames that do not decode are still excluded: they cannot be embedded;
            no video is excluded by the threshold).
        num_threads: Threads; -1 = two per core.
        progress: Progress factory.
        corruption_threshold: ``corruptness_check.corruption_threshold`` (videos only): the
            fraction of broken frames at which a whole video is excluded.
    """
    videos = listing.dataset_type == "videos"
    key = stage_key(
        "corruption_check", listing.key, enabled, *([corruption_threshold] if videos else [])
    )
    lightly = _store.lightly_location(listing.lightly_url)
    m = _store.cached(lightly, key)
    if m is not None:
        return CorruptionChecked(key, listing.lightly_url, m["n_checked"], m["n_corrupt"], "cached")
    per_video: dict[str, dict[str, Any]] = {}
    if videos:
        results, per_video = _check_videos(
            listing, enabled, corruption_threshold, num_threads, progress
        )
    else:
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
    if videos:
        _log_videos(per_video, corrupt)
    else:
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
            # per decoded image, its quality scores in THRESHER_METADATA_KEYS order
            "quality": {r.name: list(r.quality) for r in results if r.quality is not None},
            **({"videos": per_video} if videos else {}),
        },
    )
    _store.finish(lightly, key, {"n_checked": len(results), "n_corrupt": len(corrupt)}, [FILE])
    log.info("checked %d files: %d corrupt", len(results), len(corrupt))
    return CorruptionChecked(key, listing.lightly_url, len(results), len(corrupt))


def _check_videos(
    listing: Listing,
    enabled: bool,
    threshold: float,
    num_threads: int,
    progress: ProgressFactory,
) -> tuple[list[FileCheck], dict[str, dict[str, Any]]]:
    """Per-sample results of a video run, in listing order, and the per-video findings."""
    scans = listing.videos()
    names = set(listing.names())
    recount = [s for s in scans.values() if s.counted_by == "metadata" and enabled]
    if recount:  # use_frame_count_metadata: the listing did not decode; the check must
        with progress("corruption check", len(recount)) as advance:
            decoded = scan_videos(
                Location(listing.input_url),
                [s.name for s in recount],
                [s.size for s in recount],
                decode=True,
                num_threads=num_threads,
                progress=advance,
            )
        for before, after in zip(recount, decoded, strict=True):
            scans[before.name] = _as_listed(before, after)
    results: list[FileCheck] = []
    per_video: dict[str, dict[str, Any]] = {}
    for scan in scans.values():
        if scan.error is not None:
            if scan.name in names:
                results.append(FileCheck(scan.name, scan.size, scan.sha256, scan.error))
            per_video[scan.name] = {"n_frames": 0, "n_broken": 0, "corrupt": scan.error}
            continue
        frames = scan.frame_names()
        n_broken = len(scan.broken)
        fraction = n_broken / scan.n_frames
        excluded = None
        if enabled and n_broken and fraction >= threshold:
            excluded = (
                f"video excluded: {n_broken} of {scan.n_frames} frames broken ({fraction:.1%}), "
                f"at or above corruptness_check.corruption_threshold {threshold}"
            )
        per_video[scan.name] = {
            "n_frames": scan.n_frames,
            "n_broken": n_broken,
            "corrupt": excluded,
        }
        for i, frame in enumerate(frames):
            reason = scan.broken.get(i) or excluded
            results.append(FileCheck(frame, scan.size, f"{scan.sha256}:{i}", reason))
    return results, per_video


def _as_listed(listed: VideoScan, decoded: VideoScan) -> VideoScan:
    """The decoded findings on the frames the listing named (counted from metadata)."""
    if decoded.error is not None:
        # The listing named frames: all of them are broken (the video is then excluded).
        return VideoScan(
            listed.name,
            listed.size,
            listed.sha256,
            listed.n_frames,
            {i: decoded.error for i in range(listed.n_frames)},
        )
    broken = {i: r for i, r in decoded.broken.items() if i < listed.n_frames}
    for i in range(decoded.n_frames, listed.n_frames):
        broken[i] = (
            f"missing: decoding gives {decoded.n_frames} frames, the container lists "
            f"{listed.n_frames}"
        )
    return VideoScan(listed.name, listed.size, listed.sha256, listed.n_frames, broken)


def _log_videos(per_video: dict[str, dict[str, Any]], corrupt: dict[str, str]) -> None:
    """One warning per video with a problem (not one per frame)."""
    shown = 0
    for name, found in per_video.items():
        if shown >= 20:
            break
        if found["corrupt"] is not None:
            log.warning("corrupt video: %s: %s", printable_name(name), found["corrupt"])
        elif found["n_broken"]:
            log.warning(
                "%s: %d of %d frames broken and excluded (first: %s)",
                printable_name(name),
                found["n_broken"],
                found["n_frames"],
                next(
                    (r for n, r in corrupt.items() if (parse_frame_name(n) or ("",))[0] == name),
                    "",
                ),
            )
        else:
            continue
        shown += 1

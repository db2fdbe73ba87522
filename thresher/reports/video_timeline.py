"""The per-video sampling timeline of a video run (``show_video_sampling_timeline``).

One row per video: a bar as long as the video's frame count, a tick at each selected frame (a
span for a run of consecutive selected frames, such as a sequence) and a red tick at each
broken frame, so the report shows where in each video the picks came from.

Example:
    >>> rows = timeline_rows(
    ...     {"a.mp4": {"n_frames": 30, "n_broken": 0, "corrupt": None}},
    ...     ["a-05-mp4.png", "a-20-mp4.png"],
    ...     {},
    ... )
    >>> rows[0]
    VideoTimeline(video='a.mp4', n_frames=30, selected=(5, 20), broken=(), excluded=None)
    >>> fig = video_timeline_figure(rows)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from thresher.reports.figures import _figure, _style, ellipsize
from thresher.storage.video import parse_frame_name

#: At most this many videos are drawn (the ones with the most selected frames first);
#: Lightly advises turning the timeline off above about 20 videos.
MAX_VIDEOS = 40


@dataclass(frozen=True)
class VideoTimeline:
    """One video's row: its length, the selected and the broken frame indices."""

    video: str
    n_frames: int
    selected: tuple[int, ...]
    broken: tuple[int, ...]
    excluded: str | None


def timeline_rows(
    videos: Mapping[str, Mapping[str, Any]],
    selected: Iterable[str],
    corrupt: Mapping[str, str],
) -> list[VideoTimeline]:
    """The timeline's rows, one per video that has frames, in name order.

    Args:
        videos: The corruption check's per-video findings (``CorruptionChecked.videos()``):
            name -> ``{n_frames, n_broken, corrupt}``.
        selected: The selected frame names.
        corrupt: Corrupt sample name -> reason (broken frames are drawn in red).
    """
    picks: dict[str, list[int]] = {}
    for name in selected:
        parsed = parse_frame_name(name)
        if parsed is not None:
            picks.setdefault(parsed[0], []).append(parsed[1])
    broken: dict[str, list[int]] = {}
    for name, reason in corrupt.items():
        parsed = parse_frame_name(name)
        if parsed is not None and not reason.startswith("video excluded"):
            broken.setdefault(parsed[0], []).append(parsed[1])
    return [
        VideoTimeline(
            video,
            int(info["n_frames"]),
            tuple(sorted(picks.get(video, []))),
            tuple(sorted(broken.get(video, []))),
            info.get("corrupt"),
        )
        for video, info in sorted(videos.items())
        if int(info["n_frames"]) > 0
    ]


def _runs(indices: tuple[int, ...]) -> list[tuple[int, int]]:
    """``(first, last)`` of each run of consecutive indices (sorted input)."""
    out: list[tuple[int, int]] = []
    for i in indices:
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def video_timeline_figure(rows: list[VideoTimeline]) -> Figure:
    """Draw the timeline: one bar per video (frame index on x), picks black, broken frames red.

    Args:
        rows: From :func:`timeline_rows`; above :data:`MAX_VIDEOS` the videos with the most
            picks are drawn and the title says how many were left out.

    Returns:
        The figure (save it with :func:`thresher.reports.figures.save_figure`).
    """
    shown = sorted(rows, key=lambda r: (-len(r.selected), r.video))[:MAX_VIDEOS]
    shown.sort(key=lambda r: r.video)
    with _style():
        fig, axes = _figure(7.5, 0.9 + 0.42 * max(1, len(shown)))
        ax = axes[0][0]
        for y, row in enumerate(shown):
            ax.barh(y, 1.0, left=0, height=0.6, color="#e8e8e8", edgecolor="none")
            if row.excluded:
                ax.barh(y, 1.0, left=0, height=0.6, color="#f4c7c3", edgecolor="none")
            scale = max(1, row.n_frames)
            if row.broken:
                ax.vlines(
                    [b / scale for b in row.broken], y - 0.3, y + 0.3, color="#c0392b", lw=1.2
                )
            # runs of consecutive picks (sequences, selected_sequence_length) as spans
            for first, last in _runs(row.selected):
                if last > first:
                    width = (last + 1 - first) / scale
                    ax.barh(y, width, left=first / scale, height=0.6, color="#222", lw=0)
                else:
                    ax.vlines([first / scale], y - 0.3, y + 0.3, color="#222", lw=1.5)
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels(
            [f"{ellipsize(r.video, 28)} ({len(r.selected)}/{r.n_frames})" for r in shown]
        )
        ax.set_ylim(len(shown) - 0.5, -0.5)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xticklabels(["start", "25%", "50%", "75%", "end"])
        ax.grid(axis="y", visible=False)
        left = len(rows) - len(shown)
        title = "Selected frames per video (black; red: broken frames; red band: video excluded)"
        if left:
            title += f"; {left} more videos not shown"
        ax.set_title(title)
        fig.tight_layout()
    return fig

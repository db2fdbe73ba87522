"""The video library (thresher/storage/video.py) and the stages' video branches, on real videos.

The planted answers are in tests/video/videos.py.
"""

from pathlib import Path

import numpy as np
import pytest

from tests.video.videos import RED, PlantedVideos, write_video
from thresher.errors import CorruptMediaError
from thresher.stages.corruption_check import corruption_check
from thresher.stages.deduplicate import deduplicate
from thresher.stages.list_input import list_input
from thresher.storage.location import Location
from thresher.storage.video import (
    FrameDecodeError,
    FrameReader,
    frame_name,
    parse_frame_name,
    scan_video,
)


def test_frame_names_are_lightlys() -> None:
    # Lightly: f"{video_name}-{frame_number:0{len(str(n_frames))}}-{video_format}.png"
    assert frame_name("video_1.mp4", 99, 475) == "video_1-099-mp4.png"
    assert frame_name("a/b.c/clip.MOV", 3, 10) == "a/b.c/clip-03-MOV.png"
    assert frame_name("x.avi", 0, 9) == "x-0-avi.png"
    assert parse_frame_name("a/b.c/clip-03-MOV.png") == ("a/b.c/clip.MOV", 3)
    assert parse_frame_name("my-clip-2-x-007-webm.png") == ("my-clip-2-x.webm", 7)
    # an image whose name looks like a frame of a non-video is not a frame
    assert parse_frame_name("photo-01-jpg.png") is None
    assert parse_frame_name("clip.mp4") is None


def test_scan_counts_frames_by_decoding_and_finds_broken_ones(planted_videos) -> None:
    loc = Location(str(planted_videos.root))
    scenes = scan_video(loc, "scenes.mp4")
    assert (scenes.n_frames, scenes.broken, scenes.error) == (24, {}, None)
    assert scenes.sha256 == scan_video(loc, "copy.mp4").sha256
    broken = scan_video(loc, "broken.avi")
    assert broken.n_frames == 12 and sorted(broken.broken) == [3, 4]
    assert broken.broken[3].startswith("frame does not decode")
    truncated = scan_video(loc, "truncated.mp4")
    assert truncated.n_frames == 0 and truncated.error is not None
    assert truncated.error.startswith("does not open as a video")
    assert str(planted_videos.root) not in truncated.error  # no local paths in reasons
    assert scan_video(loc, "notes.txt").error is not None


def test_a_stream_that_ends_early_reports_its_missing_frames(tmp_path: Path) -> None:
    # The index is at the front (faststart), so the first third opens; the container lists
    # 30 frames and about 10 decode: the rest are broken frames, each with a reason.
    import av

    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(30):  # noise: every frame is large, so the cut lands mid-stream
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    scan = scan_video(Location(str(tmp_path)), "fast.mp4")
    assert scan.error is None and scan.n_frames == 30
    assert 15 <= len(scan.broken) < 30
    assert any(r.startswith("missing: the stream ends") for r in scan.broken.values())


def test_frame_reader_streams_in_order_and_reopens_for_earlier_frames(planted_videos) -> None:
    loc = Location(str(planted_videos.root))
    reader = FrameReader(loc)
    forward = [np.asarray(reader.read("scenes.mp4", i)) for i in (0, 9, 20)]
    again = np.asarray(reader.read("scenes.mp4", 0))  # earlier: the video is reopened
    assert np.array_equal(again, forward[0])
    assert forward[0].shape == (48, 64, 3)
    # scene 1 (frames 0-7) is red, scene 2 green, scene 3 blue: the dominant channel says which
    assert [int(f.reshape(-1, 3).mean(axis=0).argmax()) for f in forward] == [0, 1, 2]
    with pytest.raises(FrameDecodeError) as err:
        reader.read("broken.avi", 3)
    assert err.value.frame == 3 and err.value.filename == "broken.avi"
    assert isinstance(err.value, CorruptMediaError)
    assert np.asarray(reader.read_frame("broken-05-avi.png")).shape == (48, 64, 3)
    with pytest.raises(FrameDecodeError, match="past the last frame"):
        reader.read("CLIP.MOV", 10)
    reader.close()


def _run(planted: PlantedVideos, tmp_path: Path, **kwargs):
    listing = list_input(
        str(planted.root),
        str(tmp_path / "lightly"),
        dataset_type="videos",
        use_frame_count_metadata=kwargs.pop("use_frame_count_metadata", False),
    )
    checked = corruption_check(listing, **kwargs)
    return listing, checked, deduplicate(checked)


def test_listing_expands_videos_into_frames(planted_videos, tmp_path) -> None:
    listing, checked, dedup = _run(planted_videos, tmp_path)
    names = listing.names()
    assert listing.n_input == planted_videos.n_samples == len(names)
    assert "notes.txt" not in names and "truncated.mp4" in names
    assert names[:3] == ["CLIP-00-MOV.png", "CLIP-01-MOV.png", "CLIP-02-MOV.png"]
    assert (checked.n_corrupt, dedup.n_duplicate, dedup.n_kept) == (
        planted_videos.corrupt_default,
        planted_videos.duplicates,
        planted_videos.kept_default,
    )
    # the frames of the byte-identical copy are duplicates, frame for frame
    assert dedup.duplicates()["scenes-05-mp4.png"] == "copy-05-mp4.png"


@pytest.mark.parametrize(
    ("threshold", "corrupt", "kept"),
    [
        # 2 of 12 frames broken = 1/6: at the threshold the whole video goes
        (1 / 6, 13, 54),
        (0.17, 3, 64),  # above 1/6: only the two broken frames (and the truncated file)
        (0.5, 3, 64),
    ],
)
def test_corruption_threshold_excludes_whole_videos(
    planted_videos, tmp_path, threshold, corrupt, kept
) -> None:
    _, checked, dedup = _run(planted_videos, tmp_path, corruption_threshold=threshold)
    assert (checked.n_corrupt, dedup.n_kept) == (corrupt, kept)
    excluded = checked.videos()["broken.avi"]["corrupt"]
    assert (excluded is not None) == (corrupt == 13)


def test_frames_that_do_not_decode_are_excluded_even_with_the_check_off(
    planted_videos, tmp_path
) -> None:
    # they cannot be embedded; but no video is excluded by the threshold
    _, checked, _ = _run(planted_videos, tmp_path, enabled=False)
    assert sorted(checked.corrupt()) == ["broken-03-avi.png", "broken-04-avi.png", "truncated.mp4"]


def test_frame_count_metadata_still_finds_broken_frames(planted_videos, tmp_path) -> None:
    # use_frame_count_metadata: the listing does not decode; the corruption check then must
    listing, checked, _ = _run(planted_videos, tmp_path, use_frame_count_metadata=True)
    scans = listing.videos()
    assert scans["scenes.mp4"].counted_by == "metadata" and scans["scenes.mp4"].n_frames == 24
    assert scans["broken.avi"].broken == {}  # not decoded yet
    assert checked.videos()["broken.avi"]["n_broken"] == 2
    assert checked.n_corrupt == planted_videos.corrupt_default


def test_relevant_filenames_select_videos(planted_videos, tmp_path) -> None:
    lightly = tmp_path / "lightly"
    (lightly / ".lightly").mkdir(parents=True)
    (lightly / ".lightly" / "relevant.txt").write_text("sub/*\nCLIP.MOV\n")
    listing = list_input(
        str(planted_videos.root),
        str(lightly),
        ".lightly/relevant.txt",
        dataset_type="videos",
    )
    assert listing.n_relevant == 30  # 20 + 10 frames
    assert sorted(listing.filtered()) == [
        "broken.avi",
        "copy.mp4",
        "scenes.mp4",
        "truncated.mp4",
    ]
    assert listing.n_input == 30 + 4  # a filtered video is one sample: it is never opened


def test_a_video_run_lists_only_videos(tmp_path) -> None:
    from thresher.errors import InputError

    write_video(tmp_path / "in" / "a.webm", [(RED, 5)], codec="libvpx")
    listing = list_input(str(tmp_path / "in"), str(tmp_path / "out"), dataset_type="videos")
    assert listing.names() == [f"a-{i}-webm.png" for i in range(5)]
    with pytest.raises(InputError, match="run with --dataset-type videos"):
        list_input(str(tmp_path / "in"), str(tmp_path / "out2"))


def test_fifos_and_links_out_of_input_are_never_opened(planted_videos, tmp_path) -> None:
    import os
    import shutil

    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(planted_videos.root / "CLIP.MOV", inp / "CLIP.MOV")
    os.mkfifo(inp / "pipe.mp4")  # opening it would block the run forever
    outside = tmp_path / "outside.mp4"
    shutil.copy(planted_videos.root / "scenes.mp4", outside)
    (inp / "link.mp4").symlink_to(outside)
    listing = list_input(str(inp), str(tmp_path / "lightly"), dataset_type="videos")
    scans = listing.videos()
    assert scans["pipe.mp4"].error is not None and "FIFO" in scans["pipe.mp4"].error
    assert scans["link.mp4"].error is not None and "outside INPUT" in scans["link.mp4"].error
    assert scans["CLIP.MOV"].n_frames == 10
    checked = corruption_check(listing)
    assert sorted(checked.corrupt()) == ["link.mp4", "pipe.mp4"]

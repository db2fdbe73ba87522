"""A video run end to end: the curate flow on the planted videos of tests/video/videos.py."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.video.videos import PlantedVideos
from thresher.flows import curate
from thresher.storage.video import parse_frame_name

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def video_run(prefect_server, planted_videos: PlantedVideos, tmp_path_factory):
    lightly = tmp_path_factory.mktemp("vout") / "lightly"
    before = _snapshot(planted_videos.root)
    result = curate(
        input=str(planted_videos.root),
        lightly=str(lightly),
        dataset_type="videos",
        # six planted scenes in the kept videos: six picks, one per scene
        selection_config={"n_samples": 6, "strategies": DIVERSITY},
    )
    return result, lightly, lightly / ".lightly" / "runs" / result.run_id, before


def test_every_frame_is_accounted_for_once(video_run, planted_videos: PlantedVideos) -> None:
    result, _, run, _ = video_run
    p = planted_videos
    assert result.sizes == {
        "n_input": p.n_samples,
        "n_filtered": 0,
        "n_corrupt": p.corrupt_default,
        "n_duplicate": p.duplicates,
        "n_removed": p.kept_default - 6,
        "n_selected": 6,
        "n_preselected_datapool": 0,  # earlier picks (docs/datapool.md); none without it
    }
    groups = [
        _lines(run / "filenames" / f"{k}.txt")
        for k in ("selected", "removed", "duplicate", "corrupt", "filtered")
    ]
    everything = [n for names in groups for n in names]
    assert len(everything) == len(set(everything)) == p.n_samples


def test_the_picks_span_the_planted_scenes(video_run, planted_videos: PlantedVideos) -> None:
    _, _, run, _ = video_run
    picked = [parse_frame_name(n) for n in _lines(run / "filenames" / "selected.txt")]
    assert None not in picked
    scenes = {
        i for i, (video, frames) in enumerate(planted_videos.scenes) for v, k in picked
        if v == video and k in frames
    }  # fmt: skip
    assert scenes == set(range(len(planted_videos.scenes))), picked


def test_frame_names_are_lightlys(video_run) -> None:
    _, _, run, _ = video_run
    names = set(
        _lines(run / "filenames" / "selected.txt") + _lines(run / "filenames" / "removed.txt")
    )
    # 24 frames pad to 2 digits, the subfolder stays, the extension keeps its case
    assert "copy-07-mp4.png" in names or "copy-08-mp4.png" in names or "copy-00-mp4.png" in names
    assert any(n.startswith("sub/other-") and n.endswith("-avi.png") for n in names)
    assert any(n.startswith("CLIP-") and n.endswith("-MOV.png") for n in names)
    duplicates = _lines(run / "filenames" / "duplicate.txt")
    assert sorted(duplicates) == [f"scenes-{i:02d}-mp4.png" for i in range(24)]
    corrupt = set(_lines(run / "filenames" / "corrupt.txt"))
    assert corrupt == {f"broken-{i:02d}-avi.png" for i in range(12)} | {"truncated.mp4"}


def test_selected_frames_are_written_as_images(video_run, planted_videos) -> None:
    _, lightly, run, _ = video_run
    selected = _lines(run / "filenames" / "selected.txt")
    for name in selected:
        path = lightly / ".lightly" / "frames" / name
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size == (64, 48)
    # the frame holds the planted scene (MPEG-4 is lossy: roughly its colour)
    video, index = parse_frame_name(selected[0])
    with Image.open(lightly / ".lightly" / "frames" / selected[0]) as img:
        mean = np.asarray(img.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    assert mean.max() > 60, (video, index, mean)


def test_corruption_info_is_per_video_and_per_frame(video_run) -> None:
    _, _, run, _ = video_run
    info = json.loads((run / "corruptness_check_information.json").read_text())
    assert info["videos"]["broken.avi"]["n_broken"] == 2
    assert "corruption_threshold 0.1" in info["videos"]["broken.avi"]["corrupt"]
    assert info["videos"]["truncated.mp4"]["corrupt"].startswith("does not open as a video")
    assert info["corrupt_samples"]["broken-03-avi.png"].startswith("frame does not decode")
    assert info["videos"]["copy.mp4"] == {"n_frames": 24, "n_broken": 0, "corrupt": None}


def test_report_has_video_counts_and_the_timeline(video_run) -> None:
    result, _, run, _ = video_run
    expected = {
        "nInput": 6,
        "nFiltered": 0,
        "nCorrupt": 2,
        "nFrames": 24 + 24 + 20 + 10,
        "nCorruptFrames": 0,
        "nSelectedFrames": 6,
        "nVideosWithSelectedFrames": 3,
    }
    assert result.video_sizes == expected
    report = json.loads((run / "report.json").read_text())
    assert report["generalInformation"]["datasetInformation"]["videoLevelSizes"] == expected
    with Image.open(run / "plots" / "video_sampling_timeline.png") as img:
        assert img.size[0] > 300
    v2 = json.loads((run / "report_v2.json").read_text())
    assert v2["generalInformation"]["datasetInformation"]["videoLevelSizes"] == expected
    # The PDF shows both: the counts as text, the timeline as an image on the same page.
    pdf = str(run / "report.pdf")
    pages = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True)
    page = next(p for p in pages.stdout.split("\f") if "Frames selected" in p)
    number = pages.stdout.split("\f").index(page) + 1
    images = subprocess.run(
        ["pdfimages", "-f", str(number), "-l", str(number), "-list", pdf],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(images.stdout.splitlines()) > 2, "the timeline is not on the Videos page"


def test_input_is_never_written(video_run, planted_videos) -> None:
    _, _, _, before = video_run
    assert _snapshot(planted_videos.root) == before


def test_per_frame_metadata_matches_the_frame_names(
    prefect_server, planted_videos: PlantedVideos, tmp_path: Path
) -> None:
    # Planted: metadata "motion" = 1 for frames 8-15 of copy.mp4 (its green scene), in
    # Lightly's per-frame files .lightly/metadata/copy-<frame>-mp4.json; every other frame has
    # the default 0. THRESHOLD motion > 0.5 then leaves exactly those 8 frames to pick from.
    lightly = tmp_path / "lightly"
    meta = lightly / ".lightly" / "metadata"
    meta.mkdir(parents=True)
    (meta / "schema.json").write_text(
        json.dumps(
            [
                {
                    "name": "motion",
                    "path": "motion",
                    "defaultValue": 0,
                    "valueDataType": "NUMERIC_FLOAT",
                }
            ]
        )
    )
    for i in range(8, 16):
        name = f"copy-{i:02d}-mp4"
        (meta / f"{name}.json").write_text(
            json.dumps({"file_name": f"{name}.png", "type": "frame", "metadata": {"motion": 1}})
        )
    result = curate(
        input=str(planted_videos.root),
        lightly=str(lightly),
        dataset_type="videos",
        selection_config={
            "n_samples": 3,
            "strategies": [
                {
                    "input": {"type": "METADATA", "key": "motion"},
                    "strategy": {"type": "THRESHOLD", "threshold": 0.5, "operation": "BIGGER"},
                },
                *DIVERSITY,
            ],
        },
    )
    run = lightly / ".lightly" / "runs" / result.run_id
    picked = [parse_frame_name(n) for n in _lines(run / "filenames" / "selected.txt")]
    assert len(picked) == 3
    assert all(v == "copy.mp4" and 8 <= k < 16 for v, k in picked), picked

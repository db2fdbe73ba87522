"""Sequence selection (``worker_config.selected_sequence_length``): real runs of the flow.

The planted videos (tests/video/videos.py) keep ``copy.mp4`` (24 frames: red, green, blue
scenes of 8), ``sub/other.avi`` (20: yellow, magenta of 10) and ``CLIP.MOV`` (10, grey). With
L = 5 the candidate sequences are frames 0-4, 5-9, 10-14, 15-19 of the first two (the tail
20-23 of ``copy.mp4`` is too short) and 0-4, 5-9 of ``CLIP.MOV``: ten candidates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.test_cli_errors import assert_one_paragraph, flat, run_cli
from tests.video.videos import PlantedVideos
from thresher.config import load_configs
from thresher.errors import ConfigError
from thresher.flows import curate
from thresher.selection import select, sequences
from thresher.storage.video import parse_frame_name
from thresher.worker.run_one import _artifacts

DIVERSITY = [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def lightly(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("seq") / "lightly"


@pytest.fixture(scope="module")
def seq_run(prefect_server, planted_videos: PlantedVideos, lightly: Path):
    result = curate(
        input=str(planted_videos.root),
        lightly=str(lightly),
        dataset_type="videos",
        worker_config={"selected_sequence_length": 5},
        selection_config={"n_samples": 20, "strategies": DIVERSITY},
    )
    return result, lightly / ".lightly" / "runs" / result.run_id


def _chunks(names: list[str], n: int) -> list[list[str]]:
    return [names[i : i + n] for i in range(0, len(names), n)]


def test_sequences_are_consecutive_frames_of_one_video_spanning_the_scenes(
    seq_run, planted_videos: PlantedVideos
) -> None:
    result, run = seq_run
    selected = _lines(run / "filenames" / "selected.txt")
    assert result.sizes["n_selected"] == len(selected) == 20
    seqs = _chunks(selected, 5)
    touched: list[set[int]] = []
    for seq in seqs:
        parsed = [parse_frame_name(n) for n in seq]
        assert None not in parsed
        videos = {p[0] for p in parsed if p}
        indices = [p[1] for p in parsed if p]
        assert len(videos) == 1, seq
        assert indices == list(range(indices[0], indices[0] + 5)), seq
        assert indices[0] % 5 == 0, seq  # cut from the start of the video (no broken frame)
        video = videos.pop()
        touched.append(
            {
                k
                for k, (v, frames) in enumerate(planted_videos.scenes)
                if v == video and set(indices) & set(frames)
            }
        )
    # four different places: no two sequences cover the same planted scenes
    assert len({frozenset(t) for t in touched}) == 4, touched
    assert len(set().union(*touched)) >= 4, touched


def test_sequence_information_is_lightlys_video_format(seq_run) -> None:
    _, run = seq_run
    info = json.loads((run / "sequence_information.json").read_text())
    selected = _lines(run / "filenames" / "selected.txt")
    assert [e["frame_names"] for e in info] == _chunks(selected, 5)
    for entry in info:
        assert set(entry) == {
            "video_name",
            "frame_names",
            "frame_timestamps_pts",
            "frame_timestamps_sec",
            "frame_indices",
        }
        assert entry["frame_indices"] == [parse_frame_name(n)[1] for n in entry["frame_names"]]
        assert all(parse_frame_name(n)[0] == entry["video_name"] for n in entry["frame_names"])
        # 25 fps: frame k is shown at k / 25 s; pts rise with the index
        assert entry["frame_timestamps_sec"] == pytest.approx(
            [k / 25 for k in entry["frame_indices"]], abs=1e-6
        )
        pts = entry["frame_timestamps_pts"]
        assert all(isinstance(p, int) for p in pts) and pts == sorted(set(pts))


def test_the_platform_worker_uploads_sequence_information(seq_run, lightly: Path) -> None:
    result, _ = seq_run
    found = {a["type"]: a["file_name"] for a in _artifacts(str(lightly), result.run_id)}
    assert found["SEQUENCE_INFORMATION"] == "sequence_information.json"


def test_changing_the_length_reruns_select_only(seq_run, planted_videos, lightly: Path) -> None:
    again = curate(
        input=str(planted_videos.root),
        lightly=str(lightly),
        dataset_type="videos",
        worker_config={"selected_sequence_length": 4},
        selection_config={"n_samples": 20, "strategies": DIVERSITY},
    )
    assert again.cached.get("embed") == "cached" and "select" not in again.cached, again.cached
    run = lightly / ".lightly" / "runs" / again.run_id
    info = json.loads((run / "sequence_information.json").read_text())
    assert len(info) == 5 and all(len(e["frame_names"]) == 4 for e in info)


def test_image_folder_sequences(prefect_server, tmp_path: Path) -> None:
    # folder a: 4 colours x 5 images in name order, plus a tail of 3; folder b: 4 images
    colours = [(220, 20, 20), (20, 200, 20), (20, 20, 220), (230, 230, 20)]
    rng = np.random.default_rng(0)
    root = tmp_path / "input"
    for folder, n in (("a", 23), ("b", 4)):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            img = np.zeros((48, 64, 3), np.uint8) + np.uint8(colours[min(i // 5, 3)])
            img[: 8 * (1 + i // 5)] //= 3  # each colour block has its own stripe too
            img += rng.integers(0, 8, img.shape, dtype=np.uint8)
            Image.fromarray(img).save(root / folder / f"{i:03d}.png")
    result = curate(
        input=str(root),
        lightly=str(tmp_path / "lightly"),
        worker_config={"selected_sequence_length": 5},
        selection_config={"n_samples": 10, "strategies": DIVERSITY},
    )
    run = tmp_path / "lightly" / ".lightly" / "runs" / result.run_id
    selected = _lines(run / "filenames" / "selected.txt")
    info = json.loads((run / "sequence_information.json").read_text())
    assert info == [{"filenames": seq} for seq in _chunks(selected, 5)]
    blocks = {f"a/{5 * b:03d}.png": b for b in range(4)}
    starts = [seq[0] for seq in _chunks(selected, 5)]
    assert len(info) == 2 and all(s in blocks for s in starts), info  # whole colour blocks
    for seq in _chunks(selected, 5):
        first = int(seq[0][2:5])
        assert seq == [f"a/{first + k:03d}.png" for k in range(5)]


def test_plan_skips_broken_frames_and_short_tails() -> None:
    # frames 0..12 of one video, frame 3 broken (not kept): 0-2 is too short, 4-7 and 8-11 are
    # sequences, 12 is a tail
    kept = [f"v-{i:02d}-mp4.png" for i in range(13) if i != 3]
    groups = sequences.plan(kept, 4, videos=True)
    frames = [[parse_frame_name(kept[r])[1] for r in g] for g in groups]
    assert frames == [[4, 5, 6, 7], [8, 9, 10, 11]]
    # images: per folder, in name order, whatever the row order
    names = ["b/2.png", "a/2.png", "a/1.png", "b/1.png", "a/3.png"]
    assert [[names[r] for r in g] for g in sequences.plan(names, 2, videos=False)] == [
        ["a/1.png", "a/2.png"],
        ["b/1.png", "b/2.png"],
    ]


def test_groups_average_embeddings_and_count_the_datapool() -> None:
    x = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 3]]
    members = np.array([[0, 1], [2, 3], [4, 5]])
    out = sequences.group_inputs(
        {"embeddings": x, "filenames": list("abcdef"), "preselected": np.array([2])}, members
    )
    assert np.allclose(np.linalg.norm(out["embeddings"], axis=1), 1)  # re-normalised
    assert np.allclose(out["embeddings"][0], x[0])
    assert out["preselected"].tolist() == [1]
    picks = select({"n_samples": 1}, embeddings=out["embeddings"], preselected=out["preselected"])
    assert sequences.expand(picks, members).tolist() in ([0, 1], [4, 5])


def test_n_samples_must_be_whole_sequences() -> None:
    with pytest.raises(ConfigError) as e:
        load_configs({"selected_sequence_length": 5}, {"n_samples": 12})
    msg = str(e.value)
    assert "selection_config.n_samples" in msg and "worker_config.selected_sequence_length" in msg
    assert "10 or 15" in msg
    load_configs({"selected_sequence_length": 5}, {"n_samples": 15})
    load_configs({"selected_sequence_length": 5}, {"proportion_samples": 0.3})


def test_n_samples_not_whole_sequences_exits_2_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    code, prefect, stderr = run_cli(
        "run", str(tmp_path / "in"), "--n-samples", "12",
        "--worker-config", '{"selected_sequence_length": 5}',
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 2 and not prefect, stderr
    assert_one_paragraph(stderr)
    assert "worker_config.selected_sequence_length" in flat(stderr)


def test_proportion_is_rounded_to_whole_sequences() -> None:
    names = [f"v-{i:02d}-mp4.png" for i in range(40)]  # 8 sequences of 5
    groups = sequences.plan(names, 5, videos=True)
    cfg = load_configs({"selected_sequence_length": 5}, {"proportion_samples": 0.3}).selection
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    picks = select(
        sequences.group_config(cfg, 5), **sequences.group_inputs({"embeddings": x}, groups)
    )
    # 0.3 of 8 sequences = 2.4 -> 2 sequences = 10 frames (0.3 of 40 frames = 12 is not whole)
    assert len(sequences.expand(picks, groups)) == 10


def test_the_timeline_draws_sequences_as_spans(seq_run) -> None:
    from thresher.reports.video_timeline import _runs

    assert _runs((1, 2, 3, 7, 9, 10)) == [(1, 3), (7, 7), (9, 10)]
    _, run = seq_run
    assert (run / "plots" / "video_sampling_timeline.png").stat().st_size > 0


def test_timestamps_of_a_listing_that_did_not_decode(planted_videos: PlantedVideos) -> None:
    from thresher.storage.location import Location
    from thresher.storage.video import read_timestamps, scan_video

    loc = Location(str(planted_videos.root))
    decoded = scan_video(loc, "copy.mp4")
    counted = scan_video(loc, "copy.mp4", decode=False)  # use_frame_count_metadata
    assert counted.counted_by == "metadata" and not counted.pts
    assert counted.timestamps(10)[1] == pytest.approx(10 / 25)  # from the frame rate
    again = read_timestamps(loc, counted)
    assert [again.timestamps(i) for i in range(24)] == [decoded.timestamps(i) for i in range(24)]
    assert decoded.timestamps(10) == (decoded.pts[10], pytest.approx(10 / 25))

"""Fixtures of the video tests: the planted folder of tiny real videos (tests/video/videos.py)."""

import pytest

from tests.video.videos import PlantedVideos, make_videos


@pytest.fixture(scope="session")
def planted_videos(tmp_path_factory) -> PlantedVideos:
    """The planted videos, written once per session (read-only by every test)."""
    return make_videos(tmp_path_factory.mktemp("videos") / "input")

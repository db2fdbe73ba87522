"""Tiny real videos written with PyAV, with the planted answer beside them.

The folder :func:`make_videos` writes (64x48 pixels, 25 fps):

========================  =====================================================================
``scenes.mp4``            24 frames (MPEG-4): 8 red, 8 green, 8 blue (three planted scenes)
``sub/other.avi``         20 frames (MPEG-4 in AVI): 10 yellow, 10 magenta (two scenes)
``copy.mp4``              the bytes of ``scenes.mp4``: an exact duplicate video
``CLIP.MOV``              10 frames (H.264), grey: the extension in upper case
``broken.avi``            12 frames, white; the data of frames 3 and 4 overwritten with 0xFF:
                          those two do not decode, 2 of 12 = 16.7 % broken
``truncated.mp4``         the first half of an MP4 whose index is at the end: does not open
``notes.txt``             not a video: never listed
========================  =====================================================================

Worked out by hand, with the default ``corruption_threshold`` 0.1 (16.7 % >= 10 %, so
``broken.avi`` is excluded whole): samples = 24 + 20 + 24 + 10 + 12 frames + 1 for
``truncated.mp4`` = 91; corrupt = 12 + 1 = 13; duplicates = the 24 frames of ``copy.mp4``
(``copy`` sorts before ``scenes``, so ``copy.mp4``'s frames stay and ``scenes.mp4``'s are the
duplicates); kept = 24 + 20 + 10 = 54. With a threshold of 0.5 only frames 3 and 4 of
``broken.avi`` are corrupt: corrupt = 2 + 1 = 3, kept = 64.

Each scene has its colour and its own stripes (8, 16 or 24 pixels apart), and a 2x2 dot
moves with the frame index, so frames within a scene differ a little and across scenes a lot.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

W, H = 64, 48
RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)
YELLOW, MAGENTA, GREY, WHITE = (230, 230, 20), (220, 20, 220), (128, 128, 128), (240, 240, 240)


def write_video(
    path: Path, scenes: list[tuple[tuple[int, int, int], int]], codec: str = "mpeg4"
) -> None:
    """Write ``scenes`` (colour, frame count) as a video at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        index = 0
        for scene, (colour, n) in enumerate(scenes):
            for _ in range(n):
                img = np.zeros((H, W, 3), np.uint8)
                img[:] = colour
                # each scene has its own shape: stripes 8, 16, 24 px apart, in the inverse colour
                period = 8 * (scene + 1)
                img[:, (np.arange(W) % period) < period // 2] //= 3
                # a 2x2 dot moves with the frame index: frames of a scene differ a little
                y, x = (index * 2) % (H - 2), (index * 3) % (W - 2)
                img[y : y + 2, x : x + 2] = 255
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    container.mux(packet)
                index += 1
        for packet in stream.encode():
            container.mux(packet)


def damage_avi_frames(path: Path, frames: tuple[int, ...]) -> None:
    """Overwrite the data of ``frames`` (their ``00dc`` chunks) in the AVI at ``path`` with 0xFF."""
    data = bytearray(path.read_bytes())
    movi = data.find(b"movi")
    chunks = [i for i in range(movi, len(data) - 8) if data[i : i + 4] == b"00dc"]
    for k in frames:
        i = chunks[k]
        (size,) = struct.unpack("<I", data[i + 4 : i + 8])
        data[i + 8 : i + 8 + size] = b"\xff" * size
    path.write_bytes(bytes(data))


@dataclass(frozen=True)
class PlantedVideos:
    """The folder and its planted answer (see the module docstring)."""

    root: Path
    n_samples: int = 91
    corrupt_default: int = 13
    duplicates: int = 24
    kept_default: int = 54
    corrupt_at_half: int = 3
    kept_at_half: int = 64
    #: frame index ranges of the planted scenes, per video that is kept
    scenes: tuple[tuple[str, range], ...] = (
        ("copy.mp4", range(0, 8)),
        ("copy.mp4", range(8, 16)),
        ("copy.mp4", range(16, 24)),
        ("sub/other.avi", range(0, 10)),
        ("sub/other.avi", range(10, 20)),
        ("CLIP.MOV", range(0, 10)),
    )


def make_videos(root: Path) -> PlantedVideos:
    """Write the planted folder at ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_video(root / "scenes.mp4", [(RED, 8), (GREEN, 8), (BLUE, 8)])
    write_video(root / "sub" / "other.avi", [(YELLOW, 10), (MAGENTA, 10)])
    shutil.copy(root / "scenes.mp4", root / "copy.mp4")
    write_video(root / "CLIP.MOV", [(GREY, 10)], codec="h264")
    write_video(root / "broken.avi", [(WHITE, 12)])
    damage_avi_frames(root / "broken.avi", (3, 4))
    whole = root / "whole.mp4"
    write_video(whole, [(RED, 10)])
    data = whole.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    whole.unlink()
    (root / "notes.txt").write_text("not a video\n")
    return PlantedVideos(root)

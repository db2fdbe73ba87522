"""Video throughput: decoding alone versus a whole ``thresher run`` (issue 13 item 8).

    .venv/bin/python benchmarks/video.py [--seconds-1080 10] [--seconds-480 30] [--fps 30]

Writes two H.264 clips with PyAV in a temporary folder, deterministically: a 1920x1080 and an
854x480 clip at ``--fps``, each made of planted scenes (a new colour, stripe pattern and
moving shapes every 4 s), so the content is not trivial to compress or to embed. Then, per
clip, in the same run (the machine is noisy, so every figure comes from this run):

- decode only, PyAV: every frame decoded in one process (``thread_type = AUTO``, as thresher
  opens videos), not converted;
- decode only, thresher's ``FrameReader``: every frame read in order as an RGB image (what the
  embed stage's decode workers do before resizing);
- end to end: ``thresher run <folder with the clip> --dataset-type videos --n-samples 50`` in a
  fresh process (start-up included; printed with and without the report's ``startup``
  seconds), with a fresh LIGHTLY folder, so nothing comes from the stage cache;
- peak memory of the end-to-end run: the maximum RSS of the process and its waited-for
  children (``wait4``), and the run's own ``memlog.txt`` peak (own RSS + children's USS).

Prints the chosen clip lengths, then a table with frames/s (the embed stage's too: decode,
resize and model per frame, without the fixed costs) and the ratio end-to-end / decode-only
(PyAV). The defaults (10 s of 1080p, 30 s of 480p) keep the whole benchmark near 10 minutes
on a 2-core machine; pass longer clips where there is time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

SIZES = {"1080p": (1920, 1080), "480p": (854, 480)}
SCENE_S = 4  # a planted scene change every 4 s


def _scene_base(w: int, h: int, scene: int) -> np.ndarray:
    """The still part of one scene: a colour gradient with its own stripes (deterministic)."""
    rng = np.random.default_rng(scene)
    colour = rng.integers(40, 216, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    grad = ((xx / w)[..., None] * colour + (yy / h)[..., None] * (255 - colour)) / 2
    period = int(rng.integers(16, 96))
    angle = rng.random() * np.pi
    stripes = (np.cos(angle) * xx + np.sin(angle) * yy) % period < period / 2
    img = grad + stripes[..., None] * 60
    return np.clip(img, 0, 255).astype(np.uint8)


def write_clip(path: Path, w: int, h: int, n_frames: int, fps: int) -> None:
    """An H.264 clip of planted scenes: gradient + stripes, two shapes moving with the frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        base = None
        for i in range(n_frames):
            scene = i // (SCENE_S * fps)
            if i % (SCENE_S * fps) == 0:
                base = _scene_base(w, h, scene)
            assert base is not None
            img = np.roll(base, (i * 3) % w, axis=1)  # panning
            s = h // 6
            y, x = (i * 7) % (h - s), (i * 11) % (w - s)
            img[y : y + s, x : x + s] = (255 - 40 * (scene % 5), 30 * (scene % 7), 200)
            y2, x2 = (h - s) - (i * 5) % (h - s), (i * 13) % (w - s)
            img[y2 : y2 + s // 2, x2 : x2 + s // 2] = 20
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_pyav(path: Path) -> int:
    """Decode every frame with PyAV, as thresher opens videos; returns the frame count."""
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _frame in container.decode(stream):
            n += 1
    return n


def decode_frame_reader(path: Path, n_frames: int) -> int:
    """Read every frame in order through thresher's FrameReader (RGB PIL images)."""
    from thresher.storage.location import Location
    from thresher.storage.video import FrameReader

    reader = FrameReader(Location(str(path.parent)))
    try:
        for i in range(n_frames):
            reader.read(path.name, i)
    finally:
        reader.close()
    return n_frames


def end_to_end(folder: Path, work: Path) -> dict[str, float]:
    """``thresher run FOLDER --dataset-type videos --n-samples 50`` in a fresh process."""
    lightly = work / f"lightly-{folder.name}"
    argv = [sys.executable, "-m", "thresher", "run", str(folder), "--lightly", str(lightly)]
    argv += ["--dataset-type", "videos", "--n-samples", "50"]
    env = dict(os.environ, THRESHER_PROGRESS="0")
    log = work / f"{folder.name}.log"
    t0 = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT)
        # wait4, not wait(): it also gives the child's resource usage (max RSS)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(log.read_text()[-3000:])
    run = next((lightly / ".lightly" / "runs").iterdir())
    secs = json.loads((run / "report.json").read_text())["stageSeconds"]
    memlog = (run / "memlog.txt").read_text().splitlines()
    peak = next(float(x.split("\t")[1]) for x in memlog if x.startswith("# peak_total_mb"))
    shutil.rmtree(lightly, ignore_errors=True)
    maxrss = usage.ru_maxrss / 1024  # KiB on Linux
    stages = ", ".join(f"{k} {v:.1f}" for k, v in secs.items() if v >= 0.05)
    print(f"  thresher run stage seconds: {stages}", flush=True)
    return {
        "wall": wall,
        "startup": float(secs.get("startup", 0.0)),
        "maxrss": maxrss,
        "peak": peak,
        "embed": float(secs.get("embed", 0.0)),
    }


def _timed(fn, *args) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = fn(*args)
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds-1080", type=float, default=10.0)
    ap.add_argument("--seconds-480", type=float, default=30.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--keep", help="write the clips here and keep them")
    args = ap.parse_args()
    seconds = {"1080p": args.seconds_1080, "480p": args.seconds_480}
    work = Path(args.keep or tempfile.mkdtemp(prefix="thresher-bench-video-"))
    rows = []
    try:
        for label, (w, h) in SIZES.items():
            n = int(seconds[label] * args.fps)
            folder = work / f"clip-{label}"
            folder.mkdir(parents=True, exist_ok=True)
            clip = folder / f"{label}.mp4"
            t0 = time.perf_counter()
            if not clip.exists():
                write_clip(clip, w, h, n, args.fps)
            print(
                f"{label}: {w}x{h}, {seconds[label]:g} s at {args.fps} fps = {n} frames, "
                f"{SCENE_S} s scenes, H.264 {clip.stat().st_size / 1e6:.1f} MB "
                f"(written in {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            n_dec, t_dec = _timed(decode_pyav, clip)
            assert n_dec == n, (n_dec, n)
            _, t_reader = _timed(decode_frame_reader, clip, n)
            e2e = end_to_end(folder, work)
            rows.append((label, n, t_dec, t_reader, e2e))
            print(
                f"  decode {t_dec:.1f} s, FrameReader {t_reader:.1f} s, "
                f"thresher run {e2e['wall']:.1f} s (start-up {e2e['startup']:.1f} s)",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    head = (
        f"{'clip':6} {'frames':>6} {'decode f/s':>10} {'reader f/s':>10} {'e2e f/s':>8} "
        f"{'e2e-startup f/s':>15} {'embed f/s':>9} {'e2e/decode':>10} {'peak RSS MB':>11} "
        f"{'memlog MB':>9}"
    )
    print()
    print(head)
    for label, n, t_dec, t_reader, e in rows:
        e2e_fps = n / e["wall"]
        run_fps = n / max(e["wall"] - e["startup"], 1e-9)
        print(
            f"{label:6} {n:6d} {n / t_dec:10.1f} {n / t_reader:10.1f} {e2e_fps:8.1f} "
            f"{run_fps:15.1f} {n / max(e['embed'], 1e-9):9.1f} {e2e_fps / (n / t_dec):10.3f} "
            f"{e['maxrss']:11.0f} {e['peak']:9.0f}"
        )
    print(
        "\ne2e/decode = end-to-end frames/s (start-up included) / PyAV decode-only frames/s; "
        "embed f/s = frames / the embed stage's seconds (decode + resize + model); "
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()

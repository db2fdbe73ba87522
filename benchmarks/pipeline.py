"""End-to-end pipeline benchmark against two baselines measured in the same run.

    .venv/bin/python benchmarks/pipeline.py [--n 2000] [--size 256] [--keep]

Makes N 256x256 JPEGs from Fashion-MNIST (Debian's dataset-fashion-mnist; upscaled, real
content), then measures:

- decode-only: open, convert to RGB and resize the same files to the model's input size, on all
  cores (a process pool), the least any pipeline must spend reading the images;
- forward-only: random tensors of the model's input size through the default model
  (EfficientNet-Lite0, 224 px), with PyTorch (how thresher ran before issue 11) and with
  OpenVINO fp32 (the default backend on a CPU), the least any pipeline must spend embedding;
- the real command end to end, ``thresher run INPUT --n-samples N/10`` in a fresh process
  (its parallel start-up, Prefect's embedded API, the stages, the report and the writes), with
  the seconds of each stage (the run's report.json) and its peak memory (own RSS + children
  USS, Prefect's API server included: the run's memlog.txt).

The run uses a Prefect home of its own whose database a small warm-up run creates first (as
on a user's machine after the first run; the warm-up is timed on its own), and the usual
``$THRESHER_HOME``, where the forward-only baseline has cached the converted model.

Targets (issue 11), printed as PASS/FAIL: end to end >= 100 images/s at 1,500 and >= 150 at
10,000 on 2 cores, start-up included, with the default (fp32) backend; <= 1.3 x (decode-only
+ OpenVINO forward-only) at 10,000; peak memory of the 10,000-image run <= 1.5 GB; with
``--int8`` (``embedding_precision: int8``), >= 250 images/s at 10,000 (the run states its
measured fidelity in its report). Other jobs on a shared machine skew every figure: the load
average is printed beside them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from thresher.models.backends import cpu_description

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def make_jpegs(root: Path, n: int, size: int) -> list[str]:
    from PIL import Image

    if not FASHION.exists():
        sys.exit(f"{FASHION} is missing: apt-get install dataset-fashion-mnist")
    with gzip.open(FASHION) as fh:
        images = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        img = Image.fromarray(images[i % len(images)]).resize(
            (size, size), Image.Resampling.BILINEAR
        )
        tint = rng.uniform(0.7, 1.0, 3)
        rgb = (np.asarray(img, np.float32)[..., None] * tint).astype(np.uint8)
        name = f"shard_{i // 500:03d}/img_{i:06d}.jpg"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(root / name, quality=90)
        names.append(name)
    return names


def _decode(args: tuple[str, int]) -> int:
    from PIL import Image

    path, side = args
    with Image.open(path) as im:
        im = im.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
        return im.size[0]


def decode_only(root: Path, names: list[str], side: int) -> float:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_decode, [(str(root / n), side) for n in names], chunksize=32))
    return time.perf_counter() - t0


def forward_only(n: int, batch: int, backend: str = "torch") -> tuple[float, int]:
    import torch

    from thresher.models import zoo
    from thresher.models.backends import make_runner
    from thresher.models.inference import cpu_count

    model = zoo.create("efficientnet-lite0")
    side = zoo.spec("efficientnet-lite0").input_size
    run = make_runner(model, side, backend, threads=cpu_count())  # type: ignore[arg-type]
    x = torch.randn(batch, 3, side, side)
    run(x[:2])  # warm-up (OpenVINO: the conversion is cached under $THRESHER_HOME)
    return _timed_batches(run, x, n, batch), side


def _timed_batches(run: Any, x: Any, n: int, batch: int) -> float:
    """Seconds for ``n`` rows of ``x`` through ``run``, ``batch`` at a time."""
    t0 = time.perf_counter()
    done = 0
    while done < n:
        b = min(batch, n - done)
        run(x[:b])
        done += b
    return time.perf_counter() - t0


def int8_forward_only(n: int, batch: int) -> float:
    """Seconds for ``n`` random uint8 images through the newest int8 model, as a run feeds it."""
    from thresher.models.backends import OpenVINORunner, cpu_count, thresher_home

    xml = max(
        (thresher_home() / "models" / "openvino").glob("int8-*/model.xml"),
        key=lambda p: p.stat().st_mtime,
    )
    from thresher.models import zoo

    spec = zoo.spec("efficientnet-lite0")
    side = spec.input_size
    run = OpenVINORunner(None, side, cpu_count(), xml=xml, pixels=(spec.mean, spec.std))
    x = np.random.default_rng(0).integers(0, 256, (batch, 3, side, side), dtype=np.uint8)
    run(x[:2])
    return _timed_batches(run, x, n, batch)


TARGET_RATE = {1500: 100.0, 10000: 150.0}  # images/s end to end, start-up included
TARGET_RATE_INT8 = {10000: 250.0}  # with --int8 (issue 11: at its stated fidelity)
TARGET_RATIO = 1.3  # end to end / (decode-only + OpenVINO forward-only), at 10,000
TARGET_PEAK_MB = 1536.0  # at 10,000


def load() -> str:
    """The 1-minute load average, for the line it stands beside."""
    return f"load {os.getloadavg()[0]:.1f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def thresher_run(
    inp: Path, lightly: Path, n: int, worker_config: str = ""
) -> tuple[float, dict[str, float], float, str]:
    """``thresher run INPUT --n-samples N/10`` in a fresh process.

    Returns:
        Wall seconds, seconds per stage, peak MB, and the report's description of the model
        (with int8, its fidelity or its fallback to fp32).
    """
    argv = [sys.executable, "-m", "thresher", "run", str(inp), "--lightly", str(lightly)]
    argv += ["--n-samples", str(max(1, n // 10))]
    if worker_config:
        argv += ["--worker-config", worker_config]
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"thresher run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    run = next((lightly / ".lightly" / "runs").iterdir())
    report = json.loads((run / "report.json").read_text())
    peak = 0.0
    for line in (run / "memlog.txt").read_text().splitlines():
        if line.startswith("# peak_total_mb"):
            peak = float(line.split()[-1])
    return (
        wall,
        report["stageSeconds"],
        peak,
        str(report["generalInformation"]["runInformation"].get("modelDescription", "")),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=32, help="batch size of the forward baseline")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--skip-baselines", action="store_true", help="only the command")
    p.add_argument(
        "--int8",
        action="store_true",
        help="run with embedding_precision int8 (a first int8 run on the same images, timed on "
        "its own, quantizes and caches the model; the second is measured)",
    )
    p.add_argument(
        "--torch-n",
        type=int,
        default=1500,
        help="images for the PyTorch forward-only baseline (its rate is what counts; the "
        "time is scaled to N): it is slow, and not in the targets",
    )
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("THRESHER_PROGRESS", "0")
    work = Path(tempfile.mkdtemp(prefix="thresher-bench-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect")  # no cache hits from earlier runs
    try:
        inp = work / "input"
        t0 = time.perf_counter()
        names = make_jpegs(inp, args.n, args.size)
        print(
            f"made {len(names)} {args.size}x{args.size} JPEGs in {time.perf_counter() - t0:.1f} s"
            f"; {cpu_description()}"
        )

        dec_s = fwd_s = ov_s = i8_s = 0.0
        if not args.skip_baselines:
            torch_n = min(args.n, args.torch_n)
            fwd_s, side = forward_only(torch_n, args.batch)
            fwd_s *= args.n / torch_n
            scaled = f", timed on {torch_n} and scaled" if torch_n < args.n else ""
            print(
                f"baseline forward-only: {fwd_s:7.1f} s  {args.n / fwd_s:7.1f} img/s  "
                f"(batch {args.batch}, {side} px, PyTorch{scaled})  [{load()}]"
            )
            ov_s, _ = forward_only(args.n, args.batch, "openvino")
            print(
                f"baseline forward-only: {ov_s:7.1f} s  {args.n / ov_s:7.1f} img/s  "
                f"(batch {args.batch}, {side} px, OpenVINO fp32, the default on a CPU)  [{load()}]"
            )
            dec_s = decode_only(inp, names, side)
            print(
                f"baseline decode-only : {dec_s:7.1f} s  {args.n / dec_s:7.1f} img/s  "
                f"({os.cpu_count()} processes)  [{load()}]"
            )

        warm = work / "warm-input"
        make_jpegs(warm, 20, args.size)
        warm_s, *_ = thresher_run(warm, work / "warm-lightly", 20)
        print(f"\nwarm-up run (20 images; creates Prefect's database): {warm_s:.1f} s  [{load()}]")

        cfg = json.dumps({"embedding_precision": "int8"}) if args.int8 else ""
        if args.int8:
            cal_s, *_ = thresher_run(inp, work / "calibrate-lightly", args.n, cfg)
            print(f"int8 calibration run (quantizes once, cached): {cal_s:.1f} s  [{load()}]")
            if not args.skip_baselines:
                i8_s = int8_forward_only(args.n, args.batch)
                print(
                    f"baseline forward-only: {i8_s:7.1f} s  {args.n / i8_s:7.1f} img/s  "
                    f"(batch {args.batch}, uint8 pixels, OpenVINO int8: the run's model)  "
                    f"[{load()}]"
                )
        e2e, stages, peak, described = thresher_run(inp, work / "lightly", args.n, cfg)
        what = "int8" if args.int8 else "fp32 (the default)"
        print(
            f"thresher run, {args.n} images, --n-samples {max(1, args.n // 10)}, {what}:  "
            f"[{load()}]"
        )
        for stage, secs in stages.items():
            rate = f"{args.n / secs:8.1f} img/s" if secs > 0 and stage != "startup" else ""
            print(f"  {stage:<18} {secs:7.2f} s {rate}")
        stage_sum = sum(v for k, v in stages.items() if k != "startup")
        print(f"  {'stages total':<18} {stage_sum:7.2f} s {args.n / stage_sum:8.1f} img/s")
        after = e2e - stages.get("startup", 0.0) - stage_sum
        # report.json is written inside the report stage: its PDF, write_results, the flow's
        # end in Prefect and the command's exit come after the times it can hold.
        print(f"  {'after report.json':<18} {after:7.2f} s  (report PDF, write_results, exit)")
        rate = args.n / e2e
        print(f"  {'end to end':<18} {e2e:7.2f} s {rate:8.1f} img/s  (the whole command)")
        print(f"  peak memory (own RSS + children USS, incl. Prefect's API server): {peak:.0f} MB")
        for part in described.split("; ") if args.int8 else []:  # its fidelity, or its fallback
            if "int8" in part:
                print(f"  {part}")

        print("\ntargets (issue 11):")
        target = (TARGET_RATE_INT8 if args.int8 else TARGET_RATE).get(args.n)
        if target is None:
            print(f"  end to end: {rate:.1f} img/s (targets are set at {sorted(TARGET_RATE)})")
        else:
            print(f"  {verdict(rate >= target)} end to end {rate:.1f} img/s >= {target:.0f}")
        # The run's own model: int8's forward pass under --int8 (the 1.3 target is set for the
        # default fp32 run, so the int8 ratio is shown without a verdict).
        model_s, model = (i8_s, "int8") if args.int8 else (ov_s, "OpenVINO")
        base = dec_s + model_s
        if base and model_s:
            ratio = e2e / base
            line = (
                f"end to end / (decode-only + {model} forward-only) = {e2e:.1f} / {base:.1f} "
                f"= {ratio:.2f}"
            )
            if args.int8:
                print(f"  {line} (the <= {TARGET_RATIO} target is the fp32 run's)")
            elif args.n == 10000:
                print(f"  {verdict(ratio <= TARGET_RATIO)} {line} <= {TARGET_RATIO}")
            else:
                print(f"  {line} (target <= {TARGET_RATIO} at 10,000)")
            print(f"  OpenVINO / PyTorch forward-only speed-up = {fwd_s / ov_s:.2f}")
        if args.n == 10000:
            print(f"  {verdict(peak <= TARGET_PEAK_MB)} peak memory {peak:.0f} MB <= 1.5 GB")
        else:
            print(f"  peak memory {peak:.0f} MB (target <= 1.5 GB at 10,000)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

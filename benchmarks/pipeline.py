"""End-to-end pipeline benchmark against two baselines measured in the same run.

    .venv/bin/python benchmarks/pipeline.py [--n 2000] [--size 256] [--keep]

Makes N 256x256 JPEGs from Fashion-MNIST (Debian's dataset-fashion-mnist; upscaled, real
content), then measures:

- decode-only: open, convert to RGB and resize the same files to the model's input size, on all
  cores (a process pool), the least any pipeline must spend reading the images;
- forward-only: random tensors of the model's input size through the default model
  (EfficientNet-Lite0, 224 px), with PyTorch (how thresher ran before issue 11) and with
  OpenVINO fp32 (the default backend on a CPU), the least any pipeline must spend embedding;
- the curate flow end to end (Prefect's ephemeral API), with images/s per stage and peak memory
  (own RSS + children USS, from memlog.txt).

Targets (issue 11): end to end >= 100 images/s at 1,500 and >= 150 at 10,000 on 2 cores, and
<= 1.3 x (decode-only + OpenVINO forward-only) at 10,000; peak memory <= 1.5 GB at 10k.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

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
    t0 = time.perf_counter()
    done = 0
    while done < n:
        b = min(batch, n - done)
        run(x[:b])
        done += b
    return time.perf_counter() - t0, side


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=32, help="batch size of the forward baseline")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument(
        "--skip-baselines",
        action="store_true",
        help="only the flow, in a fresh process: the honest peak-memory figure",
    )
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("THRESHER_PROGRESS", "0")
    work = Path(tempfile.mkdtemp(prefix="thresher-bench-"))
    prefect_home = work / "prefect"
    os.environ["PREFECT_HOME"] = str(prefect_home)  # fresh: no cache hits from earlier runs
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    try:
        inp = work / "input"
        t0 = time.perf_counter()
        names = make_jpegs(inp, args.n, args.size)
        print(
            f"made {len(names)} {args.size}x{args.size} JPEGs in {time.perf_counter() - t0:.1f} s"
        )

        dec_s = fwd_s = ov_s = 0.0
        if not args.skip_baselines:
            fwd_s, side = forward_only(args.n, args.batch)
            ov_s, _ = forward_only(args.n, args.batch, "openvino")
            dec_s = decode_only(inp, names, side)
            print(
                f"baseline decode-only : {dec_s:7.1f} s  {args.n / dec_s:7.1f} img/s  "
                f"({os.cpu_count()} processes)"
            )
            print(
                f"baseline forward-only: {fwd_s:7.1f} s  {args.n / fwd_s:7.1f} img/s  "
                f"(batch {args.batch}, {side} px, PyTorch)"
            )
            print(
                f"baseline forward-only: {ov_s:7.1f} s  {args.n / ov_s:7.1f} img/s  "
                f"(batch {args.batch}, {side} px, OpenVINO fp32, the default on a CPU)"
            )

        from thresher.flows import curate

        t0 = time.perf_counter()
        result = curate(
            input=str(inp),
            lightly=str(work / "lightly"),
            selection_config={"n_samples": max(1, args.n // 10)},
        )
        e2e = time.perf_counter() - t0
        run = work / "lightly" / ".lightly" / "runs" / result.run_id
        stages = json.loads((run / "report.json").read_text())["stageSeconds"]
        print(f"\ncurate flow, {args.n} images, n_samples={args.n // 10}:")
        for stage, secs in stages.items():
            rate = f"{args.n / secs:8.1f} img/s" if secs > 0 else ""
            print(f"  {stage:<18} {secs:7.2f} s {rate}")
        stage_sum = sum(stages.values())
        print(f"  {'stages total':<18} {stage_sum:7.2f} s {args.n / stage_sum:8.1f} img/s")
        print(
            f"  {'end to end':<18} {e2e:7.2f} s {args.n / e2e:8.1f} img/s  (incl. Prefect start, report, writes)"
        )
        base = dec_s + ov_s if not args.skip_baselines else 0.0
        if base:
            print(
                f"\nratio end-to-end / (decode-only + OpenVINO forward-only) = {e2e:.1f} / "
                f"{base:.1f} = {e2e / base:.2f}  (target <= 1.3 at 10k)"
            )
            print(
                f"ratio stages / (decode-only + OpenVINO forward-only)     = {stage_sum / base:.2f}"
            )
            print(f"ratio OpenVINO / PyTorch forward-only = {fwd_s / ov_s:.2f}")
        print(
            f"peak memory (own RSS + children USS, incl. Prefect's API server): "
            f"{result.peak_memory_mb:.0f} MB  (target < 2048 MB at 10k)"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

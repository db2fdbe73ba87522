"""A million-sample run in bounded memory (issue 11, item 5).

    .venv/bin/python benchmarks/scale.py [--n 1000000] [--dim 1280] [--samples 10000]
    .venv/bin/python benchmarks/scale.py --n 100000           # quick
    .venv/bin/python benchmarks/scale.py --overlap 50000     # PCA-128 vs full-dim DIVERSITY picks

Generates (once, cached under ``/tmp/thresher-scale/<n>x<dim>``) N tiny 8x8 PNGs in 1,000
folders (1 % exact duplicates of earlier files, 1 in 10,000 corrupt) and an ``N x dim`` float32
embeddings file in thresher's ``.npy`` + ``.filenames.txt`` format (1,000 clusters in a 64-dim
latent space mapped to ``dim`` dims, plus isotropic noise, and 1 row in 200 a near duplicate
of the row before it: not white noise), then runs the
real ``curate()`` flow in a fresh process with ``worker_config.embeddings`` pointing at it and
DIVERSITY ``n_samples``. It prints files/s for listing, the corruption check and dedupe, the
selection seconds, the peak memory (memlog.txt: own RSS + children USS; and the process's
``ru_maxrss``) and PASS/FAIL against peak <= 3 GB and selection <= 120 s.

``--overlap M`` instead measures, on the first M rows, how many of DIVERSITY's picks on the
PCA-reduced rows (what the select stage uses above its in-memory bound) are also picked on the
full rows, and the coverage radius (largest distance of a row to its nearest pick, in the full
space) of both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from thresher.config.worker import NEAR_DUPLICATE_THRESHOLD

ROOT = Path("/tmp/thresher-scale")
PER_DIR = 1000
LATENT = 64
CLUSTERS = 1000


def _name(i: int) -> str:
    return f"d{i // PER_DIR:04d}/img_{i:07d}.png"


def _make_dir(args: tuple[str, int, int]) -> int:
    """Write the PNGs of one folder (rows ``start`` to ``stop``)."""
    import io

    from PIL import Image

    root, start, stop = args
    rng = np.random.default_rng(start)
    folder = Path(root) / _name(start).split("/")[0]
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[int, bytes] = {}
    for i in range(start, stop):
        if i % 100 == 99 and i - 50 >= start:  # 1 %: an exact copy of a file 50 rows back
            data = made[i - 50]
        else:
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
            data = buf.getvalue()
            if i % 10_000 == 5_000:  # 1 in 10,000: truncated, so the check finds it corrupt
                data = data[:20]
        made[i] = data
        (folder / _name(i).split("/")[1]).write_bytes(data)
    return stop - start


#: Isotropic noise of the generated rows, against clusters of spread 2 and 1 in 64 dimensions.
NOISE = 1.5


def _rows(a: int, b: int, dim: int, r: np.random.Generator, noise: float) -> np.ndarray:
    """Rows ``a`` to ``b`` of the generated embeddings (float32)."""
    rng = np.random.default_rng(12345)
    centers = rng.standard_normal((CLUSTERS, LATENT), dtype=np.float32) * 2.0
    mix = rng.standard_normal((LATENT, dim), dtype=np.float32) / np.sqrt(LATENT)
    z = centers[r.integers(0, CLUSTERS, b - a)]
    z += r.standard_normal((b - a, LATENT), dtype=np.float32)
    x = z @ mix
    x += r.standard_normal((b - a, dim), dtype=np.float32) * np.float32(noise)
    # 1 in 200 rows: a near duplicate of the row before (cosine distance ~0.001)
    near = np.arange(a, b)
    near = near[(near % 200 == 7) & (near > a)] - a
    x[near] = x[near - 1] + r.standard_normal((near.size, dim), dtype=np.float32) * 0.05
    return x


def _make_rows(args: tuple[str, int, int, int, int]) -> None:
    """Write rows ``start`` to ``stop`` of the embeddings into the .npy at ``path``."""
    path, start, stop, dim, header = args
    r = np.random.default_rng(start)
    with open(path, "r+b") as fh:
        fh.seek(header + start * dim * 4)
        for a in range(start, stop, 8192):
            x = _rows(a, min(a + 8192, stop), dim, r, NOISE)
            fh.write(np.ascontiguousarray(x, dtype="<f4").tobytes())


def generate(n: int, dim: int, workers: int) -> Path:
    """The cached data set for ``n`` x ``dim`` (made if missing); its folder."""
    base = ROOT / f"{n}x{dim}"
    done = base / "DONE-v2"  # v2: wider clusters (a nearest neighbour ~0.4 away in cosine)
    if done.exists():
        print(f"data: cached in {base}")
        return base
    inp, emb_dir = base / "input", base / "lightly" / ".lightly" / "embeddings"
    if not (base / "PNGS").exists():
        shutil.rmtree(base, ignore_errors=True)
        inp.mkdir(parents=True)
        t0 = time.perf_counter()
        jobs = [(str(inp), s, min(s + PER_DIR, n)) for s in range(0, n, PER_DIR)]
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_make_dir, jobs, chunksize=4):
                pass
        (base / "PNGS").write_text("ok\n")
        print(f"data: {n} PNGs in {time.perf_counter() - t0:.0f} s")
    emb_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    npy = emb_dir / "scale.npy"
    with open(npy, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
        )
        header = fh.tell()
        fh.truncate(header + n * dim * 4)
    step = -(-n // (workers * 4))
    rows = [(str(npy), s, min(s + step, n), dim, header) for s in range(0, n, step)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_make_rows, rows))
    (emb_dir / "scale.filenames.txt").write_text("".join(_name(i) + "\n" for i in range(n)))
    print(f"data: {n} x {dim} float32 embeddings in {time.perf_counter() - t0:.0f} s")
    done.write_text("ok\n")
    return base


def _run_child(base: str, samples: int, out: str) -> None:
    """In a fresh process: the curate flow; write the figures to ``out``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("THRESHER_PROGRESS", "0")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from thresher.flows import curate

    lightly = Path(base) / "lightly"
    t0 = time.perf_counter()
    result = curate(
        input=str(Path(base) / "input"),
        lightly=str(lightly),
        worker_config={  # type: ignore[arg-type]
            "embeddings": "scale.npy",
            "near_duplicate_threshold": float(os.environ.get("SCALE_NEAR_THRESHOLD", "0.15")),
        },
        selection_config={  # type: ignore[arg-type]
            "n_samples": samples,
            "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
        },
    )
    wall = time.perf_counter() - t0
    run = lightly / ".lightly" / "runs" / result.run_id
    report = json.loads((run / "report.json").read_text())
    Path(out).write_text(
        json.dumps(
            {
                "wall_s": wall,
                "stages": report.get("stageSeconds", {}),
                "peak_memlog_mb": result.peak_memory_mb,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "run": str(run),
                "counts": {k: v for k, v in report.items() if k.startswith("n")},
            }
        )
    )


def overlap(n: int, dim: int, samples: int, noise: float) -> None:
    """DIVERSITY on the PCA-reduced rows against the full rows, on ``n`` generated rows."""
    from thresher.selection import select
    from thresher.selection.reduce import REDUCED_DIM, fit_pca

    x = _rows(0, n, dim, np.random.default_rng(0), noise)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t0 = time.perf_counter()
    pca = fit_pca(x)
    r = pca.transform_all(x)
    t_red = time.perf_counter() - t0
    cfg = {
        "n_samples": samples,
        "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
    }
    t0 = time.perf_counter()
    p_full = select(cfg, embeddings=x)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_red = select(cfg, embeddings=r)
    t_sel = time.perf_counter() - t0

    def radius(picks: np.ndarray) -> float:
        from thresher.selection.knn import knn

        d, _ = knn(x, x[picks], 1)
        return float(d.max())

    same = len(set(p_full.tolist()) & set(p_red.tolist()))
    print(
        f"overlap, noise {noise}, {n} x {dim} -> {REDUCED_DIM} dims (PCA keeps "
        f"{pca.explained:.1%} of the variance; {t_red:.1f} s): {same} of {samples} picks "
        f"({same / samples:.1%}) are the same; first 100 picks: "
        f"{len(set(p_full[:100].tolist()) & set(p_red[:100].tolist()))} the same"
    )
    print(
        f"coverage radius in the full space: full-dim picks {radius(p_full):.4f}, "
        f"reduced picks {radius(p_red):.4f}; select s: full {t_full:.1f}, reduced {t_sel:.1f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--generate-only", action="store_true")
    p.add_argument(
        "--near-threshold",
        type=float,
        default=NEAR_DUPLICATE_THRESHOLD,
        help="worker_config.near_duplicate_threshold (default: thresher's; 0 skips the search)",
    )
    p.add_argument("--overlap", type=int, default=0, metavar="M")
    p.add_argument("--noise", type=float, default=NOISE, help="--overlap: isotropic noise")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _run_child(args.child[0], args.samples, args.child[1])
        return
    if args.overlap:
        overlap(args.overlap, args.dim, min(args.samples, args.overlap // 10), args.noise)
        return
    base = generate(args.n, args.dim, args.workers)
    if args.generate_only:
        return
    shutil.rmtree(base / "lightly" / ".lightly" / "cache", ignore_errors=True)  # a fresh run
    shutil.rmtree(base / "lightly" / ".lightly" / "runs", ignore_errors=True)
    out = base / "result.json"
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--samples", str(args.samples), "--child", str(base), str(out)]
    env = {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect"),
        "SCALE_NEAR_THRESHOLD": str(args.near_threshold),
    }
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res = json.loads(out.read_text())
    st = res["stages"]
    n = args.n
    print(f"\ncurate, {n} files, {n} x {args.dim} embeddings, DIVERSITY n_samples={args.samples}")
    for stage, secs in st.items():
        rate = f"{n / secs:10.0f} files/s" if secs > 0 else ""
        print(f"  {stage:<18} {secs:8.1f} s {rate}")
    sel = float(st.get("select", float("nan")))
    peak = max(res["peak_memlog_mb"], res["maxrss_mb"])
    print(f"  end to end          {wall:8.1f} s (process start included)")
    print(
        f"peak memory: memlog {res['peak_memlog_mb']:.0f} MB (own RSS + children USS), "
        f"ru_maxrss {res['maxrss_mb']:.0f} MB (largest child: {children:.0f} MB)"
    )
    ok_mem, ok_sel = peak <= 3072, sel <= 120
    print(f"{'PASS' if ok_mem else 'FAIL'}: peak memory {peak:.0f} MB <= 3072 MB")
    print(f"{'PASS' if ok_sel else 'FAIL'}: selection {sel:.1f} s <= 120 s")
    print(f"run folder: {res['run']}")


if __name__ == "__main__":
    main()

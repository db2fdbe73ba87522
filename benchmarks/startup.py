"""Where a small ``thresher run`` spends its time, before and after the start-up work (issue 11).

    .venv/bin/python benchmarks/startup.py [--n 100] [--rounds 2]

Makes N varied 256x256 JPEGs, then runs the real command, ``thresher run INPUT --n-samples
N/10``, in a fresh process each time, alternating two set-ups in the same run:

- before: Prefect's API, the imports and the stages one after the other
  (``THRESHER_PARALLEL_STARTUP=0``) and the PyTorch backend (``embedding_backend: torch``),
  which is how thresher ran before;
- after: the defaults (parallel start-up, OpenVINO on the CPU).

Prefect's home and ``$THRESHER_HOME`` are shared by the runs (as on a user's machine, where
Prefect's database exists and the converted model is cached after the first run); a first run
that converts the model is timed on its own. Each run writes to a fresh LIGHTLY folder, so
nothing comes from the stage cache. Prints wall time and the report's stage seconds.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import make_jpegs

SETUPS = {
    "before": ({"THRESHER_PARALLEL_STARTUP": "0"}, {"embedding_backend": "torch"}),
    "after": ({}, {}),
}


def run_once(work: Path, inp: Path, n: int, env_extra: dict, worker: dict, tag: str) -> dict:
    lightly = work / f"lightly-{tag}"
    env = dict(os.environ, THRESHER_PROGRESS="0", **env_extra)
    argv = [sys.executable, "-m", "thresher", "run", str(inp), "--lightly", str(lightly)]
    argv += ["--n-samples", str(max(1, n // 10))]
    if worker:
        argv += ["--worker-config", json.dumps(worker)]
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
    report = next((lightly / ".lightly" / "runs").glob("*/report.json"))
    secs = json.loads(report.read_text())["stageSeconds"]
    shutil.rmtree(lightly, ignore_errors=True)
    return {"wall": wall, **secs}


def show(label: str, r: dict) -> None:
    parts = ", ".join(f"{k} {v:.1f}" for k, v in r.items() if k != "wall" and v >= 0.05)
    print(f"  {label:<7} wall {r['wall']:6.1f} s   ({parts})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="thresher-bench-startup-"))
    os.environ["PREFECT_HOME"] = str(work / "prefect")
    os.environ["THRESHER_HOME"] = str(work / "home")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        inp = work / "input"
        inp.mkdir()
        make_jpegs(inp, args.n)
        print(f"{args.n} JPEGs, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        # Prefect creates its database on the first run of a home: not counted in the rounds.
        run_once(work, inp, args.n, *SETUPS["before"], tag="prefect-db")
        first = run_once(work, inp, args.n, *SETUPS["after"], tag="first")
        print("first run on a machine (the model converted to OpenVINO and cached):")
        show("after", first)
        walls: dict[str, list[float]] = {k: [] for k in SETUPS}
        for i in range(args.rounds):
            print(f"round {i + 1}:")
            for name, (env_extra, worker) in SETUPS.items():
                r = run_once(work, inp, args.n, env_extra, worker, tag=f"{name}-{i}")
                walls[name].append(r["wall"])
                show(name, r)
        before, after = (sum(walls[k]) / len(walls[k]) for k in ("before", "after"))
        print(
            f"\nmean wall: before {before:.1f} s, after {after:.1f} s; "
            f"after/before = {after / before:.2f}  (load average now {os.getloadavg()[0]:.1f})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

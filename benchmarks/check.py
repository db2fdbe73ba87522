"""The corruption check of a local INPUT: worker processes (the default) against threads.

    .venv/bin/python benchmarks/check.py [--n 10000] [--rounds 3]

Makes N 256x256 JPEGs (as ``benchmarks/pipeline.py`` does) and times
:func:`thresher.checks.corruption.check_files` over them in fresh processes with the run's
malloc settings: the default (one forked worker process per core, for a local INPUT) and
``num_threads=2 x cores`` (the thread pool that object stores get), taking turns so both see
the same machine. Prints the best wall time of each and their ratio, and checks that both
found the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import make_jpegs

_ONE = """
import hashlib, json, sys, time
from pathlib import Path
from thresher.malloc import keep_freed_memory
keep_freed_memory()
from thresher.checks.corruption import check_files
from thresher.storage.location import Location
root, threads = Path(sys.argv[1]), int(sys.argv[2])
names = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
check_files(Location(str(root)), names[:200], num_threads=threads)  # warm: first allocations
t = time.perf_counter()
found = check_files(Location(str(root)), names, num_threads=threads)
s = time.perf_counter() - t
digest = hashlib.sha256(repr(found).encode()).hexdigest()
print(json.dumps({"seconds": s, "digest": digest}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    threads = 2 * (os.cpu_count() or 1)
    modes = {"processes": -1, f"{threads} threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root, args.n, 256)
        best = dict.fromkeys(modes, float("inf"))
        digests: dict[str, str] = {}
        for _ in range(args.rounds):
            for mode, n_threads in modes.items():
                out = subprocess.run(
                    [sys.executable, "-c", _ONE, str(root), str(n_threads)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                got = json.loads(out.stdout)
                best[mode] = min(best[mode], got["seconds"])
                digests[mode] = got["digest"]
    n = args.n
    print(
        f"corruption check of {n} 256x256 JPEGs on {os.cpu_count()} cores, best of {args.rounds}:"
    )
    for mode, secs in best.items():
        print(f"  {mode:<12} {secs:6.2f} s  {n / secs:7.1f} img/s")
    t, pr = best[f"{threads} threads"], best["processes"]
    same = len(set(digests.values())) == 1
    print(f"  processes / threads speed-up {t / pr:.2f}x; same results: {same}")
    if not same:
        sys.exit("the two modes found different results")


if __name__ == "__main__":
    main()

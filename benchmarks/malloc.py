"""The corruption check with and without :func:`thresher.malloc.keep_freed_memory`.

    .venv/bin/python benchmarks/malloc.py [--n 1500] [--rounds 3]

Makes N 256x256 JPEGs (as ``benchmarks/pipeline.py`` does) and times
:func:`thresher.checks.corruption.check_files` over them (its default: one forked worker
process per core, which inherit the settings) in fresh processes, glibc's default malloc
settings and the run's settings taking turns, so both see the same machine. Prints the best
wall time of each and their ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import make_jpegs

_ONE = """
import sys, time
from pathlib import Path
if sys.argv[2] == "1":
    from thresher.malloc import keep_freed_memory
    assert keep_freed_memory()
from thresher.checks.corruption import check_files
from thresher.storage.location import Location
root = Path(sys.argv[1])
names = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
check_files(Location(str(root)), names[:200])  # warm: imports, first allocations
t = time.perf_counter()
check_files(Location(str(root)), names)
print(time.perf_counter() - t)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_jpegs(root, args.n, 256)
        best = {"0": float("inf"), "1": float("inf")}
        for _ in range(args.rounds):
            for tuned in best:
                out = subprocess.run(
                    [sys.executable, "-c", _ONE, str(root), tuned],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                best[tuned] = min(best[tuned], float(out.stdout.strip()))
    n = args.n
    print(f"corruption check of {n} 256x256 JPEGs, best of {args.rounds}:")
    print(f"  glibc defaults      {best['0']:6.2f} s  {n / best['0']:7.1f} img/s")
    print(f"  keep_freed_memory   {best['1']:6.2f} s  {n / best['1']:7.1f} img/s")
    print(f"  ratio {best['0'] / best['1']:.2f}x")


if __name__ == "__main__":
    main()

"""`make bench`: run every benchmarks/bench_*.py (or the ones named) as its own process, in name order.

Each benchmark prints its table; copy it into RESULTS.md with the command that produced it.
Usage: python -m benchmarks [NAME ...]   e.g. python -m benchmarks drift
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    found = sorted(p.stem for p in here.glob("bench_*.py"))
    wanted = [f"bench_{name.removeprefix('bench_')}" for name in argv] or found
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {[n.removeprefix('bench_') for n in found]}")
        return 2
    if not wanted:
        print("no benchmarks yet (benchmarks/bench_*.py)")
        return 0
    failed = []
    for name in wanted:
        print(f"== {name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.{name}"]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

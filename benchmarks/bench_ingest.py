"""Ingest: validation overhead vs parsing on a 1M-row file, cold start, and the artifact's unzipped size.

Run: .venv/bin/python -m benchmarks ingest
- parse (the anchor) vs validate, same table, same run: CSV and Parquet parsing with the function's reader,
  then the contract's great-expectations suite on that table (to_pandas included, as the function does);
- cold start: a fresh interpreter imports functions.ingest.handler (boto3 clients, contracts, GE suite and the
  warm-up validation all happen at import), against a fresh interpreter importing only great_expectations;
- footprint: unzipped size of the fn-ingest extra's installed distributions, summed from their RECORD files.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import time
from importlib import metadata

from packaging.requirements import Requirement

ROWS = 1_000_000
LAMBDA_ZIP_LIMIT = 250 * 1024 * 1024


def _timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def parse_vs_validate() -> None:
    import psutil

    from functions.ingest.readers import Limits, read_table
    from functions.ingest.validation import load_validators
    from jobs.datagen import generate, to_bytes

    validator = load_validators(["transactions"])["transactions"]
    table = generate(ROWS, dt.date(2026, 11, 2), seed=1)
    csv, parquet = to_bytes(table, "csv"), to_bytes(table, "parquet")
    limits = Limits(max_object_bytes=1 << 40, max_decoded_bytes=1 << 40)
    csv_s, parsed = _timed(lambda: read_table(csv, "x.csv", validator.contract, limits), repeat=2)
    pq_s, _ = _timed(lambda: read_table(parquet, "x.parquet", validator.contract, limits), repeat=2)
    pandas_s, _ = _timed(lambda: parsed.to_pandas(), repeat=2)
    validate_s, (summary, _) = _timed(lambda: validator.validate(parsed))
    rss = psutil.Process().memory_info().rss / 2**20
    print(
        f"rows: {ROWS:,}  csv: {len(csv) / 2**20:.0f} MiB  parquet: {len(parquet) / 2**20:.0f} MiB",
        f"success={summary.success}",
    )
    print("| step | seconds | x CSV parse |")
    print("|---|---:|---:|")
    for name, secs in (
        ("parse CSV (anchor)", csv_s),
        ("parse Parquet", pq_s),
        ("to_pandas", pandas_s),
        ("validate (GE suite, incl. to_pandas)", validate_s),
    ):
        print(f"| {name} | {secs:.2f} | {secs / csv_s:.1f} |")
    print(f"peak-ish RSS after validation: {rss:.0f} MiB")


_CHILD_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "GX_ANALYTICS_ENABLED": "False",
}


def _fresh(code: str, measured: str = "time.perf_counter() - t") -> float:
    """Seconds from the start of a fresh interpreter through `code` (or what `measured` evaluates to)."""
    out = subprocess.run(
        [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; print({measured})"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_CHILD_ENV},
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_start(runs: int = 3) -> None:
    cases = {
        "import great_expectations (anchor)": "import great_expectations",
        "import pandas + pyarrow": "import pandas, pyarrow",
        "import + init functions.ingest.handler": "import functions.ingest.handler",
    }
    print("| fresh interpreter | median s | min s |")
    print("|---|---:|---:|")
    for name, code in cases.items():
        times = [_fresh(code) for _ in range(runs)]
        print(f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} |")
    first = (
        "import functions.ingest.handler as h, time; from jobs.datagen import generate; import datetime as dt; "
        "rows = generate(1000, dt.date(2026, 11, 2), 1); s = time.perf_counter(); "
        "h.service.validators['transactions'].validate(rows); v = time.perf_counter() - s; "
        "s = time.perf_counter(); h.service.validators['transactions'].validate(rows); w = time.perf_counter() - s"
    )
    print(f"1,000-row validation after init: first {_fresh(first, 'v'):.3f} s, second {_fresh(first, 'w'):.3f} s")


def _closure(extra: str) -> set[str]:
    seen: set[str] = set()
    # The core requirements (no marker) plus the extra's own.
    todo = [Requirement(r) for r in metadata.requires("tidewater") or [] if ";" not in r or f'extra == "{extra}"' in r]
    while todo:
        req = todo.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(req.name)
        for sub in dist.requires or []:
            sub_req = Requirement(sub)
            extras = req.extras or {""}
            if sub_req.marker is None or any(sub_req.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub_req)
    return seen


def footprint() -> None:
    sizes = {}
    for name in _closure("fn-ingest"):
        dist = metadata.distribution(name)
        sizes[name] = sum(f.size or 0 for f in dist.files or [] if "__pycache__" not in str(f))
    total = sum(sizes.values())
    print(
        f"fn-ingest closure: {len(sizes)} distributions, {total / 2**20:.0f} MiB unzipped",
        "(RECORD sizes, no __pycache__)",
    )
    print(f"Lambda zip limit 250 MiB: {'fits' if total <= LAMBDA_ZIP_LIMIT else 'does NOT fit'}")
    without_sdk = total - sizes.get("boto3", 0) - sizes.get("botocore", 0) - sizes.get("s3transfer", 0)
    print(f"without boto3/botocore/s3transfer (the runtime has them): {without_sdk / 2**20:.0f} MiB")
    print("| distribution | MiB |")
    print("|---|---:|")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:10]:
        print(f"| {name} | {size / 2**20:.1f} |")


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cpu(s)")
    parse_vs_validate()
    cold_start()
    footprint()

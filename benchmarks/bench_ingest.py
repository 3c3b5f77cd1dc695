"""Ingest: the whole handler path vs plain pyarrow, validation vs parsing, cold start, the artifact's size.

Run: .venv/bin/python -m benchmarks ingest   (BENCH_ROWS=... to change the file's 1M rows)
- handler path vs anchor, same CSV file, same run: the function's IngestService.ingest (read with the
  contract's types, validate, decide, split by event date, write zstd Parquet + summary + commit manifest) on
  an in-memory S3, against plain pyarrow read_csv + write_table(zstd) of the same bytes; rows/s of each;
- parse vs validate, same table: the function's readers, then the suite evaluated with Arrow compute (what the
  function runs), and great-expectations itself with COMPLETE results on a pandas copy (the previous path);
- peak RSS of a fresh process running the handler path on the file;
- cold start: a fresh interpreter imports functions.ingest.handler (boto3 clients, contracts, GE suite and the
  warm-up validation all happen at import), against a fresh interpreter importing only great_expectations;
- footprint: unzipped size of the fn-ingest extra's installed distributions, summed from their RECORD files.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata

from packaging.requirements import Requirement

ROWS = int(os.environ.get("BENCH_ROWS", 1_000_000))
RSS_ROWS = int(os.environ.get("BENCH_RSS_ROWS", 5_000_000))  # the memory case: a file the function once could not hold
LAMBDA_ZIP_LIMIT = 250 * 1024 * 1024


def _timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


class MemoryS3:
    """The S3 calls IngestService makes, in memory: the benchmark times compute, not a mock server's HTTP.
    With `spill`, objects live in files there instead (the memory benchmark: the process then holds what the
    function would, not the store's copies); a str value is such a file's path."""

    def __init__(self, spill: str | None = None) -> None:
        self.objects: dict[tuple[str, str], bytes | str] = {}
        self.spill = spill

    def get_object(self, Bucket: str, Key: str, **_: object) -> dict[str, object]:
        body = self.objects[(Bucket, Key)]
        stream = open(body, "rb") if isinstance(body, str) else io.BytesIO(body)  # noqa: SIM115 - the caller reads it
        size = os.path.getsize(body) if isinstance(body, str) else len(body)
        return {"Body": stream, "ContentLength": size, "LastModified": dt.datetime.now(dt.UTC)}

    def put_object(self, Bucket: str, Key: str, Body: bytes | io.BufferedIOBase | str, **_: object) -> None:
        if self.spill is None or isinstance(Body, str):
            self.objects[(Bucket, Key)] = Body if isinstance(Body, bytes | str) else Body.read()
            return
        path = os.path.join(self.spill, f"{len(self.objects)}.bin")
        with open(path, "wb") as out:
            if isinstance(Body, bytes):
                out.write(Body)
            else:
                shutil.copyfileobj(Body, out, 1 << 20)
        self.objects[(Bucket, Key)] = path

    def copy(self, source: dict[str, str], bucket: str, key: str) -> None:
        self.objects[(bucket, key)] = self.objects[(source["Bucket"], source["Key"])]


def _service_and_ref(csv: bytes | str, spill: str | None = None):  # type: ignore[no-untyped-def]
    """The function's service on a MemoryS3 holding `csv` (bytes, or the path of a file) as a raw object."""
    from functions.common.events import RecordingPublisher
    from functions.ingest.readers import Limits
    from functions.ingest.refs import ObjectRef
    from functions.ingest.service import IngestService
    from functions.ingest.validation import load_validators
    from schemas.naming import Names, raw_key

    names, s3 = Names(), MemoryS3(spill)
    key = raw_key("transactions", dt.date(2026, 11, 2), "bench.csv")
    s3.put_object(Bucket=names.bucket("raw"), Key=key, Body=csv)
    service = IngestService(
        s3=s3,  # type: ignore[arg-type]
        publisher=RecordingPublisher(),
        names=names,
        validators=load_validators(["transactions"]),
        limits=Limits(max_object_bytes=1 << 40, max_decoded_bytes=1 << 40),
    )
    return service, ObjectRef(names.bucket("raw"), key, "v1", "etag")


def handler_vs_pyarrow() -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from jobs.datagen import generate, to_bytes

    csv = to_bytes(generate(ROWS, dt.date(2026, 11, 2), seed=1), "csv")
    service, ref = _service_and_ref(csv)

    def plain() -> None:
        pq.write_table(pacsv.read_csv(io.BytesIO(csv)), io.BytesIO(), compression="zstd")

    anchor_s, _ = _timed(plain, repeat=2)
    handler_s, outcome = _timed(lambda: service.ingest(ref), repeat=2)
    mib = len(csv) / 2**20
    print(
        f"rows: {ROWS:,}  csv: {mib:.0f} MiB  outcome: {outcome.status}/{outcome.reason} {outcome.rows_curated:,} rows"
    )
    print("| path (same CSV, same run) | seconds | rows/s | MB/s | x anchor rows/s |")
    print("|---|---:|---:|---:|---:|")
    for name, secs in (("pyarrow read_csv + write_table zstd (anchor)", anchor_s), ("IngestService.ingest", handler_s)):
        print(f"| {name} | {secs:.2f} | {ROWS / secs:,.0f} | {len(csv) / secs / 1e6:.0f} | {anchor_s / secs:.2f} |")
    print(f"inside the handler path: parse {outcome.parse_seconds:.2f} s, validate {outcome.validation_seconds:.2f} s"
          f" ({outcome.validation_seconds / outcome.parse_seconds:.2f}x parse)")  # fmt: skip


_SAMPLED_PEAK = """
import psutil, sys, threading, time
p = psutil.Process(); peak = [0]; done = threading.Event()
def sample():
    while not done.wait(0.005):
        peak[0] = max(peak[0], p.memory_info().rss)
path, spill, case = sys.argv[1:4]
if case == "handler":
    from benchmarks.bench_ingest import _service_and_ref
    service, ref = _service_and_ref(path, spill)
    run = lambda: service.ingest(ref)
else:
    import io, pyarrow.csv as pacsv, pyarrow.parquet as pq
    run = lambda: pq.write_table(pacsv.read_csv(path), spill + "/anchor.parquet", compression="zstd")
before = p.memory_info().rss
t = threading.Thread(target=sample); t.start(); start = time.perf_counter()
outcome = run()
seconds = time.perf_counter() - start; done.set(); t.join()
rows = outcome.rows_curated if outcome is not None else 0
print(before >> 20, max(peak[0], p.memory_info().rss) >> 20, f"{seconds:.2f}", rows)
"""


def peak_rss() -> None:
    """Peak RSS of a fresh process running the handler path on a RSS_ROWS-row CSV (generated to a temporary
    directory by another process first), side by side with plain pyarrow (read_csv + write_table, the whole
    file at once) on the same file. The store is file-backed (MemoryS3 with `spill`): the process holds what
    the function would. RSS is sampled every 5 ms by a thread (ru_maxrss would inherit the forking parent's
    peak on Linux)."""
    import tempfile

    from functions.ingest.readers import Limits

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.csv")
        make = (
            "import datetime as dt; from jobs.datagen import generate, to_bytes; "
            f"open({path!r}, 'wb').write(to_bytes(generate({RSS_ROWS}, dt.date(2026, 11, 2), seed=1), 'csv'))"
        )
        subprocess.run([sys.executable, "-c", make], check=True, env={**os.environ, **_CHILD_ENV})
        size = os.path.getsize(path)
        rows = []
        for case, label in (("anchor", "pyarrow read_csv + write_table zstd, whole file (anchor)"),
                            ("handler", "IngestService.ingest, streamed")):  # fmt: skip
            spill = tempfile.mkdtemp(dir=tmp)
            out = subprocess.run([sys.executable, "-c", _SAMPLED_PEAK, path, spill, case], capture_output=True,
                                 text=True, check=True, env={**os.environ, **_CHILD_ENV}).stdout.split()  # fmt: skip
            before, peak, seconds, curated = int(out[-4]), int(out[-3]), float(out[-2]), int(out[-1])
            rows.append((label, before, peak, seconds, curated))
    print(f"peak RSS, fresh process, {RSS_ROWS:,}-row CSV ({size >> 20} MiB), batch {Limits().block_bytes >> 20} MiB:")
    print("| path (same file, same run) | before MiB | peak RSS MiB | seconds | rows/s | curated rows |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, before, peak, seconds, curated in rows:
        print(f"| {label} | {before} | {peak} | {seconds:.1f} | {RSS_ROWS / seconds:,.0f} | {curated:,} |")


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
    validate_s, (summary, _) = _timed(lambda: validator.validate(parsed), repeat=2)
    from schemas.expectations import build_suite, validate_frame

    suite = build_suite(validator.contract)
    ge_s, _ = _timed(lambda: validate_frame(validator.contract, suite, parsed.to_pandas()))
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
        ("validate: the suite evaluated with Arrow compute (the function)", validate_s),
        ("validate: great-expectations COMPLETE, incl. to_pandas (previous path)", ge_s),
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
    handler_vs_pyarrow()
    peak_rss()
    parse_vs_validate()
    cold_start()
    footprint()

"""Dask ingestion: CSV -> Parquet throughput (1 and 2 workers vs a single-process pyarrow anchor, one run), and
the peak memory of the full dataset build on curated data larger than a worker's memory limit.

Run: python -m benchmarks ingest_dask      (BENCH_SCALE=0.25 for a quick look)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jobs import datagen
from jobs.batch.build import build_dataset
from jobs.batch.cluster import ClusterSpec, dask_client
from jobs.batch.inputs import BuildParams
from schemas.naming import curated_prefix
from tests.jobs.helpers import commit_curated

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
CSV_FILES, CSV_ROWS = 6, int(250_000 * SCALE)
BIG_FILES, BIG_ROWS = 24, int(500_000 * SCALE)
WORKER_LIMIT = os.environ.get("BENCH_WORKER_LIMIT", "1GiB")


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _csv_inputs(root: Path) -> list[Path]:
    paths = []
    for i in range(CSV_FILES):
        path = root / f"in-{i}.csv"
        pacsv.write_csv(datagen.generate(CSV_ROWS, dt.date(2026, 11, 1) + dt.timedelta(days=i), i), path)
        paths.append(path)
    return paths


def pyarrow_anchor(paths: list[Path], out: Path) -> float:
    out.mkdir()
    began = time.perf_counter()
    for i, path in enumerate(paths):
        pq.write_table(pacsv.read_csv(path), out / f"part-{i}.parquet", compression="zstd")
    return time.perf_counter() - began


def dask_csv_to_parquet(paths: list[Path], out: Path, workers: int) -> float:
    import dask.dataframe as dd

    with dask_client(ClusterSpec(n_workers=workers, threads_per_worker=1, memory_limit="1GiB")):
        began = time.perf_counter()
        frame = dd.read_csv([str(p) for p in paths], engine="pyarrow", dtype_backend="pyarrow", blocksize="32MiB")
        frame.to_parquet(str(out), write_index=False, compression="zstd")
        return time.perf_counter() - began


class PeakRss:
    """Samples the resident memory of the given processes every 100 ms; keeps each one's peak."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(p) for p in pids]
        self.peaks = [0] * len(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for i, proc in enumerate(self.procs):
                with contextlib.suppress(psutil.NoSuchProcess):  # a worker the nanny restarted
                    self.peaks[i] = max(self.peaks[i], proc.memory_info().rss)
            self._stop.wait(0.1)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def big_build(root: Path) -> dict[str, Any]:
    arrow_bytes = 0
    for i in range(BIG_FILES):
        day = dt.date(2026, 10, 1) + dt.timedelta(days=i)
        table = datagen.generate(BIG_ROWS, day, 100 + i)
        arrow_bytes += table.nbytes
        folder = root / "curated" / curated_prefix("transactions", day)
        folder.mkdir(parents=True)
        # Row groups of 100k rows, as the ingest function writes them, so Dask can split a file into partitions.
        pq.write_table(table, folder / "part-0.parquet", row_group_size=100_000)
        commit_curated(
            root / "curated",
            f"raw/transactions/{day:%Y/%m/%d}/big.csv",
            [f"{curated_prefix('transactions', day)}part-0.parquet"],
        )
    parquet_bytes = _size(list((root / "curated").rglob("*.parquet")))
    spec = ClusterSpec(n_workers=2, threads_per_worker=1, memory_limit=WORKER_LIMIT)
    with dask_client(spec) as client:
        pids = list(client.run(os.getpid).values())
        with PeakRss(pids) as rss:
            began = time.perf_counter()
            result = build_dataset(f"file://{root}/curated", f"file://{root}/datasets",
                                   BuildParams(rows_per_shard=500_000), client)  # fmt: skip
            elapsed = time.perf_counter() - began
    return {"rows": result.manifest["rows"], "arrow_bytes": arrow_bytes, "parquet_bytes": parquet_bytes,
            "peaks": rss.peaks, "seconds": elapsed, "shards": len(result.manifest["shards"])}  # fmt: skip


def csv_section() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _csv_inputs(root)
        csv_mb = _size(paths) / 1e6
        print(f"\nCSV -> Parquet, {CSV_FILES} files, {CSV_FILES * CSV_ROWS:,} rows, {csv_mb:.0f} MB of CSV")
        print("| engine | seconds | MB/s (CSV in) |")
        print("|---|---:|---:|")
        seconds = pyarrow_anchor(paths, root / "anchor")
        print(f"| pyarrow, one process (anchor; multi-threaded CSV reader) | {seconds:.1f} | {csv_mb / seconds:.0f} |")
        for workers in (1, 2):
            seconds = dask_csv_to_parquet(paths, root / f"dask-{workers}", workers)
            print(f"| Dask LocalCluster, {workers} worker(s) x 1 thread | {seconds:.1f} | {csv_mb / seconds:.0f} |")


def build_section() -> None:
    mib = 1 << 20
    with tempfile.TemporaryDirectory() as tmp:
        out = big_build(Path(tmp))
    rows = out["rows"]
    print(f"\nDataset build (dedup + split + shards + profile) on {rows['input']:,} curated rows: "
          f"{out['arrow_bytes'] / mib:.0f} MiB in memory (Arrow), {out['parquet_bytes'] / mib:.0f} MiB Parquet; "
          f"2 workers x {WORKER_LIMIT} limit")  # fmt: skip
    print("| worker | peak RSS MiB |")
    print("|---|---:|")
    for i, peak in enumerate(out["peaks"]):
        print(f"| {i} | {peak / mib:.0f} |")
    print(f"completed in {out['seconds']:.0f} s: {rows['train']:,} train + {rows['validation']:,} validation rows, "
          f"{out['shards']} shards")  # fmt: skip


def main() -> None:
    print(f"machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / (1 << 30):.0f} GiB; scale {SCALE}")
    parts = os.environ.get("BENCH_PARTS", "csv,build").split(",")
    if "csv" in parts:
        csv_section()
    if "build" in parts:
        build_section()


if __name__ == "__main__":
    main()

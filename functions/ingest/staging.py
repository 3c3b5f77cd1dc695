"""A file's outputs written batch by batch to local Parquet files, before any of them is uploaded.

The curated rows go to one file per event date (the hive partition they will be uploaded to), the quarantined
rows (with their `_source_row`) to one more. Batches are buffered into row groups of about ROW_GROUP_BYTES
(a row group per 4 MiB batch wrote ~1.6x slower), and all buffers are flushed once they hold twice that, so
memory holds at most that much of the output, never the file's. Nothing here talks to the cloud: the service
uploads the closed files, then commits (functions.ingest.outcomes), so a failure before the commit leaves
nothing visible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COMPRESSION = "zstd"
SOURCE_ROW = "_source_row"
ROW_GROUP_BYTES = 64 << 20


@dataclass
class Staged:
    """Closed local files: curated partitions in event-date order, and the quarantined rows (if any)."""

    curated: list[tuple[dt.date, Path]] = field(default_factory=list)
    bad_rows: Path | None = None
    rows_curated: int = 0
    rows_bad: int = 0


class _File:
    """One staged Parquet file and the rows waiting for its next row group."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.writer = pq.ParquetWriter(path, schema, compression=COMPRESSION)
        self.pending: list[pa.Table] = []
        self.pending_bytes = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_bytes += table.nbytes

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending))
        self.pending, self.pending_bytes = [], 0

    def close(self) -> Path:
        self.flush()
        self.writer.close()
        return Path(self.writer.where)


class Staging:
    def __init__(self, directory: Path, timestamp: str | None, key_day: dt.date) -> None:
        self.directory, self.timestamp, self.key_day = directory, timestamp, key_day
        directory.mkdir(parents=True, exist_ok=True)
        self._curated: dict[dt.date, _File] = {}
        self._bad: _File | None = None
        self.staged = Staged()

    def add(self, good: pa.Table, bad: pa.Table | None = None) -> None:
        """`good` rows to their event dates' partitions; `bad` rows (with `_source_row`) to the quarantine's."""
        for day, part in by_event_date(good, self.timestamp, self.key_day):
            if day not in self._curated:
                self._curated[day] = _File(self._path(f"{day}.parquet"), part.schema)
            self._curated[day].add(part)
            self.staged.rows_curated += part.num_rows
        if bad is not None and bad.num_rows:
            if self._bad is None:
                self._bad = _File(self._path("rows.parquet"), bad.schema)
            self._bad.add(bad)
            self.staged.rows_bad += bad.num_rows
        files = [*self._curated.values(), *([self._bad] if self._bad else [])]
        for file in files:
            if file.pending_bytes >= ROW_GROUP_BYTES:
                file.flush()
        if sum(f.pending_bytes for f in files) >= 2 * ROW_GROUP_BYTES:  # many dates: smaller row groups
            for file in files:
                file.flush()

    def close(self) -> Staged:
        self.staged.curated = [(day, self._curated[day].close()) for day in sorted(self._curated)]
        self.staged.bad_rows = self._bad.close() if self._bad is not None else None
        self._curated, self._bad = {}, None
        return self.staged

    def _path(self, name: str) -> str:
        return str(self.directory / name)


def by_event_date(table: pa.Table, timestamp: str | None, key_day: dt.date) -> list[tuple[dt.date, pa.Table]]:
    """The rows of each UTC event date (timestamps are UTC by contract); a row without one goes with the key's
    day. No copy when they all share one date (the common case)."""
    if table.num_rows == 0:
        return []
    if timestamp is None or timestamp not in table.column_names:
        return [(key_day, table)]
    dates = pc.fill_null(pc.cast(table[timestamp], pa.date32()), pa.scalar(key_day, pa.date32()))
    days = sorted(pc.unique(dates).to_pylist())
    if len(days) == 1:
        return [(days[0], table)]
    return [(day, table.filter(pc.equal(dates, pa.scalar(day, pa.date32())))) for day in days]

"""A file's outputs written batch by batch to local Parquet files, before any of them is uploaded.

The curated rows go to one file per event date (the hive partition they will be uploaded to), the quarantined
rows (with their `_source_row`) to one more; each batch adds a row group to the files it touches, so memory
holds one batch, never the file's output. Nothing here talks to the cloud: the service uploads the closed
files, then commits (functions.ingest.outcomes), so a failure before the commit leaves nothing visible.
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


@dataclass
class Staged:
    """Closed local files: curated partitions in event-date order, and the quarantined rows (if any)."""

    curated: list[tuple[dt.date, Path]] = field(default_factory=list)
    bad_rows: Path | None = None
    rows_curated: int = 0
    rows_bad: int = 0


class Staging:
    def __init__(self, directory: Path, timestamp: str | None, key_day: dt.date) -> None:
        self.directory, self.timestamp, self.key_day = directory, timestamp, key_day
        directory.mkdir(parents=True, exist_ok=True)
        self._curated: dict[dt.date, pq.ParquetWriter] = {}
        self._bad: pq.ParquetWriter | None = None
        self.staged = Staged()

    def add(self, good: pa.Table, bad: pa.Table | None = None) -> None:
        """`good` rows to their event dates' partitions; `bad` rows (with `_source_row`) to the quarantine's."""
        for day, part in by_event_date(good, self.timestamp, self.key_day):
            if day not in self._curated:
                self._curated[day] = _writer(self._path(f"{day}.parquet"), part.schema)
            self._curated[day].write_table(part)
            self.staged.rows_curated += part.num_rows
        if bad is not None and bad.num_rows:
            if self._bad is None:
                self._bad = _writer(self._path("rows.parquet"), bad.schema)
            self._bad.write_table(bad)
            self.staged.rows_bad += bad.num_rows

    def close(self) -> Staged:
        for day in sorted(self._curated):
            self._curated[day].close()
            self.staged.curated.append((day, Path(self._curated[day].where)))
        if self._bad is not None:
            self._bad.close()
            self.staged.bad_rows = Path(self._bad.where)
        self._curated, self._bad = {}, None
        return self.staged

    def _path(self, name: str) -> str:
        return str(self.directory / name)


def _writer(path: str, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, schema, compression=COMPRESSION)


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

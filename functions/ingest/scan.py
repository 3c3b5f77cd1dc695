"""One raw file -> parsed, validated, split and staged a batch at a time; no cloud calls, local files only.

Memory is bounded by the batch (`Limits.block_bytes`), not the file: each batch is read, checked against the
suite (functions.ingest.arrow_checks.FileChecks), split into good and bad rows and appended to the staged
outputs (functions.ingest.staging) before the next one is read. What only the whole file can tell is decided
at the end: the column set, the row count, uniqueness, the share of bad rows, hence curate / split / reject.
A batch's rows are staged on what that batch can tell (every expectation but uniqueness); when the end finds
more bad rows (a value repeated in a unique column, which only the whole column tells), the file is read a
second time and staged with the whole file's bad rows, so the outcome is row for row the one of the whole
table. Only such files pay the second read.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from functions.ingest.arrow_checks import FileChecks, FileResult
from functions.ingest.outcomes import SAMPLE_ROWS, json_rows
from functions.ingest.policy import Policy, Verdict, decide_rows
from functions.ingest.readers import BatchReader, Limits
from functions.ingest.staging import SOURCE_ROW, Staged, Staging
from functions.ingest.validation import ROW_SAMPLE, Validator, summary_doc


@dataclass
class Scanned:
    verdict: Verdict
    result: FileResult
    rows_in: int
    sample: list[dict[str, Any]]  # for reason.json: the first bad rows, or the first rows when none is bad
    staged: Staged | None  # None when the file is rejected
    parse_seconds: float
    validation_seconds: float
    reads: int  # 1, or 2 when the whole file's bad rows differed from what the batches could tell

    @property
    def doc(self) -> dict[str, Any]:
        return summary_doc(self.result.summary)


@dataclass
class _Samples:
    """The first rows of the file and its first bad rows (with `_source_row`), a few of each."""

    first: list[pa.Table] = field(default_factory=list)
    bad: list[pa.Table] = field(default_factory=list)
    have_first: int = 0
    have_bad: int = 0

    def add(self, batch: pa.Table, bad_rows: pa.Table | None) -> None:
        if self.have_first < SAMPLE_ROWS:
            self.first.append(batch.slice(0, SAMPLE_ROWS - self.have_first))
            self.have_first += self.first[-1].num_rows
        if bad_rows is not None and self.have_bad < SAMPLE_ROWS:
            self.bad.append(bad_rows.slice(0, SAMPLE_ROWS - self.have_bad))
            self.have_bad += self.bad[-1].num_rows

    def rows(self, which: str) -> list[dict[str, Any]]:
        tables = self.bad if which == "bad" else self.first
        return json_rows(pa.concat_tables(tables)) if tables else []


@dataclass
class _Clock:
    parse: float = 0.0
    validation: float = 0.0

    def parsing(self, batches: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """`batches`, with the time spent producing them (reading, parsing, typing) added to `parse`."""
        iterator = iter(batches)
        while True:
            start = time.perf_counter()
            batch = next(iterator, None)
            self.parse += time.perf_counter() - start
            if batch is None:
                return
            yield batch


def _split(batch: pa.Table, bad: np.ndarray, offset: int) -> tuple[pa.Table, pa.Table | None]:
    """(good rows, bad rows with their file position as `_source_row`); `bad`: positions in the batch."""
    if len(bad) == 0:
        return batch, None
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[bad] = False
    bad_rows = batch.filter(pa.array(~keep)).append_column(SOURCE_ROW, pa.array(bad + offset, pa.int64()))
    return batch.filter(pa.array(keep)), bad_rows


def scan(
    data: bytes, filename: str, validator: Validator, limits: Limits, policy: Policy, key_day: dt.date, workdir: Path
) -> Scanned:
    """Raises readers.Rejected for a file that cannot be parsed (at the batch where that shows)."""
    contract = validator.contract
    timestamp = contract.timestamp_column.name if contract.timestamp_column else None
    checks = FileChecks(contract, validator.configs, contract.ref)
    staging = Staging(workdir / "read-1", timestamp, key_day)
    samples, clock, staged_bad = _Samples(), _Clock(), []
    reader = BatchReader(data, filename, contract, limits)
    for batch in clock.parsing(reader):
        start = time.perf_counter()
        bad = checks.add(batch)
        clock.validation += time.perf_counter() - start
        good, bad_rows = _split(batch, bad, checks.rows - batch.num_rows)
        staging.add(good, bad_rows)
        samples.add(batch, bad_rows)
        staged_bad.append(bad + (checks.rows - batch.num_rows))
    start = time.perf_counter()
    result = checks.finish(reader.columns, ROW_SAMPLE)
    verdict = decide_rows(result.summary, result.bad_rows, policy)
    clock.validation += time.perf_counter() - start
    staged: Staged | None = staging.close()
    reads = 1
    exact = np.array_equal(np.concatenate(staged_bad) if staged_bad else np.empty(0, np.int64), result.bad_rows)
    if not exact and (verdict.action == "split" or verdict.reason == "too_many_bad_rows"):
        shutil.rmtree(staging.directory)  # never uploaded; the disk (Lambda's /tmp) holds one staging at a time
        samples, reads = _Samples(), 2
        again = Staging(workdir / "read-2", timestamp, key_day) if verdict.action == "split" else None
        _read_again(BatchReader(data, filename, contract, limits), result.bad_rows, again, samples, clock)
        staged = again.close() if again else None
    if verdict.action == "reject":
        staged = None
    which = "bad" if verdict.action == "split" or verdict.reason == "too_many_bad_rows" else "first"
    sample = samples.rows(which)
    if which == "bad" and verdict.action == "reject":  # as the file's rows, without the quarantine's column
        sample = [{k: v for k, v in row.items() if k != SOURCE_ROW} for row in sample]
    return Scanned(verdict, result, checks.rows, sample, staged, clock.parse, clock.validation, reads)


def _read_again(
    reader: BatchReader, bad_rows: np.ndarray, staging: Staging | None, samples: _Samples, clock: _Clock
) -> None:
    """Stage (or only sample, when `staging` is None) the file with its bad rows known in advance."""
    offset = 0
    for batch in clock.parsing(reader):
        local = bad_rows[np.searchsorted(bad_rows, offset) : np.searchsorted(bad_rows, offset + batch.num_rows)]
        good, bad = _split(batch, local - offset, offset)
        if staging is not None:
            staging.add(good, bad)
        samples.add(batch, bad)
        offset += batch.num_rows
        if staging is None and samples.have_bad >= min(SAMPLE_ROWS, len(bad_rows)):
            return

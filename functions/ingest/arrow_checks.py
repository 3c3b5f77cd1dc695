"""The contract's great-expectations suite evaluated with vectorised Arrow compute, on the table as read.

The suite (schemas.expectations.build_suite) stays the one definition of what valid means; this module
reads its expectation configurations (type + kwargs, the suite's JSON form) and evaluates each one on the
Arrow table with GE's semantics, so it needs neither a pandas copy nor GE's per-file machinery:
- columns match set: the Arrow schema as stored (index columns written by pandas included);
- not null: null, or NaN in a float column (pandas, hence GE, counts NaN as missing);
- unique: every row whose non-null value occurs more than once;
- between (inclusive) and in set: non-null values outside; nulls are left to the not-null expectation.
A column whose Arrow type is not the contract's is an `expect_column_type` failure of the whole file.
tests/functions/test_ingest_validation.py checks that GE and this module agree on generated files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from functions.ingest.uniqueness import UniqueColumn
from schemas.contract import Contract
from schemas.expectations import FailedExpectation, ValidationSummary

SAMPLE_VALUES = 5
Mask = Callable[[pa.ChunkedArray, dict[str, Any]], pa.ChunkedArray]


def _missing(column: pa.ChunkedArray, _: dict[str, Any]) -> pa.ChunkedArray:
    if pa.types.is_floating(column.type):
        return pc.is_null(column, nan_is_null=True)
    return pc.is_null(column)


def _duplicated(column: pa.ChunkedArray, _: dict[str, Any]) -> pa.ChunkedArray:
    counts = pc.value_counts(column.drop_null())
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return pa.chunked_array([pa.array(np.zeros(len(column), dtype=bool))])
    return pc.fill_null(pc.is_in(column, value_set=repeated), False)


def _outside(column: pa.ChunkedArray, kwargs: dict[str, Any]) -> pa.ChunkedArray:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    valid = _missing(column, kwargs)
    bad = pa.chunked_array([pa.array(np.zeros(len(column), dtype=bool))])
    if low is not None:
        bad = pc.or_(bad, pc.less(column, pa.scalar(low).cast(column.type, safe=False)))
    if high is not None:
        bad = pc.or_(bad, pc.greater(column, pa.scalar(high).cast(column.type, safe=False)))
    return pc.and_(pc.fill_null(bad, False), pc.invert(valid))


def _not_in_set(column: pa.ChunkedArray, kwargs: dict[str, Any]) -> pa.ChunkedArray:
    values = pa.array(list(kwargs["value_set"]))
    if values.type != column.type:
        values = values.cast(column.type)
    return pc.and_(pc.invert(pc.fill_null(pc.is_in(column, value_set=values), True)), pc.is_valid(column))


ROW_EXPECTATIONS: dict[str, Mask] = {
    "expect_column_values_to_not_be_null": _missing,
    "expect_column_values_to_be_unique": _duplicated,
    "expect_column_values_to_be_between": _outside,
    "expect_column_values_to_be_in_set": _not_in_set,
}
TABLE_EXPECTATIONS = frozenset({"expect_table_columns_to_match_set"})


def suite_configs(suite: dict[str, Any]) -> list[dict[str, Any]]:
    """[{type, kwargs}] of a GE ExpectationSuite's JSON form, in its order; an expectation this module cannot
    evaluate is an error here (at init), never a silently skipped check."""
    configs = [{"type": e["type"], "kwargs": dict(e["kwargs"])} for e in suite["expectations"]]
    unknown = sorted({c["type"] for c in configs} - set(ROW_EXPECTATIONS) - TABLE_EXPECTATIONS)
    if unknown:
        raise ValueError(f"no Arrow evaluation for expectation(s) {unknown}")
    return configs


def _type_problems(contract: Contract, schema: pa.Schema) -> list[FailedExpectation]:
    wanted = contract.arrow_schema()
    problems = []
    for name in schema.names:
        if name in wanted.names and schema.field(name).type != wanted.field(name).type:
            found = schema.field(name).type
            problems.append(
                FailedExpectation(
                    expectation="expect_column_type",
                    column=name,
                    unexpected_count=None,
                    sample_values=[f"type {found}, expected {wanted.field(name).type}"],
                )
            )
    return problems


def _column_set(kwargs: dict[str, Any], present: set[str]) -> FailedExpectation | None:
    expected = set(kwargs["column_set"])
    exact = kwargs.get("exact_match", True)
    if (present != expected) if exact else not expected <= present:
        return FailedExpectation(
            expectation="expect_table_columns_to_match_set",
            column=None,
            unexpected_count=None,
            sample_values=[f"missing {sorted(expected - present)}, unexpected {sorted(present - expected)}"],
        )
    return None


def _samples(column: pa.ChunkedArray, rows: np.ndarray) -> list[Any]:
    values = column.take(pa.array(rows[:SAMPLE_VALUES])).to_pylist()
    return [v if isinstance(v, str | int | float | bool) or v is None else str(v) for v in values]


def _row_checks(
    configs: list[dict[str, Any]], table: pa.Table, failed: list[FailedExpectation]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, column, kwargs) of each row expectation that applies: its column is present and of its type
    (a column-set or type failure already rejects the file)."""
    typed_wrong = {f.column for f in failed if f.expectation == "expect_column_type"}
    for config in configs:
        kind, kwargs = config["type"], config["kwargs"]
        if kind in TABLE_EXPECTATIONS:
            continue
        name = kwargs["column"]
        if name in table.column_names and name not in typed_wrong:
            yield kind, name, kwargs


def _rows(kind: str, column: pa.ChunkedArray, kwargs: dict[str, Any]) -> np.ndarray:
    return np.flatnonzero(ROW_EXPECTATIONS[kind](column, kwargs).to_numpy(zero_copy_only=False))


def evaluate(contract: Contract, configs: list[dict[str, Any]], table: pa.Table, suite_name: str) -> ValidationSummary:
    """The suite's verdict on `table`: failures with their row positions (0-based), as GE would report."""
    failed = _type_problems(contract, table.schema)
    for config in configs:
        if config["type"] == "expect_table_columns_to_match_set":
            problem = _column_set(config["kwargs"], set(table.column_names))
            failed += [problem] if problem else []
    for kind, name, kwargs in list(_row_checks(configs, table, failed)):
        rows = _rows(kind, table[name], kwargs)
        if len(rows):
            failed.append(
                FailedExpectation(
                    expectation=kind,
                    column=name,
                    unexpected_count=len(rows),
                    unexpected_rows=rows.tolist(),
                    sample_values=_samples(table[name], rows),
                )
            )
    return ValidationSummary(contract=suite_name, success=not failed, row_count=table.num_rows, failed=failed)


# Expectations over the whole column: a later batch can make an earlier row unexpected.
WHOLE_FILE = frozenset({"expect_column_values_to_be_unique"})


@dataclass
class _Failure:
    rows: list[np.ndarray] = field(default_factory=list)  # file positions, batch by batch
    samples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class FileResult:
    """The suite's verdict on a whole file. `summary` keeps the first ROW_SAMPLE positions of each failure
    (what reports show); the full positions are `rows` (per failure) and `bad_rows` (their union, sorted)."""

    summary: ValidationSummary
    rows: dict[tuple[str, str | None], np.ndarray]
    bad_rows: np.ndarray


class FileChecks:
    """The suite evaluated on a file read in batches, with the semantics of `evaluate` on the whole table.

    `add` evaluates the row expectations on one batch and returns the batch's bad rows as far as it can tell
    (every expectation but the whole-column ones); uniqueness is decided at `finish`, over the column's values
    of the whole file (kept: the one thing that grows with the file, e.g. ~25 bytes a row for an id), as are
    the column set (JSON Lines: a key no line names is missing) and the row count.
    """

    def __init__(self, contract: Contract, configs: list[dict[str, Any]], suite_name: str) -> None:
        self.contract, self.configs, self.suite_name = contract, configs, suite_name
        self.rows = 0
        self._schema: pa.Schema | None = None
        self._types: list[FailedExpectation] = []
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._whole: dict[str, UniqueColumn] = {}

    def add(self, batch: pa.Table) -> np.ndarray:
        if self._schema is None:
            self._schema = batch.schema
            self._types = _type_problems(self.contract, batch.schema)
        bad = []
        for kind, name, kwargs in _row_checks(self.configs, batch, self._types):
            if kind in WHOLE_FILE:
                self._whole.setdefault(name, UniqueColumn(batch.schema.field(name).type)).add(batch[name])
                continue
            rows = _rows(kind, batch[name], kwargs)
            if len(rows):
                failure = self._failures.setdefault((kind, name), _Failure())
                failure.rows.append(rows + self.rows)
                if len(failure.samples) < SAMPLE_VALUES:
                    failure.samples += _samples(batch[name], rows)[: SAMPLE_VALUES - len(failure.samples)]
                bad.append(rows)
        self.rows += batch.num_rows
        return np.unique(np.concatenate(bad)) if bad else np.empty(0, np.int64)

    def finish(self, columns: list[str], row_sample: int) -> FileResult:
        failed = [t for t in self._types if t.column in columns]
        for config in self.configs:
            if config["type"] == "expect_table_columns_to_match_set":
                problem = _column_set(config["kwargs"], set(columns))
                failed += [problem] if problem else []
        for name, unique in self._whole.items():
            found = unique.repeated()
            if len(found):
                self._failures[("expect_column_values_to_be_unique", name)] = _Failure(
                    [found], _samples(unique.column(), found)
                )
        rows: dict[tuple[str, str | None], np.ndarray] = {}
        for config in self.configs:  # in the suite's order, as `evaluate` reports them
            key = (config["type"], config["kwargs"].get("column", ""))
            failure = self._failures.get(key)
            if failure is None or key[1] not in columns:
                continue
            positions = np.concatenate(failure.rows)
            rows[key] = positions
            failed.append(
                FailedExpectation(
                    expectation=key[0],
                    column=key[1],
                    unexpected_count=len(positions),
                    unexpected_rows=positions[:row_sample].tolist(),
                    sample_values=failure.samples,
                )
            )
        bad = np.unique(np.concatenate(list(rows.values()))) if rows else np.empty(0, np.int64)
        summary = ValidationSummary(contract=self.suite_name, success=not failed, row_count=self.rows, failed=failed)
        return FileResult(summary, rows, bad)

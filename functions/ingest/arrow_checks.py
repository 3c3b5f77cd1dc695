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

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def _type_problems(contract: Contract, table: pa.Table) -> list[FailedExpectation]:
    wanted = contract.arrow_schema()
    problems = []
    for name in table.column_names:
        if name in wanted.names and table.schema.field(name).type != wanted.field(name).type:
            found = table.schema.field(name).type
            problems.append(
                FailedExpectation(
                    expectation="expect_column_type",
                    column=name,
                    unexpected_count=None,
                    sample_values=[f"type {found}, expected {wanted.field(name).type}"],
                )
            )
    return problems


def _samples(column: pa.ChunkedArray, rows: np.ndarray) -> list[Any]:
    values = column.take(pa.array(rows[:SAMPLE_VALUES])).to_pylist()
    return [v if isinstance(v, str | int | float | bool) or v is None else str(v) for v in values]


def evaluate(contract: Contract, configs: list[dict[str, Any]], table: pa.Table, suite_name: str) -> ValidationSummary:
    """The suite's verdict on `table`: failures with their row positions (0-based), as GE would report."""
    failed = _type_problems(contract, table)
    present = set(table.column_names)
    for config in configs:
        kind, kwargs = config["type"], config["kwargs"]
        if kind == "expect_table_columns_to_match_set":
            expected = set(kwargs["column_set"])
            exact = kwargs.get("exact_match", True)
            if (present != expected) if exact else not expected <= present:
                failed.append(
                    FailedExpectation(
                        expectation=kind,
                        column=None,
                        unexpected_count=None,
                        sample_values=[
                            f"missing {sorted(expected - present)}, unexpected {sorted(present - expected)}"
                        ],
                    )
                )
            continue
        name = kwargs["column"]
        if name not in present or any(f.column == name and f.expectation == "expect_column_type" for f in failed):
            continue  # the column-set or type failure already rejects the file
        column = table[name]
        mask = ROW_EXPECTATIONS[kind](column, kwargs)
        rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if len(rows):
            failed.append(
                FailedExpectation(
                    expectation=kind,
                    column=name,
                    unexpected_count=len(rows),
                    unexpected_rows=rows.tolist(),
                    sample_values=_samples(column, rows),
                )
            )
    return ValidationSummary(contract=suite_name, success=not failed, row_count=table.num_rows, failed=failed)

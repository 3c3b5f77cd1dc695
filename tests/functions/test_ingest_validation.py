"""The Arrow evaluation of the contract's suite agrees with great-expectations itself, row by row."""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest.arrow_checks import FileChecks, evaluate, suite_configs
from functions.ingest.validation import known_datasets, load_validators, stored_suite_path, suite_json
from jobs.datagen import BAD_ROW_KINDS, generate, inject_bad_rows
from schemas.contract import load_contract
from schemas.expectations import ValidationSummary, build_suite, validate_frame
from tests.functions.ingest_support import DAY

CONTRACT = load_contract("transactions")
SUITE = build_suite(CONTRACT)
CONFIGS = suite_configs(SUITE.to_json_dict())


def _by_expectation(summary: ValidationSummary) -> dict[tuple[str, str | None], tuple[int | None, list[int]]]:
    return {
        (f.expectation, f.column): (f.unexpected_count, sorted(f.unexpected_rows))
        for f in summary.failed
        if f.expectation != "expect_column_type"  # pandas' dtypes, not the suite (see schemas.expectations)
    }


def _set_cells(table: pa.Table, column: str, rows: list[int], value: Any) -> pa.Table:
    values = table[column].to_pylist()
    for row in rows:
        values[row] = value
    field = table.schema.field(column).with_nullable(True)
    return table.set_column(table.schema.get_field_index(column), field, pa.array(values, field.type))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(min_value=2, max_value=120),
    bad=st.integers(min_value=0, max_value=20),
    seed=st.integers(min_value=0, max_value=10_000),
    kinds=st.lists(st.sampled_from(BAD_ROW_KINDS), min_size=1, max_size=len(BAD_ROW_KINDS), unique=True),
    nan_rows=st.lists(st.integers(min_value=0, max_value=119), max_size=3),
    nan_column=st.sampled_from(["amount", "distance_from_home_km"]),
)
def test_arrow_evaluation_agrees_with_great_expectations(
    rows: int, bad: int, seed: int, kinds: list[Any], nan_rows: list[int], nan_column: str
) -> None:
    table, _ = inject_bad_rows(generate(rows, DAY, seed=seed), min(bad, rows - 1), seed=seed, kinds=tuple(kinds))
    table = _set_cells(table, nan_column, [r for r in nan_rows if r < rows], float("nan"))

    ge = validate_frame(CONTRACT, SUITE, table.to_pandas())
    arrow = evaluate(CONTRACT, CONFIGS, table, CONTRACT.ref)

    assert _by_expectation(arrow) == _by_expectation(ge)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(min_value=2, max_value=120),
    bad=st.integers(min_value=0, max_value=20),
    seed=st.integers(min_value=0, max_value=10_000),
    kinds=st.lists(st.sampled_from(BAD_ROW_KINDS), min_size=1, max_size=len(BAD_ROW_KINDS), unique=True),
    cuts=st.lists(st.integers(min_value=1, max_value=119), max_size=6),
)
def test_batch_by_batch_evaluation_agrees_with_great_expectations_on_the_whole_file(
    rows: int, bad: int, seed: int, kinds: list[Any], cuts: list[int]
) -> None:
    """What the function runs: the file in batches (cut anywhere), uniqueness across them."""
    table, _ = inject_bad_rows(generate(rows, DAY, seed=seed), min(bad, rows - 1), seed=seed, kinds=tuple(kinds))
    bounds = [0, *sorted({c for c in cuts if c < rows}), rows]

    checks = FileChecks(CONTRACT, CONFIGS, CONTRACT.ref)
    for start, end in itertools.pairwise(bounds):
        checks.add(table.slice(start, end - start))
    result = checks.finish(table.column_names, row_sample=10)

    ge = _by_expectation(validate_frame(CONTRACT, SUITE, table.to_pandas()))
    assert {key: (len(rows), sorted(rows.tolist())) for key, rows in result.rows.items()} == ge
    assert result.summary.row_count == rows and result.summary.success == (not ge)
    assert sorted(result.bad_rows.tolist()) == sorted({r for _, found in ge.values() for r in found})
    assert [(f.expectation, f.column) for f in result.summary.failed] == [
        (f.expectation, f.column) for f in evaluate(CONTRACT, CONFIGS, table, CONTRACT.ref).failed
    ]


@pytest.mark.parametrize("column", ["hour", "amount", "transaction_id", "channel", "is_fraud"])
def test_a_null_in_a_required_column_is_a_bad_row_whatever_its_type(column: str) -> None:
    table = _set_cells(generate(50, DAY, seed=4), column, [7], None)

    summary = evaluate(CONTRACT, CONFIGS, table, CONTRACT.ref)

    assert not summary.table_level_failure
    assert summary.bad_rows == {7}
    assert [(f.expectation, f.column) for f in summary.failed] == [("expect_column_values_to_not_be_null", column)]


def test_columns_and_types_come_from_the_arrow_schema_as_stored() -> None:
    table = generate(10, DAY, seed=5)
    with_index = table.append_column("__index_level_0__", pa.array(range(10)))
    retyped = table.set_column(table.schema.get_field_index("hour"), "hour", table["hour"].cast(pa.int64()))

    [columns] = evaluate(CONTRACT, CONFIGS, with_index, CONTRACT.ref).failed
    [types] = evaluate(CONTRACT, CONFIGS, retyped, CONTRACT.ref).failed

    assert (
        columns.expectation == "expect_table_columns_to_match_set" and "__index_level_0__" in columns.sample_values[0]
    )
    assert (types.expectation, types.column) == ("expect_column_type", "hour")


@pytest.mark.parametrize("dataset", known_datasets())
def test_the_stored_suite_is_the_one_great_expectations_builds_from_the_contract(dataset: str) -> None:
    """The function loads suites from their stored JSON (no GE import at cold start): they must not drift.
    After changing a contract or upgrading GE: python -m functions.ingest.validation"""
    validator = load_validators([dataset], warm=False)[dataset]
    path = stored_suite_path(validator.contract)
    assert path.is_file() and path.read_text() == suite_json(validator.contract)

"""Contract -> great-expectations suite -> validation, on generated good and bad data."""

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from jobs.datagen import generate, inject_bad_rows
from schemas.contract import load_contract
from schemas.expectations import build_suite, validate_frame

DAY = dt.date(2026, 11, 2)
CONTRACT = load_contract("transactions")


@pytest.fixture(scope="module")
def suite():  # type: ignore[no-untyped-def]
    return build_suite(load_contract("transactions"))


def test_suite_covers_every_declared_rule(suite) -> None:  # type: ignore[no-untyped-def]
    kinds = [(e.expectation_type, getattr(e, "column", None)) for e in suite.expectations]
    assert ("expect_table_columns_to_match_set", None) in kinds
    assert ("expect_column_values_to_be_unique", "transaction_id") in kinds
    assert ("expect_column_values_to_be_between", "amount") in kinds
    assert ("expect_column_values_to_be_in_set", "channel") in kinds
    assert ("expect_column_values_to_not_be_null", "amount") in kinds
    assert ("expect_column_values_to_not_be_null", "device_age_days") not in kinds
    assert suite.meta["contract"] == "transactions/v1"


def test_generated_data_passes(suite) -> None:  # type: ignore[no-untyped-def]
    summary = validate_frame(CONTRACT, suite, generate(5_000, DAY, seed=5).to_pandas())
    assert summary.success, summary.failed
    assert summary.row_count == 5_000


def test_injected_bad_rows_fail_on_exactly_those_rows(suite) -> None:  # type: ignore[no-untyped-def]
    table, injected = inject_bad_rows(generate(2_000, DAY, seed=6), 25, seed=7)
    summary = validate_frame(CONTRACT, suite, table.to_pandas())
    assert not summary.success
    duplicate_of_first = {0} if "duplicate_id" in injected.values() else set()
    assert summary.bad_rows == set(injected) | duplicate_of_first
    failed = {(f.expectation, f.column) for f in summary.failed}
    assert failed == {
        ("expect_column_values_to_not_be_null", "amount"),
        ("expect_column_values_to_be_between", "amount"),
        ("expect_column_values_to_be_in_set", "channel"),
        ("expect_column_values_to_be_unique", "transaction_id"),
        ("expect_column_values_to_be_between", "hour"),
    }
    assert not summary.table_level_failure


def test_missing_column_and_wrong_type_fail_the_whole_table(suite) -> None:  # type: ignore[no-untyped-def]
    frame = generate(100, DAY, seed=8).to_pandas()
    missing = validate_frame(CONTRACT, suite, frame.drop(columns=["amount"]))
    assert not missing.success and missing.table_level_failure
    wrong = frame.assign(amount=frame["amount"].astype(str))
    summary = validate_frame(CONTRACT, suite, wrong)
    assert ("expect_column_type", "amount") in {(f.expectation, f.column) for f in summary.failed}


def test_naive_timestamps_are_rejected(suite) -> None:  # type: ignore[no-untyped-def]
    frame = generate(50, DAY, seed=9).to_pandas()
    frame["event_time"] = frame["event_time"].dt.tz_localize(None)
    failed = {(f.expectation, f.column) for f in validate_frame(CONTRACT, suite, frame).failed}
    assert ("expect_column_type", "event_time") in failed
    assert isinstance(frame, pd.DataFrame) and pa.__version__

"""The partly-bad-file policy on plain validation summaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.ingest.policy import Policy, decide
from schemas.expectations import FailedExpectation, ValidationSummary


def _summary(rows: int, bad: set[int], extra: list[FailedExpectation] | None = None) -> ValidationSummary:
    failed = [FailedExpectation("expect_column_values_to_be_between", "amount", len(bad), sorted(bad))] if bad else []
    failed += extra or []
    return ValidationSummary("transactions/v1", not failed, rows, failed)


def test_valid_file_is_curated() -> None:
    assert decide(_summary(100, set()), Policy()).action == "curate"


def test_schema_and_type_failures_reject_the_file() -> None:
    columns = FailedExpectation("expect_table_columns_to_match_set", None, None)
    types = FailedExpectation("expect_column_type", "amount", None)
    assert decide(_summary(100, set(), [columns]), Policy()).reason == "schema_mismatch"
    assert decide(_summary(100, {1}, [types]), Policy()).reason == "wrong_type"


@given(rows=st.integers(1, 1000), share=st.floats(0, 1), data=st.data())
def test_split_or_reject_follows_the_share(rows: int, share: float, data: st.DataObject) -> None:
    bad = data.draw(st.sets(st.integers(0, rows - 1), min_size=1, max_size=rows))
    verdict = decide(_summary(rows, bad), Policy(max_bad_row_share=share))
    if len(bad) > share * rows:
        assert (verdict.action, verdict.reason) == ("reject", "too_many_bad_rows")
    else:
        assert verdict.action == "split" and verdict.bad_rows == bad


def test_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="max_bad_row_share"):
        Policy(max_bad_row_share=1.5)


def test_settings_come_from_the_environment() -> None:
    from functions.ingest.settings import Settings

    settings = Settings.from_env({"TIDE_STACK": "prod", "INGEST_MAX_BAD_ROW_SHARE": "0.2"})
    assert settings.names.ingest_queue == "tidewater-prod-ingest" and settings.policy.max_bad_row_share == 0.2
    with pytest.raises(ValueError, match="INGEST_MAX_OBJECT_BYTES"):
        Settings.from_env({"INGEST_MAX_OBJECT_BYTES": "lots"})


def test_the_handoff_size_derives_from_the_functions_memory_setting() -> None:
    from functions.ingest.readers import Limits
    from functions.ingest.settings import Settings, handoff_bytes

    on_lambda = Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}).limits.max_object_bytes
    assert on_lambda == handoff_bytes(3008) == 1248 << 20
    assert handoff_bytes(10240) > on_lambda > handoff_bytes(1024) > 0 == handoff_bytes(256)
    explicit = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008", "INGEST_MAX_OBJECT_BYTES": "1000"}
    assert Settings.from_env(explicit).limits.max_object_bytes == 1000  # an explicit setting wins
    assert Settings.from_env({}).limits.max_object_bytes == Limits().max_object_bytes  # memory unknown
    with pytest.raises(ValueError, match="AWS_LAMBDA_FUNCTION_MEMORY_SIZE"):
        Settings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "big"})

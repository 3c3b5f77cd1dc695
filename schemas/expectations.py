"""Compile a contract into a great-expectations ExpectationSuite and validate pandas frames with it.

Column types are checked here against the contract before GE runs (GE 1.x's type expectations misread
pandas 3 string and tz-aware dtypes); GE checks columns, nulls, ranges, categories and uniqueness.

great-expectations is imported here only (4-8 s cold), never by schemas.contract, so functions that do not
validate do not pay for it. The ephemeral context is built once per process and reused.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from schemas.contract import Column, Contract

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

# Names pandas gives a column of each contract type. Nullable integers become float64 when nulls appear.
_PANDAS_DTYPES: dict[str, list[str]] = {
    "string": ["str", "string"],
    "bool": ["bool", "boolean"],
    "timestamp": [f"datetime64[{unit}, UTC]" for unit in ("s", "ms", "us", "ns")],
    **{t: [t, t.capitalize()] for t in ("int8", "int16", "int32", "int64")},
    **{t: [t, t.capitalize()] for t in ("float32", "float64")},
}


def pandas_dtypes(column: Column) -> list[str]:
    names = list(_PANDAS_DTYPES[column.type])
    if column.type.startswith("int") and column.nullable:
        names.append("float64")
    if column.type == "bool" and column.nullable:
        names.append("object")
    return names


def build_suite(contract: Contract) -> gx.ExpectationSuite:
    import great_expectations as gx

    e: Any = gx.expectations  # GE re-exports the classes without __all__; strict mypy cannot see them
    expectations: list[Any] = [e.ExpectTableColumnsToMatchSet(column_set=contract.column_names, exact_match=True)]
    for col in contract.columns:
        if not col.nullable:
            expectations.append(e.ExpectColumnValuesToNotBeNull(column=col.name))
        if col.unique:
            expectations.append(e.ExpectColumnValuesToBeUnique(column=col.name))
        if col.min is not None or col.max is not None:
            expectations.append(e.ExpectColumnValuesToBeBetween(column=col.name, min_value=col.min, max_value=col.max))
        if col.categories is not None:
            expectations.append(e.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.categories)))
    return gx.ExpectationSuite(
        name=f"{contract.dataset}.v{contract.version}",
        expectations=expectations,
        meta={"contract": contract.ref},
    )


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str
    column: str | None
    unexpected_count: int | None
    unexpected_rows: list[int] = field(default_factory=list)
    sample_values: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationSummary:
    """Plain-data verdict of one validation: what failed, on which rows."""

    contract: str
    success: bool
    row_count: int
    failed: list[FailedExpectation]

    @property
    def bad_rows(self) -> set[int]:
        return {row for f in self.failed for row in f.unexpected_rows}

    @property
    def table_level_failure(self) -> bool:
        """A failure not attributable to rows (wrong columns or a type): the whole file is bad."""
        return any(not f.unexpected_rows for f in self.failed)


@functools.cache
def _batch_definition() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("tidewater").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def type_problems(contract: Contract, frame: pd.DataFrame) -> list[FailedExpectation]:
    """Columns present in the frame whose dtype is not one pandas uses for the contract's type."""
    problems = []
    for col in contract.columns:
        if col.name in frame.columns:
            observed = str(frame[col.name].dtype)
            allowed = pandas_dtypes(col)
            if observed not in allowed and not (len(frame) == 0 or frame[col.name].isna().all()):
                problems.append(
                    FailedExpectation(
                        expectation="expect_column_type",
                        column=col.name,
                        unexpected_count=None,
                        sample_values=[f"dtype {observed}, expected one of {allowed}"],
                    )
                )
    return problems


def validate_frame(contract: Contract, suite: gx.ExpectationSuite, frame: pd.DataFrame) -> ValidationSummary:
    """Check types, then run the suite, on a frame with a 0..n-1 index; row indexes are positions."""
    failed = type_problems(contract, frame)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    for r in result.results:
        if r.success:
            continue
        details = r.result or {}
        rows = details.get("unexpected_index_list") or []
        failed.append(
            FailedExpectation(
                expectation=r.expectation_config.type,
                column=r.expectation_config.kwargs.get("column"),
                unexpected_count=details.get("unexpected_count"),
                unexpected_rows=[int(i) for i in rows],
                sample_values=list(details.get("partial_unexpected_list") or [])[:5],
            )
        )
    return ValidationSummary(
        contract=str(suite.meta.get("contract", suite.name)),
        success=bool(result.success) and not failed,
        row_count=len(frame),
        failed=failed,
    )

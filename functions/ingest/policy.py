"""The validation gate's verdict: curate the file, curate part of it, or reject it. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from schemas.expectations import ValidationSummary

_SCHEMA_EXPECTATIONS = frozenset({"expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"})


@dataclass(frozen=True)
class Policy:
    """Above `max_bad_row_share` the whole file is rejected; at or below it, good rows are curated."""

    max_bad_row_share: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_row_share <= 1.0:
            raise ValueError(f"max_bad_row_share must be in [0, 1], got {self.max_bad_row_share}")


@dataclass(frozen=True)
class Verdict:
    action: Literal["curate", "split", "reject"]
    reason: str  # "valid" | "bad_rows" | "schema_mismatch" | "wrong_type" | "too_many_bad_rows"
    bad_rows: frozenset[int]  # the rows a split quarantines (empty unless the action is split)


def decide(summary: ValidationSummary, policy: Policy) -> Verdict:
    """The verdict on a whole-table summary (its failures list every unexpected row)."""
    return decide_rows(summary, np.array(sorted(summary.bad_rows), dtype=np.int64), policy)


def decide_rows(summary: ValidationSummary, bad_rows: np.ndarray, policy: Policy) -> Verdict:
    """`bad_rows`: the file's unexpected rows, all of them (the summary may list only the first few)."""
    if summary.success:
        return Verdict("curate", "valid", frozenset())
    failed = {f.expectation for f in summary.failed}
    if failed & _SCHEMA_EXPECTATIONS:
        return Verdict("reject", "schema_mismatch", frozenset())
    if "expect_column_type" in failed or summary.table_level_failure:
        return Verdict("reject", "wrong_type", frozenset())
    if summary.row_count == 0 or len(bad_rows) > policy.max_bad_row_share * summary.row_count:
        return Verdict("reject", "too_many_bad_rows", frozenset())
    return Verdict("split", "bad_rows", frozenset(bad_rows.tolist()))

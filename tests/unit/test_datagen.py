import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from jobs.datagen import BAD_FILE_KINDS, Shift, bad_file, generate, inject_bad_rows, to_bytes
from schemas.contract import load_contract

DAY = dt.date(2026, 11, 1)
N = 200_000


@pytest.fixture(scope="module")
def reference() -> pa.Table:
    return generate(N, DAY, seed=11)


def test_same_seed_same_data_and_contract_schema(reference: pa.Table) -> None:
    assert generate(1000, DAY, seed=11).equals(reference.slice(0, 0).schema.empty_table()) is False
    assert generate(1000, DAY, seed=3).equals(generate(1000, DAY, seed=3))
    assert not generate(1000, DAY, seed=3).equals(generate(1000, DAY, seed=4))
    assert reference.schema.equals(load_contract("transactions").arrow_schema(), check_metadata=False)


@pytest.mark.parametrize(("column", "k"), [("amount", 0.1), ("distance_from_home_km", 0.5), ("avg_amount_30d", 0.3)])
def test_covariate_shift_moves_the_mean_by_k_standard_deviations(reference: pa.Table, column: str, k: float) -> None:
    shifted = generate(N, DAY, seed=11, shift=Shift(covariate={column: k}))
    base = reference[column].to_numpy(zero_copy_only=False)
    moved = shifted[column].to_numpy(zero_copy_only=False)
    observed = (np.nanmean(moved) - np.nanmean(base)) / np.nanstd(base)
    assert observed == pytest.approx(k, abs=0.01)


def test_category_shift_adds_percentage_points(reference: pa.Table) -> None:
    shifted = generate(N, DAY, seed=12, shift=Shift(categories={"channel": {"mobile": 5.0}}))
    before = np.mean(reference["channel"].to_numpy(zero_copy_only=False) == "mobile")
    after = np.mean(shifted["channel"].to_numpy(zero_copy_only=False) == "mobile")
    assert after - before == pytest.approx(0.05, abs=0.005)


def test_label_shift_changes_the_prior_only(reference: pa.Table) -> None:
    shifted = generate(N, DAY, seed=13, shift=Shift(fraud_rate=0.10))
    assert np.mean(shifted["is_fraud"].to_numpy()) == pytest.approx(0.10, abs=0.005)
    fraud_amount = lambda t: np.median(t.filter(pa.compute.equal(t["is_fraud"], 1))["amount"].to_numpy())  # noqa: E731
    assert fraud_amount(shifted) == pytest.approx(fraud_amount(reference), rel=0.05)


def test_concept_shift_changes_fraud_given_features(reference: pa.Table) -> None:
    shifted = generate(N, DAY, seed=14, shift=Shift(concept=1.0))

    def fraud_rate_at_pos(t: pa.Table) -> float:
        pos = t.filter(pa.compute.equal(t["channel"], "pos"))
        return float(np.mean(pos["is_fraud"].to_numpy()))

    assert np.mean(shifted["is_fraud"].to_numpy()) == pytest.approx(0.02, abs=0.003)
    assert fraud_rate_at_pos(shifted) > 3 * fraud_rate_at_pos(reference)


def test_shift_knobs_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="non-numerical or unknown"):
        Shift(covariate={"channel": 1.0})
    with pytest.raises(ValueError, match="unknown categories"):
        Shift(categories={"channel": {"teleport": 1.0}})
    with pytest.raises(ValueError, match="fraud_rate"):
        Shift(fraud_rate=1.5)


def test_bad_rows_are_reported_where_injected() -> None:
    table, injected = inject_bad_rows(generate(500, DAY, seed=1), 20, seed=2)
    assert len(injected) == 20 and table.num_rows == 500
    assert set(injected.values()) == {"null_required", "out_of_range", "unknown_category", "duplicate_id", "bad_hour"}


@pytest.mark.parametrize("kind", BAD_FILE_KINDS)
def test_every_bad_file_kind_differs_from_a_good_file(kind: str) -> None:
    suffix, data = bad_file(kind, DAY, seed=1, bomb_mib=2)  # type: ignore[arg-type]
    good = to_bytes(generate(50, DAY, seed=1), "csv")
    assert suffix.split(".")[1] in ("csv", "jsonl", "parquet")
    assert data != good

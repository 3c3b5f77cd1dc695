"""The build's per-partition steps and its version, without a cluster."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import datagen
from jobs.batch import shards
from jobs.batch.inputs import BuildParams, InputObject, dataset_version
from schemas.contract import load_contract

ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(values=ids, cut=st.integers(0, 40), buckets=st.integers(1, 8))
def test_split_and_bucket_depend_on_the_id_alone(values: list[str], cut: int, buckets: int) -> None:
    """However the rows are partitioned, an id gets the same bucket and the same split."""
    whole = shards.tag(pd.DataFrame({"id": values}), "id", buckets, 0.3)
    parts = pd.concat([shards.tag(pd.DataFrame({"id": values[:cut]}), "id", buckets, 0.3),
                       shards.tag(pd.DataFrame({"id": values[cut:]}), "id", buckets, 0.3)])  # fmt: skip
    columns = [shards.BUCKET, shards.VALIDATION]
    assert whole[columns].to_numpy().tolist() == parts[columns].to_numpy().tolist()
    assert whole[shards.BUCKET].between(0, buckets - 1).all()


def test_validation_fraction_is_respected_on_many_ids() -> None:
    hashes = shards.id_hash(pd.Series([f"t{i}" for i in range(20_000)]))
    assert shards.is_validation(hashes, 0.2).mean() == pytest.approx(0.2, abs=0.01)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), order=st.randoms(use_true_random=False))
def test_deduplicate_keeps_the_newest_row_whatever_the_arrival_order(seed: int, order: object) -> None:
    contract = load_contract("transactions")
    frame = datagen.generate(30, dt.date(2026, 11, 1), seed).to_pandas()
    later = frame.iloc[:10].assign(event_time=frame["event_time"].iloc[:10] + pd.Timedelta(hours=1), amount=1.0)
    both = pd.concat([frame, later]).reset_index(drop=True)
    shuffled = both.sample(frac=1.0, random_state=order.randint(0, 10_000))  # type: ignore[attr-defined]
    unique = shards.deduplicate(shuffled, contract)
    assert len(unique) == 30 and unique["transaction_id"].is_monotonic_increasing
    assert unique.equals(shards.deduplicate(both, contract))
    assert set(unique.loc[unique["transaction_id"].isin(later["transaction_id"]), "amount"]) == {1.0}


def test_conform_names_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['is_fraud'\]"):
        shards.conform(pd.DataFrame({c: [] for c in load_contract("transactions").column_names[:-1]}),
                       load_contract("transactions"))  # fmt: skip


def test_version_changes_with_any_input_identity_or_parameter() -> None:
    inputs = [InputObject("t/event_date=2026-11-01/a.parquet", "s3://b/t/a", "etag1", None, 10)]
    base = dataset_version("transactions/v1", BuildParams(), inputs)
    assert base == dataset_version("transactions/v1", BuildParams(), list(inputs))
    assert base != dataset_version("transactions/v1", BuildParams(rows_per_shard=7), inputs)
    assert base != dataset_version("transactions/v2", BuildParams(), inputs)
    assert base != dataset_version("transactions/v1", BuildParams(), [replace(inputs[0], etag="etag2")])
    assert base != dataset_version("transactions/v1", BuildParams(), [replace(inputs[0], version_id="v2")])


@pytest.mark.parametrize("bad", [{"validation_fraction": 0.0}, {"validation_fraction": 1.0}, {"rows_per_shard": 0}])
def test_build_params_reject_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BuildParams(**bad)  # type: ignore[arg-type]
